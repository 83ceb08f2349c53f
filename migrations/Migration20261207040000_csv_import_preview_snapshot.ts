import { Migration } from '@mikro-orm/migrations';

/**
 * What a preview saw, and whether Import is having it checked again.
 *
 * - `previewed_snapshot` is the snapshot of the transactions a preview's comparison could see. A person or
 *   contact of the account written since by a transaction outside it (its `change_xid`, kept by the
 *   database on every insert and update, is not visible in it), and named by the file, makes the preview
 *   stale, whatever changed it: a card edited by hand, a join link, an invitation, SCIM. Finding them is a
 *   range of the (account_id, change_xid, id) index and takes no lock. Previews made before it have none,
 *   and are checked again once on Import.
 * - `checking_revision` is the revision Import queued a check for: while it equals `preview_revision` the
 *   check is not done, so a click on the preview as it was can say it is being checked.
 */
export class Migration20261207040000_csv_import_preview_snapshot extends Migration {
  override async up(): Promise<void> {
    this.addSql(`alter table "csv_import" add column "previewed_snapshot" pg_snapshot null;`);
    this.addSql(`alter table "csv_import" add column "checking_revision" int null;`);
  }

  override async down(): Promise<void> {
    this.addSql(`alter table "csv_import" drop column "previewed_snapshot";`);
    this.addSql(`alter table "csv_import" drop column "checking_revision";`);
  }
}
