import { Migration } from '@mikro-orm/migrations';

/**
 * CSV imports: a `reading` status while the file is downloaded and checked, one import per Slack file
 * (so a retried event cannot start a second preview), the columns and warnings of the file, who started
 * the import and where its progress is shown; and on each row what the import needs to apply it in
 * batches (its kind, its matching key, its original cells) and what applying it did.
 */
export class Migration20261123100400_csv_import_rows extends Migration {
  override async up(): Promise<void> {
    this.addSql(`alter table "csv_import" drop constraint "csv_import_status_check";`);
    this.addSql(
      `alter table "csv_import" add constraint "csv_import_status_check" check ("status" in ('reading', 'previewed', 'importing', 'completed', 'cancelled', 'failed'));`,
    );
    this.addSql(`alter table "csv_import" alter column "file_sha256" drop not null;`);
    this.addSql(
      `alter table "csv_import" add column "columns" jsonb not null default '[]', add column "warnings" jsonb not null default '[]', add column "error" text null, add column "imported_by" varchar(255) null, add column "started_at" timestamptz null, add column "progress_ts" varchar(255) null;`,
    );
    this.addSql(
      `create unique index "csv_import_account_file_unique" on "csv_import" ("account_id", "file_id") where "file_id" is not null;`,
    );
    this.addSql(
      `create index "csv_import_account_created_index" on "csv_import" ("account_id", "created_at");`,
    );
    this.addSql(
      `alter table "csv_import_row" add column "kind" text null, add column "key" text null, add column "target_id" uuid null, add column "cells" jsonb not null default '[]', add column "result" text null;`,
    );
    this.addSql(
      `alter table "csv_import_row" add constraint "csv_import_row_kind_check" check ("kind" is null or "kind" in ('user', 'contact'));`,
    );
    this.addSql(
      `alter table "csv_import_row" add constraint "csv_import_row_result_check" check ("result" is null or "result" in ('created', 'updated', 'unchanged', 'error'));`,
    );
    // The import takes its next batch from here: rows still to apply, in file order.
    this.addSql(
      `create index "csv_import_row_pending_index" on "csv_import_row" ("csv_import_id", "id") where "applied_at" is null and "outcome" <> 'error';`,
    );
    // Contacts without an email are matched on name and company, so importing them again finds them.
    this.addSql(
      `create index "contact_account_name_company_index" on "contact" ("account_id", lower(btrim("name")), lower(btrim(coalesce("company", '')))) where "email" is null;`,
    );
  }

  override async down(): Promise<void> {
    this.addSql(`drop index if exists "contact_account_name_company_index";`);
    this.addSql(`drop index if exists "csv_import_row_pending_index";`);
    this.addSql(
      `alter table "csv_import_row" drop constraint "csv_import_row_kind_check", drop constraint "csv_import_row_result_check", drop column "kind", drop column "key", drop column "target_id", drop column "cells", drop column "result";`,
    );
    this.addSql(`drop index if exists "csv_import_account_created_index";`);
    this.addSql(`drop index if exists "csv_import_account_file_unique";`);
    this.addSql(
      `alter table "csv_import" drop column "columns", drop column "warnings", drop column "error", drop column "imported_by", drop column "started_at", drop column "progress_ts";`,
    );
    this.addSql(`update "csv_import" set "file_sha256" = '' where "file_sha256" is null;`);
    this.addSql(`alter table "csv_import" alter column "file_sha256" set not null;`);
    this.addSql(`update "csv_import" set "status" = 'failed' where "status" = 'reading';`);
    this.addSql(`alter table "csv_import" drop constraint "csv_import_status_check";`);
    this.addSql(
      `alter table "csv_import" add constraint "csv_import_status_check" check ("status" in ('previewed', 'importing', 'completed', 'cancelled', 'failed'));`,
    );
  }
}
