import { Migration } from '@mikro-orm/migrations';

/**
 * The staging table's rows are written by one `COPY` per file, right after the preview made their import:
 * its foreign key to `csv_import` only looked up that same import again for every row, a third of a
 * million-row file's `COPY` time. Imports are never deleted, and an import's rows are replaced only by its
 * own next preview, so no row can be left without its import.
 */
export class Migration20261203020000_csv_import_row_no_foreign_key extends Migration {
  override async up(): Promise<void> {
    this.addSql(
      `alter table "csv_import_row" drop constraint if exists "csv_import_row_csv_import_id_foreign";`,
    );
  }

  override async down(): Promise<void> {
    this.addSql(
      `delete from "csv_import_row" r where not exists (select 1 from "csv_import" i where i.id = r.csv_import_id);`,
    );
    this.addSql(
      `alter table "csv_import_row" add constraint "csv_import_row_csv_import_id_foreign" foreign key ("csv_import_id") references "csv_import" ("id");`,
    );
  }
}
