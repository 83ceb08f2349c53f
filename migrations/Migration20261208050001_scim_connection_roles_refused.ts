import { Migration } from '@mikro-orm/migrations';

/**
 * When the SCIM service last refused `roles` (a 400 naming them; users are then sent without), kept with its
 * connection so each sync run does not meet the refusal again. They are tried again a day after (see
 * scim.sync.ts) and forgotten when the connection is saved again.
 */
export class Migration20261208050001_scim_connection_roles_refused extends Migration {
  override async up(): Promise<void> {
    this.addSql(`alter table "scim_connection" add column "roles_refused_at" timestamptz null;`);
  }

  override async down(): Promise<void> {
    this.addSql(`alter table "scim_connection" drop column "roles_refused_at";`);
  }
}
