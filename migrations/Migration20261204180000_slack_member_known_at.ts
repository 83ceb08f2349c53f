import { Migration } from '@mikro-orm/migrations';

/**
 * Each directory mirror row records when what it says was true (`known_at`): the time a Slack event about
 * the person was recorded, or the time a sync read their page. A write of older news is skipped by that
 * time, not by when the last write happened to run: an older event whose job ran late no longer hides a
 * newer one. Rows written before keep the time they were written.
 */
export class Migration20261204180000_slack_member_known_at extends Migration {
  override async up(): Promise<void> {
    this.addSql(`alter table "slack_member" add column "known_at" timestamptz not null default now();`);
    this.addSql(`update "slack_member" set "known_at" = "updated_at";`);
  }

  override async down(): Promise<void> {
    this.addSql(`alter table "slack_member" drop column if exists "known_at";`);
  }
}
