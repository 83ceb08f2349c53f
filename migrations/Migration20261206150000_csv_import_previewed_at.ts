import { Migration } from '@mikro-orm/migrations';

/**
 * When an import's preview last compared its rows with the people and contacts in Roster, and how many
 * times it was checked again: Import on a preview made before another import of the account changed
 * people checks it again instead of applying it. Imports previewed before it count from their upload,
 * which is earlier than their preview, so none of them is taken as newer than it is.
 */
export class Migration20261206150000_csv_import_previewed_at extends Migration {
  override async up(): Promise<void> {
    this.addSql(`alter table "csv_import" add column "previewed_at" timestamptz null;`);
    this.addSql(`alter table "csv_import" add column "preview_revision" int not null default 0;`);
    this.addSql(`update "csv_import" set "previewed_at" = "created_at" where "status" <> 'reading';`);
  }

  override async down(): Promise<void> {
    this.addSql(`alter table "csv_import" drop column "previewed_at";`);
    this.addSql(`alter table "csv_import" drop column "preview_revision";`);
  }
}
