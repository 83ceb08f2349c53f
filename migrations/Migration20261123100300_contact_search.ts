import { Migration } from '@mikro-orm/migrations';

/** Prefix search on contacts (name, email, company) and users (name, email), per account. */
export class Migration20261123100300_contact_search extends Migration {
  override async up(): Promise<void> {
    this.addSql(
      `create index "contact_search_name" on "contact" ("account_id", lower("name") text_pattern_ops);`,
    );
    this.addSql(
      `create index "contact_search_email" on "contact" ("account_id", lower("email") text_pattern_ops) where "email" is not null;`,
    );
    this.addSql(
      `create index "contact_search_company" on "contact" ("account_id", lower("company") text_pattern_ops) where "company" is not null;`,
    );
    this.addSql(
      `create index "app_user_search_email" on "app_user" ("account_id", lower("email") text_pattern_ops);`,
    );
    this.addSql(
      `create index "app_user_search_name" on "app_user" ("account_id", lower(btrim(coalesce("first_name", '') || ' ' || coalesce("last_name", ''))) text_pattern_ops);`,
    );
    this.addSql(
      `create index "app_user_search_last_name" on "app_user" ("account_id", lower("last_name") text_pattern_ops) where "last_name" is not null;`,
    );
  }

  override async down(): Promise<void> {
    for (const index of [
      'contact_search_name',
      'contact_search_email',
      'contact_search_company',
      'app_user_search_email',
      'app_user_search_name',
      'app_user_search_last_name',
    ]) {
      this.addSql(`drop index if exists "${index}";`);
    }
  }
}
