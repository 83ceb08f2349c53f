import { Migration } from '@mikro-orm/migrations';

/**
 * The join page's rate limits, counted in the database so that several Roster instances behind one address
 * count together: one row per allowed hit, kept for the length of the window.
 */
export class Migration20261130060200_rate_limit_hits extends Migration {
  override async up(): Promise<void> {
    this.addSql(
      `create table "rate_limit_hit" ("key" text not null, "at" timestamptz not null default now());`,
    );
    this.addSql(`create index "rate_limit_hit_key_at_index" on "rate_limit_hit" ("key", "at");`);
  }

  override async down(): Promise<void> {
    this.addSql(`drop table if exists "rate_limit_hit";`);
  }
}
