import { Migration } from '@mikro-orm/migrations';

/** Joins through a link's web page wait for the email to be confirmed; expired links are announced once. */
export class Migration20261123100200_join_confirmations extends Migration {
  override async up(): Promise<void> {
    this.addSql(`create table "join_confirmation" (
      "id" uuid not null primary key,
      "created_at" timestamptz not null default now(),
      "join_link_id" uuid not null references "join_link" ("id"),
      "email" varchar(255) not null,
      "name" varchar(255) not null,
      "token_hash" varchar(64) not null unique check ("token_hash" ~ '^[0-9a-f]{64}$'),
      "expires_at" timestamptz not null,
      "sent_at" timestamptz null,
      "used_at" timestamptz null
    );`);
    this.addSql(`alter table "join_link" add column "expiry_announced_at" timestamptz null;`);
  }

  override async down(): Promise<void> {
    this.addSql(`drop table if exists "join_confirmation";`);
    this.addSql(`alter table "join_link" drop column if exists "expiry_announced_at";`);
  }
}
