import { Migration } from '@mikro-orm/migrations';

/**
 * What an invitation's link is derived from with the secret, kept from its first delivery attempt: an
 * attempt retried after one whose email went out but whose recording failed sends the same link, so the
 * first one the person received keeps working. Links delivered before it stay as they are (their hash).
 */
export class Migration20261205170000_invitation_token_nonce extends Migration {
  override async up(): Promise<void> {
    this.addSql(`alter table "invitation" add column "token_nonce" varchar(255) null;`);
  }

  override async down(): Promise<void> {
    this.addSql(`alter table "invitation" drop column "token_nonce";`);
  }
}
