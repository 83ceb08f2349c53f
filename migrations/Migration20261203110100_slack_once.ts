import { Migration } from '@mikro-orm/migrations';

/**
 * Work done once that calls Slack (an import's error file, its summary) is claimed here with a lease
 * instead of inside a transaction held open across the calls: the claim, what the work noted on the way
 * (the id of the file being uploaded) and when it was done each take a short statement of their own.
 * Receipts of such work already done are carried over, so a job retried across the upgrade repeats nothing.
 */
export class Migration20261203110100_slack_once extends Migration {
  override async up(): Promise<void> {
    this.addSql(`create table "slack_once" (
      "key" text primary key,
      "holder" uuid null,
      "lease_until" timestamptz null,
      "noted" text null,
      "done_at" timestamptz null,
      "created_at" timestamptz not null default now());`);
    this.addSql(`insert into "slack_once" ("key", "done_at", "created_at")
      select "key", "created_at", "created_at" from "slack_receipt" where "key" like 'csv-import:%';`);
  }

  override async down(): Promise<void> {
    this.addSql(`insert into "slack_receipt" ("key", "created_at")
      select "key", "created_at" from "slack_once" where "done_at" is not null on conflict do nothing;`);
    this.addSql(`drop table if exists "slack_once";`);
  }
}
