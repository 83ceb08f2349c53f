import { Migration } from '@mikro-orm/migrations';

/**
 * Confirmation emails are limited per address and account: each join form submission counts the
 * address's confirmations of the last hour, so they are found by address and time.
 */
export class Migration20261204140000_join_confirmation_recipient extends Migration {
  override async up(): Promise<void> {
    this.addSql(
      `create index "join_confirmation_email_created_index" on "join_confirmation" (lower(btrim("email")), "created_at");`,
    );
  }

  override async down(): Promise<void> {
    this.addSql(`drop index if exists "join_confirmation_email_created_index";`);
  }
}
