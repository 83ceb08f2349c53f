import { Migration } from '@mikro-orm/migrations';

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
    // Each deleted member's users (by Slack id, or by email for a user without one) and their audit events,
    // read once and grouped by user: one pass over each table, however many members were deleted.
    this.addSql(`with "matched" as (
        select m."account_id", m."slack_user_id", u."id" as "user_id", false as "by_email", u."created_at"
        from "slack_member" m
        join "app_user" u on u."account_id" = m."account_id" and u."slack_user_id" = m."slack_user_id"
        where m."deleted"
        union all
        select m."account_id", m."slack_user_id", u."id", true, u."created_at"
        from "slack_member" m
        join "app_user" u on u."account_id" = m."account_id" and u."slack_user_id" is null
          and lower(btrim(u."email")) = lower(btrim(m."email"))
        where m."deleted" and m."email" is not null),
      "events" as (
        select a."account_id", a."subject_id",
          min(a."created_at") filter (where a."action" = 'user.deactivated' and a."actor" = 'slack') as "slack_off",
          min(a."created_at") filter (where a."action" in ('user.reactivated', 'user.unlocked')) as "brought_back"
        from "audit_event" a
        where a."subject_type" = 'user' and a."action" in ('user.deactivated', 'user.reactivated', 'user.unlocked')
        group by 1, 2),
      "dated" as (
        select t."account_id", t."slack_user_id", min(e."slack_off") as "slack_off",
          min(least(case when t."by_email" then t."created_at" end, e."brought_back")) as "kept"
        from "matched" t
        left join "events" e on e."account_id" = t."account_id" and e."subject_id" = t."user_id"::text
        group by 1, 2)
      update "slack_member" m
        set "deleted_since" = least(m."deleted_since", d."slack_off", d."kept" - interval '1 second')
      from "dated" d
      where m."deleted" and d."account_id" = m."account_id" and d."slack_user_id" = m."slack_user_id";`);
    this.addSql(
      `create index "slack_member_deleted_index" on "slack_member" ("account_id") where "deleted";`,
    );
  }

  override async down(): Promise<void> {
    this.addSql(`drop index if exists "slack_member_deleted_index";`);
    this.addSql(`alter table "slack_member" drop column if exists "deleted_since";`);
  }
}
