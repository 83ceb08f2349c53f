import { Migration } from '@mikro-orm/migrations';

/**
 * Two costs every invitation paid on its way in, for nothing:
 *
 * - The unique index on `invitation.token_hash` held an entry for every invitation, but the hash is null
 *   until the invitation is delivered (and nulls never clash). It now holds delivered links only: an
 *   import of 100,000 invitations no longer writes 100,000 null entries, and a lookup by a link's hash
 *   (`token_hash = $1`, never null) uses it as before.
 * - `audit_event` is an append-only log, written three times for each imported invitation. Its
 *   foreign key to `account` looked the account up again for every event, over a third of the event's
 *   cost. Accounts are never deleted, and every event is written for the account its request was
 *   resolved to; the log is read by account, never joined back to check it.
 */
export class Migration20261204000100_lighter_invitation_writes extends Migration {
  override async up(): Promise<void> {
    this.addSql(`alter table "invitation" drop constraint "invitation_token_hash_unique";`);
    this.addSql(
      `create unique index "invitation_token_hash_unique" on "invitation" ("token_hash") where "token_hash" is not null;`,
    );
    this.addSql(`alter table "audit_event" drop constraint "audit_event_account_id_foreign";`);
  }

  override async down(): Promise<void> {
    this.addSql(
      `alter table "audit_event" add constraint "audit_event_account_id_foreign" foreign key ("account_id") references "account" ("id");`,
    );
    this.addSql(`drop index "invitation_token_hash_unique";`);
    this.addSql(
      `alter table "invitation" add constraint "invitation_token_hash_unique" unique ("token_hash");`,
    );
  }
}
