import { Migration } from '@mikro-orm/migrations';

/**
 * A directory mirror row written from a Slack event is known as of when the event happened in Slack
 * (`known_at`: the envelope's `event_time`, whole seconds), no longer as of when Roster recorded it: an
 * older event that reaches Roster late (a redelivery, a retry) does not undo a newer one. When Roster
 * recorded what the row says (`recorded_at`, the database's clock) breaks a tie within one second. Rows
 * written before keep their `known_at` as both.
 */
export class Migration20261205100000_slack_member_event_time extends Migration {
  override async up(): Promise<void> {
    this.addSql(`alter table "slack_member" add column "recorded_at" timestamptz not null default now();`);
    this.addSql(`update "slack_member" set "recorded_at" = "known_at";`);
  }

  override async down(): Promise<void> {
    this.addSql(`alter table "slack_member" drop column if exists "recorded_at";`);
  }
}
