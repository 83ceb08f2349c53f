import { Migration } from '@mikro-orm/migrations';

/**
 * Webhook deliveries' indexes, matched to the statements that read them.
 * - `webhook_delivery_due_index` (pending deliveries by due time) served no statement: the sweep and the
 *   claim look per endpoint, which `webhook_delivery_pending_index` (endpoint, due time, id) answers. It
 *   only cost a write on every delivery.
 * - The daily prune of deliveries done with (delivered or given up over 30 days ago) read the whole table,
 *   a month of deliveries; it now reads only the day it removes, by when each delivery ended.
 */
export class Migration20261202030000_webhook_delivery_indexes extends Migration {
  override async up(): Promise<void> {
    this.addSql(`drop index if exists "webhook_delivery_due_index";`);
    this.addSql(
      `create index "webhook_delivery_done_index" on "webhook_delivery" ((coalesce("delivered_at", "last_attempt_at", "created_at"))) where "status" <> 'pending';`,
    );
  }

  override async down(): Promise<void> {
    this.addSql(`drop index if exists "webhook_delivery_done_index";`);
    this.addSql(
      `create index "webhook_delivery_due_index" on "webhook_delivery" ("next_attempt_at") where "status" = 'pending';`,
    );
  }
}
