import { Migration } from '@mikro-orm/migrations';

/**
 * One Slack directory sync per workspace at a time, whichever instance runs it: the sync holding the
 * lease is the only one that walks users.list and moves the cursor. The lease is renewed while the sync
 * runs and lapses on its own when the instance holding it dies, so the next sync takes over.
 */
export class Migration20261203110000_directory_sync_lease extends Migration {
  override async up(): Promise<void> {
    this.addSql(`alter table "slack_directory_sync" add column "lease_holder" uuid null,
      add column "lease_until" timestamptz null;`);
  }

  override async down(): Promise<void> {
    this.addSql(`alter table "slack_directory_sync" drop column "lease_holder", drop column "lease_until";`);
  }
}
