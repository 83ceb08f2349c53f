import { Migration } from '@mikro-orm/migrations';

/**
 * When the SCIM service last refused a PATCH (501/405; updates are then PUTs), kept with its connection so each
 * sync run does not meet the refusal again. It is tried again a day after (see scim.sync.ts) and forgotten
 * when the connection is saved again.
 */
export class Migration20261208050000_scim_connection_patch_refused extends Migration {
  override async up(): Promise<void> {
    this.addSql(`alter table "scim_connection" add column "patch_refused_at" timestamptz null;`);
  }

  override async down(): Promise<void> {
    this.addSql(`alter table "scim_connection" drop column "patch_refused_at";`);
  }
}
