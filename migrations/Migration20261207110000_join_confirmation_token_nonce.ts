import { Migration } from '@mikro-orm/migrations';

/**
 * A random part of each join confirmation's link, kept with the row, so the link is not derived from the
 * confirmation's id and the secret alone (as invitation links are, see invitation_token_nonce). Rows made
 * before it have none and derive their link as before, so their emails, sent or still queued, keep working.
 */
export class Migration20261207110000_join_confirmation_token_nonce extends Migration {
  override async up(): Promise<void> {
    this.addSql(`alter table "join_confirmation" add column "token_nonce" varchar(255) null;`);
  }

  override async down(): Promise<void> {
    this.addSql(`alter table "join_confirmation" drop column "token_nonce";`);
  }
}
