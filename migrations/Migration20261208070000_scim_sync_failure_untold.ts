import { Migration } from '@mikro-orm/migrations';

/**
 * A person the SCIM service refused whose admins are not told yet, with the service's words: marked in the
 * statement that records the refusal and cleared in the transaction that queues the admins' notice, so a
 * sync stopped between the two is told by the next one rather than never.
 */
export class Migration20261208070000_scim_sync_failure_untold extends Migration {
  override async up(): Promise<void> {
    this.addSql(`alter table "scim_sync" add column "failure_untold" text null;`);
  }

  override async down(): Promise<void> {
    this.addSql(`alter table "scim_sync" drop column "failure_untold";`);
  }
}
