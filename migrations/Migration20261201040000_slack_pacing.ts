import { Migration } from '@mikro-orm/migrations';

/**
 * Roster's pace toward Slack's Web API, shared by every instance: one token bucket per method (and per
 * channel for chat.postMessage), and the time until which Slack asked, by a 429's Retry-After, to wait.
 */
export class Migration20261201040000_slack_pacing extends Migration {
  override async up(): Promise<void> {
    this.addSql(`create table "slack_pace" (
      "key" text primary key,
      "tokens" double precision not null,
      "refilled_at" timestamptz not null default now(),
      "held_until" timestamptz null,
      "granted" boolean not null default true);`);
  }

  override async down(): Promise<void> {
    this.addSql(`drop table if exists "slack_pace";`);
  }
}
