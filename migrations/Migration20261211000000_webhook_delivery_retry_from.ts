import { Migration } from '@mikro-orm/migrations';

/**
 * When a webhook delivery's retries count from, when not from its event: the moment its endpoint was
 * enabled again after it waited. Without it, an event that waited over a day on a turned-off endpoint was
 * past its retry window at Enable and given up at its first failure there.
 */
export class Migration20261211000000_webhook_delivery_retry_from extends Migration {
  override async up(): Promise<void> {
    this.addSql(`alter table "webhook_delivery" add column "retry_from" timestamptz null;`);
  }

  override async down(): Promise<void> {
    this.addSql(`alter table "webhook_delivery" drop column "retry_from";`);
  }
}
