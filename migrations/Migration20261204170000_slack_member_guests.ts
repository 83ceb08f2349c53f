import { Migration } from '@mikro-orm/migrations';

/**
 * The directory mirror records whether a Slack member is a guest (`is_restricted`: a multi-channel guest;
 * `is_ultra_restricted`: a single-channel guest), so a guest cannot take a paid seat through a join link
 * on their own. Members seen before this keep null, "not known yet": the next directory sync or
 * user_change fills them in, and a Join by such a member asks Slack (users.info) first.
 */
export class Migration20261204170000_slack_member_guests extends Migration {
  override async up(): Promise<void> {
    this.addSql(
      `alter table "slack_member" add column "is_restricted" boolean null, add column "is_ultra_restricted" boolean null;`,
    );
  }

  override async down(): Promise<void> {
    this.addSql(
      `alter table "slack_member" drop column if exists "is_restricted", drop column if exists "is_ultra_restricted";`,
    );
  }
}
