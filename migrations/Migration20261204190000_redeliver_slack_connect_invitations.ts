import { Migration } from '@mikro-orm/migrations';

/**
 * The pending invitations that went as a Slack DM to a user Migration20261204110000_unlink_slack_connect_ids
 * unlinked (the DM reached someone of another organisation, met through Slack Connect, not the invitee)
 * are voided and delivered again: the link in that DM stops working (no token hash, not delivered), and
 * `last_error` carries the note below, by which Roster queues their delivery when it starts (see
 * queueRedeliveries in src/features/invites/invitation.service.ts, which matches this text exactly). The
 * new delivery goes by email, the other organisation's Slack id no longer counting as the invitee's. Each
 * is audited as `invitation.resent`, with the reason. Nothing is put back on down: the voided link is gone.
 */
export class Migration20261204190000_redeliver_slack_connect_invitations extends Migration {
  override async up(): Promise<void> {
    this.addSql(`with unlinked as (
        select distinct e.account_id, e.subject_id as user_id
        from "audit_event" e
        where e.action = 'user.updated' and e.actor = 'roster' and e.subject_type = 'user'
          and e.data->>'reason' = 'the Slack id is of another organisation (Slack Connect)'
      ), voided as (
        update "invitation" i set token_hash = null, delivered_at = null, delivery_method = null,
          delivering_until = null, updated_at = now(),
          last_error = 'The Slack DM went to someone of another organisation (Slack Connect): delivered again'
        from unlinked u
        where i.account_id = u.account_id and i.user_id::text = u.user_id
          and i.status = 'pending' and i.delivery_method = 'slack_dm' and i.expires_at > now()
        returning i.id, i.account_id, i.user_id
      )
      insert into "audit_event" ("account_id", "actor", "action", "subject_type", "subject_id", "surface", "data")
      select v.account_id, 'roster', 'invitation.resent', 'invitation', v.id::text, 'system',
        jsonb_build_object('email', u.email,
          'reason', 'the Slack DM went to someone of another organisation (Slack Connect); its link no longer works')
      from voided v join "app_user" u on u.id = v.user_id;`);
  }

  override async down(): Promise<void> {
    // The voided links are gone for good; the invitations stay as they are, delivered again or not.
  }
}
