import { Migration } from '@mikro-orm/migrations';

/**
 * When Roster stopped trying to deliver an invitation: the mail server refused the address for good, or the
 * last retry failed. A delivery retried later (an import batch's retry for its other invitations) skips it,
 * and `/invite pending` and the App Home show it as failed. An invitation Roster gave up on before the
 * upgrade is dated by the audit event its last attempt wrote; its attempts cannot tell, as a delivery that
 * Slack's rate limits held back counts attempts without using up a retry.
 */
export class Migration20261208060000_invitation_delivery_failed_at extends Migration {
  override async up(): Promise<void> {
    this.addSql(`alter table "invitation" add column "delivery_failed_at" timestamptz null;`);
    this.addSql(
      `update "invitation" i set "delivery_failed_at" = gave_up.at
       from (select subject_id, max(created_at) as at from "audit_event"
             where action = 'invitation.delivery_failed' and subject_type = 'invitation'
             group by subject_id) gave_up
       where gave_up.subject_id = i.id::text and i.delivered_at is null;`,
    );
  }

  override async down(): Promise<void> {
    this.addSql(`alter table "invitation" drop column "delivery_failed_at";`);
  }
}
