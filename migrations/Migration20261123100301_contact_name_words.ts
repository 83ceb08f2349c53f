import { Migration } from '@mikro-orm/migrations';

/**
 * Finding a contact by the start of their surname: "lee" finds "Ana Lee". Indexes what follows the
 * first word of a name, for names of more than one word.
 */
export class Migration20261123100301_contact_name_words extends Migration {
  override async up(): Promise<void> {
    this.addSql(
      `create index "contact_search_name_rest" on "contact" ("account_id", lower(regexp_replace("name", '^\\s*\\S+\\s+', '')) text_pattern_ops) where "name" ~ '\\S\\s+\\S';`,
    );
  }

  override async down(): Promise<void> {
    this.addSql(`drop index if exists "contact_search_name_rest";`);
  }
}
