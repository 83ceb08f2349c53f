import { Migration } from '@mikro-orm/migrations';

/** A Roster user a deleted member's row stands for: by Slack id, or by email when the user has none. */
const MATCHED = `join "app_user" u on u."account_id" = m."account_id"
  and (u."slack_user_id" = m."slack_user_id"
    or (u."slack_user_id" is null and m."email" is not null and lower(btrim(u."email")) = lower(btrim(m."email"))))`;

/**
 * Since when the mirror has known a member as deleted in Slack (`deleted_since`, the database's clock;
 * null while not deleted), so the nightly sync can deactivate in Roster everyone Slack deleted whose
 * deactivation never happened (its job gave up, say), and tell an admin's deliberate reactivation since
 * from a deactivation that was missed.
 *
 * Rows already deleted cannot say when Roster learnt of it (the row's time is that of the last sync), so
 * their date is chosen to undo no decision on record: the first time Roster deactivated that member's user
 * for Slack, else the row's time, and in any case earlier than an admin's reactivation or unlock of that
 * user, and than the creation of a user matched by email alone (who may have been added after the member
 * left). What the next sync deactivates is a user linked to the member's Slack account, never brought back
 * by an admin: a deactivation that was missed.
 */
export class Migration20261207030000_slack_member_deleted_since extends Migration {
  override async up(): Promise<void> {
    this.addSql(`alter table "slack_member" add column "deleted_since" timestamptz null;`);
    this.addSql(`update "slack_member" set "deleted_since" = "recorded_at" where "deleted";`);
    this.addSql(`with "slack_off" as (
        select m."account_id", m."slack_user_id", min(a."created_at") as "at"
        from "slack_member" m ${MATCHED}
        join "audit_event" a on a."account_id" = u."account_id" and a."subject_type" = 'user' and a."subject_id" = u."id"::text
        where m."deleted" and a."action" = 'user.deactivated' and a."actor" = 'slack'
        group by 1, 2)
      update "slack_member" m set "deleted_since" = least(m."deleted_since", o."at")
      from "slack_off" o
      where m."deleted" and o."account_id" = m."account_id" and o."slack_user_id" = m."slack_user_id";`);
    this.addSql(`with "kept" as (
        select m."account_id", m."slack_user_id", min(least(
          case when u."slack_user_id" is null then u."created_at" end,
          (select min(a."created_at") from "audit_event" a
            where a."account_id" = u."account_id" and a."subject_type" = 'user' and a."subject_id" = u."id"::text
              and a."action" in ('user.reactivated', 'user.unlocked')))) as "at"
        from "slack_member" m ${MATCHED}
        where m."deleted"
        group by 1, 2)
      update "slack_member" m set "deleted_since" = least(m."deleted_since", k."at" - interval '1 second')
      from "kept" k
      where m."deleted" and k."at" is not null and k."account_id" = m."account_id" and k."slack_user_id" = m."slack_user_id";`);
    this.addSql(
      `create index "slack_member_deleted_index" on "slack_member" ("account_id") where "deleted";`,
    );
  }

  override async down(): Promise<void> {
    this.addSql(`drop index if exists "slack_member_deleted_index";`);
    this.addSql(`alter table "slack_member" drop column if exists "deleted_since";`);
  }
}
