import { Migration } from '@mikro-orm/migrations';

/**
 * An invitation has no link token until it is delivered: the delivery makes the token and stores its
 * hash. Until then `token_hash` is null rather than the hash of a random value nobody holds, which cost
 * a SHA-256 and an insert at a random place in the unique index for every invitation an import queues.
 * Null matches no token, and the unique constraint allows any number of nulls.
 */
export class Migration20261203010000_invitation_token_on_delivery extends Migration {
  override async up(): Promise<void> {
    this.addSql(`alter table "invitation" alter column "token_hash" drop not null;`);
  }

  override async down(): Promise<void> {
    this.addSql(
      `update "invitation" set "token_hash" = encode(sha256(convert_to(gen_random_uuid()::text || gen_random_uuid()::text, 'UTF8')), 'hex') where "token_hash" is null;`,
    );
    this.addSql(`alter table "invitation" alter column "token_hash" set not null;`);
  }
}
