import { Migration } from '@mikro-orm/migrations';

/**
 * Since when the mirror has known a member as deleted in Slack (`deleted_since`, the database's clock;
 * null while not deleted), so the nightly sync can deactivate in Roster everyone Slack deleted whose
 * deactivation never happened (its job gave up, say), and tell an admin's deliberate reactivation since
 * from a deactivation that was missed. Rows already deleted take the first time Roster deactivated that
 * member's user for Slack, else the time the row was last written: someone still active in Roster whom
 * the mirror knows as deleted is deactivated by the next sync, unless an admin reactivated them after that.
 */
export class Migration20261207030000_slack_member_deleted_since extends Migration {
  override async up(): Promise<void> {
    this.addSql(`alter table "slack_member" add column "deleted_since" timestamptz null;`);
    this.addSql(`update "slack_member" set "deleted_since" = "recorded_at" where "deleted";`);
    this.addSql(`with "slack_off" as (
        select u."account_id", u."slack_user_id", min(a."created_at") as "at"
        from "audit_event" a join "app_user" u on u."id"::text = a."subject_id" and u."account_id" = a."account_id"
        where a."subject_type" = 'user' and a."action" = 'user.deactivated' and a."actor" = 'slack'
          and u."slack_user_id" is not null
        group by 1, 2)
      update "slack_member" m set "deleted_since" = least(m."deleted_since", o."at")
      from "slack_off" o
      where m."deleted" and o."account_id" = m."account_id" and o."slack_user_id" = m."slack_user_id";`);
    this.addSql(`create index "slack_member_deleted_index" on "slack_member" ("account_id") where "deleted";`);
  }

  override async down(): Promise<void> {
    this.addSql(`drop index if exists "slack_member_deleted_index";`);
    this.addSql(`alter table "slack_member" drop column if exists "deleted_since";`);
  }
}
