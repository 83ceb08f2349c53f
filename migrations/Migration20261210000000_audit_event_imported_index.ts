import { Migration } from '@mikro-orm/migrations';

/**
 * The people an import created, found by its id in file order: what Unlock and invite all walks a
 * batch at a time, and what the import's summary counts. Without it each batch read every audit event
 * of the account.
 */
export class Migration20261210000000_audit_event_imported_index extends Migration {
  override async up(): Promise<void> {
    this.addSql(
      `create index "audit_event_imported_index" on "audit_event" ("account_id", (data->>'importId'), "id") where "action" = 'user.imported';`,
    );
  }

  override async down(): Promise<void> {
    this.addSql(`drop index "audit_event_imported_index";`);
  }
}
