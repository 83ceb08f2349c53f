import { Migration } from '@mikro-orm/migrations';

/**
 * The person of an account whose sync row holds a service's user id: asked before linking that user to
 * anyone, so two people are never linked to one user. Without it each link read every row of the account.
 */
export class Migration20261212000000_scim_sync_remote_id_index extends Migration {
  override async up(): Promise<void> {
    this.addSql(
      `create index "scim_sync_remote_id_index" on "scim_sync" ("account_id", "remote_id") where "remote_id" is not null;`,
    );
  }

  override async down(): Promise<void> {
    this.addSql(`drop index "scim_sync_remote_id_index";`);
  }
}
