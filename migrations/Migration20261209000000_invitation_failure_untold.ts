import { Migration } from '@mikro-orm/migrations';

/**
 * An invitation an import batch gave up on, whose inviter is not told yet, and why: marked in the
 * transaction that records the failure and cleared in the one that queues the batch's notice, so a batch
 * stopped between the two tells it on its retry rather than never.
 */
export class Migration20261209000000_invitation_failure_untold extends Migration {
  override async up(): Promise<void> {
    this.addSql(`alter table "invitation" add column "failure_untold" text null;`);
  }

  override async down(): Promise<void> {
    this.addSql(`alter table "invitation" drop column "failure_untold";`);
  }
}
