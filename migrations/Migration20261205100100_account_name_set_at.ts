import { Migration } from '@mikro-orm/migrations';

/**
 * When the workspace's name was last set (`name_set_at`): the `event_time` of the `team_rename` that set
 * it, or when `team.info` answered at a start, to the second. A rename older than that (redelivered, or
 * handled after a newer one) is ignored. Null until a name is next set: any name then counts as newer.
 */
export class Migration20261205100100_account_name_set_at extends Migration {
  override async up(): Promise<void> {
    this.addSql(`alter table "account" add column "name_set_at" timestamptz null;`);
  }

  override async down(): Promise<void> {
    this.addSql(`alter table "account" drop column if exists "name_set_at";`);
  }
}
