import { Migration } from '@mikro-orm/migrations';

/**
 * When Roster stopped trying to deliver an invitation: the mail server refused the address for good, or the
 * last retry failed. A delivery retried later (an import batch's retry for its other invitations) skips it,
 * and `/invite pending` and the App Home show it as failed. Rows from before keep null; the ones whose
 * retries ran out are still told apart by their attempts.
 */
export class Migration20261208060000_invitation_delivery_failed_at extends Migration {
  override async up(): Promise<void> {
    this.addSql(`alter table "invitation" add column "delivery_failed_at" timestamptz null;`);
  }

  override async down(): Promise<void> {
    this.addSql(`alter table "invitation" drop column "delivery_failed_at";`);
  }
}
