import { Migration } from '@mikro-orm/migrations';

/**
 * Who is delivering an invitation right now: a lease taken when a delivery starts and cleared when it
 * ends, however it ends. A second delivery of the same invitation while the lease runs (a batch job
 * started again while its first run still works, say) waits instead of sending a second invitation whose
 * new link would void the first. A delivery that dies leaves a lease that lapses after 15 minutes.
 */
export class Migration20261204000200_invitation_delivery_lease extends Migration {
  override async up(): Promise<void> {
    this.addSql(`alter table "invitation" add column "delivering_until" timestamptz null;`);
  }

  override async down(): Promise<void> {
    this.addSql(`alter table "invitation" drop column "delivering_until";`);
  }
}
