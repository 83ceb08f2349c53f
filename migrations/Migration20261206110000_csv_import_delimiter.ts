import { Migration } from '@mikro-orm/migrations';

/**
 * The separator an imported file was read with (a comma, a semicolon or a tab), so its error file is
 * written with the same one and opens in the admin's spreadsheet as their own file did. Imports read
 * before it were all comma-separated.
 */
export class Migration20261206110000_csv_import_delimiter extends Migration {
  override async up(): Promise<void> {
    this.addSql(`alter table "csv_import" add column "delimiter" varchar(255) not null default ',';`);
  }

  override async down(): Promise<void> {
    this.addSql(`alter table "csv_import" drop column "delimiter";`);
  }
}
