import { Migration } from '@mikro-orm/migrations';

/**
 * Users imported without a login email (the file's email column held a name): they keep a placeholder
 * login under the `.invalid` domain, marked missing, and the name the file gave, until an admin sets
 * their email.
 */
export class Migration20261130070000_login_missing extends Migration {
  override async up(): Promise<void> {
    this.addSql(
      `alter table "app_user" add column "login_missing" boolean not null default false, add column "login_hint" varchar(255) null;`,
    );
    this.addSql(
      `alter table "app_user" add constraint "app_user_login_missing_locked" check (not "login_missing" or "status" in ('locked', 'deactivated'));`,
    );
  }

  override async down(): Promise<void> {
    this.addSql(`alter table "app_user" drop constraint "app_user_login_missing_locked";`);
    this.addSql(`alter table "app_user" drop column "login_missing", drop column "login_hint";`);
  }
}
