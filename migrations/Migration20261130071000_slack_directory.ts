import { Migration } from '@mikro-orm/migrations';

/**
 * A mirror of each workspace's Slack directory, so admin checks, "is this email in Slack?" and the
 * admins to ask never walk users.list: filled by a paced, resumable sync and kept fresh by events.
 */
export class Migration20261130071000_slack_directory extends Migration {
  override async up(): Promise<void> {
    this.addSql(`create table "slack_member" (
      "account_id" uuid not null references "account" ("id") on delete cascade,
      "slack_user_id" text not null,
      "email" text null,
      "name" text null,
      "title" text null,
      "phone" text null,
      "is_admin" boolean not null default false,
      "is_owner" boolean not null default false,
      "is_bot" boolean not null default false,
      "deleted" boolean not null default false,
      "team_ids" text[] not null default '{}',
      "updated_at" timestamptz not null default now(),
      primary key ("account_id", "slack_user_id"));`);
    this.addSql(
      `create index "slack_member_email_index" on "slack_member" ("account_id", lower(btrim("email"))) where "email" is not null;`,
    );
    this.addSql(
      `create index "slack_member_admins_index" on "slack_member" ("account_id") where ("is_admin" or "is_owner") and not "deleted" and not "is_bot";`,
    );
    this.addSql(`create table "slack_directory_sync" (
      "account_id" uuid primary key references "account" ("id") on delete cascade,
      "cursor" text null,
      "pages" int not null default 0,
      "started_at" timestamptz not null default now(),
      "finished_at" timestamptz null);`);
  }

  override async down(): Promise<void> {
    this.addSql(`drop table if exists "slack_directory_sync";`);
    this.addSql(`drop table if exists "slack_member";`);
  }
}
