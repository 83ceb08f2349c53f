import { Migration } from '@mikro-orm/migrations';

/**
 * The lifecycle from Slack: an invitation that expires before it is accepted marks its user `expired`
 * (holding no seat), and an account keeps default terms for the join links its admins post.
 */
export class Migration20261130000000_lifecycle extends Migration {
  override async up(): Promise<void> {
    this.addSql(`alter table "app_user" drop constraint "app_user_status_check";`);
    this.addSql(
      `alter table "app_user" add constraint "app_user_status_check" check ("status" in ('locked', 'not_invited', 'invited', 'active', 'expired', 'deactivated'));`,
    );
    this.addSql(`alter table "invitation" drop constraint "invitation_status_check";`);
    this.addSql(
      `alter table "invitation" add constraint "invitation_status_check" check ("status" in ('pending', 'accepted', 'cancelled', 'superseded', 'expired'));`,
    );
    this.addSql(
      `alter table "account" add column "join_link_expiry_days" int not null default 30, add column "join_link_max_uses" int null;`,
    );
    // The expiry job looks for pending invitations past their date.
    this.addSql(
      `create index "invitation_pending_expiry_index" on "invitation" ("expires_at") where "status" = 'pending';`,
    );
  }

  override async down(): Promise<void> {
    this.addSql(`drop index if exists "invitation_pending_expiry_index";`);
    this.addSql(
      `alter table "account" drop column "join_link_expiry_days", drop column "join_link_max_uses";`,
    );
    this.addSql(`update "invitation" set "status" = 'cancelled' where "status" = 'expired';`);
    this.addSql(`alter table "invitation" drop constraint "invitation_status_check";`);
    this.addSql(
      `alter table "invitation" add constraint "invitation_status_check" check ("status" in ('pending', 'accepted', 'cancelled', 'superseded'));`,
    );
    this.addSql(`update "app_user" set "status" = 'deactivated' where "status" = 'expired';`);
    this.addSql(`alter table "app_user" drop constraint "app_user_status_check";`);
    this.addSql(
      `alter table "app_user" add constraint "app_user_status_check" check ("status" in ('locked', 'not_invited', 'invited', 'active', 'deactivated'));`,
    );
  }
}
