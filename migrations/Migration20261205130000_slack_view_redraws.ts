import { Migration } from '@mikro-orm/migrations';

/**
 * The latest redraw issued for each Slack modal: a redraw postponed because Slack asked Roster to slow down
 * carries its number, and is dropped when a newer one was issued meanwhile, so a late redraw never puts back
 * what a newer one replaced. Rows are pruned with the Slack receipts.
 */
export class Migration20261205130000_slack_view_redraws extends Migration {
  override async up(): Promise<void> {
    this.addSql(`create table "slack_view_redraw" (
      "view_id" text primary key,
      "seq" bigint not null,
      "updated_at" timestamptz not null default now());`);
  }

  override async down(): Promise<void> {
    this.addSql(`drop table if exists "slack_view_redraw";`);
  }
}
