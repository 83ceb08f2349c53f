import { Migration } from '@mikro-orm/migrations';

/**
 * CSV imports stage every row of a file in csv_import_row with COPY and decide them there with
 * set-based statements: the rows in error are read by line (the preview's first errors, the error
 * file) without scanning a million-row import.
 */
export class Migration20261130060100_csv_import_staging extends Migration {
  override async up(): Promise<void> {
    this.addSql(
      `create index "csv_import_row_error_index" on "csv_import_row" ("csv_import_id", "line") where "outcome" = 'error' or "result" = 'error';`,
    );
  }

  override async down(): Promise<void> {
    this.addSql(`drop index if exists "csv_import_row_error_index";`);
  }
}
