import { Migration } from '@mikro-orm/migrations';

/** Keys of Slack deliveries already handled, so a retry of the same one does nothing twice. */
export class Migration20261123100100_slack_receipts extends Migration {
  override async up(): Promise<void> {
    this.addSql(
      `create table "slack_receipt" ("key" text primary key, "created_at" timestamptz not null default now());`,
    );
  }

  override async down(): Promise<void> {
    this.addSql(`drop table if exists "slack_receipt";`);
  }
}
