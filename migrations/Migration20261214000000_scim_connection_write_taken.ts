import { Migration } from '@mikro-orm/migrations';

/**
 * The token the SCIM service has taken a write (a create or an update) with on this connection, as a SHA-256
 * digest (the environment's token is never stored): until then a 403 to a write says the token may not write,
 * and stops the sync; after, it may be one user's refusal (see scim.push.ts).
 */
export class Migration20261214000000_scim_connection_write_taken extends Migration {
  override async up(): Promise<void> {
    this.addSql(`alter table "scim_connection" add column "write_taken_with" text null;`);
  }

  override async down(): Promise<void> {
    this.addSql(`alter table "scim_connection" drop column "write_taken_with";`);
  }
}
