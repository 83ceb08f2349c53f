import { Migration } from '@mikro-orm/migrations';

/**
 * Faster CSV imports.
 * - csv_import_row is unlogged: staged rows are a working copy of a file Slack still holds, written
 *   once by COPY and read by the import; skipping the write-ahead log halves what staging writes. A
 *   database crash empties the table, and an import whose rows are gone fails with a message asking
 *   for the file again (clean restarts keep it).
 * - An import records how far it has been applied in csv_import.applied_through (the last row id of its
 *   last committed batch) instead of marking every row: a row keeps a result only when it differs from
 *   what the preview decided (an error, a row changed meanwhile), so a batch no longer rewrites each row.
 */
export class Migration20261201050000_import_speed extends Migration {
  override async up(): Promise<void> {
    this.addSql(`alter table "csv_import" add column "applied_through" bigint not null default 0;`);
    // Imports under way keep their place: everything before their first unapplied row is applied.
    this.addSql(`update "csv_import" i set "applied_through" = coalesce(
        (select min(r."id") - 1 from "csv_import_row" r
          where r."csv_import_id" = i."id" and r."applied_at" is null and r."outcome" <> 'error'),
        (select max(r."id") from "csv_import_row" r where r."csv_import_id" = i."id"), 0)
      where i."status" = 'importing';`);
    this.addSql(`drop index if exists "csv_import_row_pending_index";`);
    this.addSql(`alter table "csv_import_row" drop column "applied_at";`);
    this.addSql(`alter table "csv_import_row" set unlogged;`);
  }

  override async down(): Promise<void> {
    this.addSql(`alter table "csv_import_row" set logged;`);
    this.addSql(`alter table "csv_import_row" add column "applied_at" timestamptz null;`);
    this.addSql(`update "csv_import_row" r set "applied_at" = now()
      from "csv_import" i where i."id" = r."csv_import_id" and r."id" <= i."applied_through";`);
    this.addSql(
      `create index "csv_import_row_pending_index" on "csv_import_row" ("csv_import_id", "id") where "applied_at" is null and "outcome" <> 'error';`,
    );
    this.addSql(`alter table "csv_import" drop column "applied_through";`);
  }
}
