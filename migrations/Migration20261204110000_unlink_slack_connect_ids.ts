import { Migration } from '@mikro-orm/migrations';

/**
 * Invitations used to go as a Slack DM to whoever in the directory mirror had the invitee's email, people
 * of other organisations met in Slack Connect channels included, and the delivery linked the user to that
 * Slack id. Users linked to a Slack id the mirror knows as another organisation's are unlinked, each change
 * audited (a `user.updated`, so webhooks carry the person as they are now). Nothing is linked back on down.
 */
export class Migration20261204110000_unlink_slack_connect_ids extends Migration {
  override async up(): Promise<void> {
    this.addSql(`with outsiders as (
        select u.id, u.account_id, u.slack_user_id, m.team_ids
        from "app_user" u
        join "account" a on a.id = u.account_id
        join "slack_member" m on m.account_id = u.account_id and m.slack_user_id = u.slack_user_id
        where cardinality(m.team_ids) > 0 and not (a.team_id = any(m.team_ids))
      ), unlinked as (
        update "app_user" u set slack_user_id = null, updated_at = now()
        from outsiders o where u.id = o.id
        returning u.id
      )
      insert into "audit_event" ("account_id", "actor", "action", "subject_type", "subject_id", "surface", "data")
      select o.account_id, 'roster', 'user.updated', 'user', o.id::text, 'system',
        jsonb_build_object('slackUserId', o.slack_user_id, 'teams', to_jsonb(o.team_ids),
          'reason', 'the Slack id is of another organisation (Slack Connect)')
      from outsiders o join unlinked using (id);`);
  }

  override async down(): Promise<void> {
    // Which Slack id was someone else's is known only from the audit trail; nothing is linked back.
  }
}
