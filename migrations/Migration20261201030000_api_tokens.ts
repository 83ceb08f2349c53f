import { Migration } from '@mikro-orm/migrations';

/**
 * The read API: its tokens (hashes only), and a change position on people, contacts and audit events.
 *
 * - `change_xid` is the transaction that last wrote the row (`pg_current_xact_id()`), set by a trigger on
 *   every insert and update whatever code runs it: the ORM, the CSV import's set-based SQL, a manual fix.
 *   The API lists rows in (change_xid, id) order and only those whose transaction ended before every
 *   transaction still running in this database began (src/features/api/api.queries.ts). A change
 *   that commits later therefore always lands after any cursor already handed out: paging never skips it.
 *   Timestamps and sequence values cannot promise that, since transactions commit out of the order in
 *   which they took them.
 * - Positions are transaction ids of this database server. A dump restored on another server brings
 *   positions that server has not reached yet; Roster resets those at start (src/features/api/api.positions.ts).
 * - The same trigger keeps `updated_at` current on every update that changes the row, so the API's
 *   `updated_since` filter holds on every path.
 */
export class Migration20261201030000_api_tokens extends Migration {
  override async up(): Promise<void> {
    this.addSql(
      `create table "api_token" ("id" uuid not null, "created_at" timestamptz not null default now(), "updated_at" timestamptz not null default now(), "account_id" uuid not null, "name" varchar(255) not null, "token_hash" varchar(255) not null, "hint" varchar(255) not null, "scope" text not null default 'read', "managed" boolean not null default false, "created_by" varchar(255) not null, "expires_at" timestamptz null, "last_used_at" timestamptz null, "revoked_at" timestamptz null, "revoked_by" varchar(255) null, primary key ("id"));`,
    );
    this.addSql(
      `alter table "api_token" add constraint "api_token_token_hash_unique" unique ("token_hash");`,
    );
    this.addSql(
      `alter table "api_token" add constraint "api_token_account_id_foreign" foreign key ("account_id") references "account" ("id");`,
    );
    this.addSql(
      `alter table "api_token" add constraint "api_token_token_hash_check" check ("token_hash" ~ '^[0-9a-f]{64}$');`,
    );
    // Every token reads; a later write API gives its tokens another scope, so no existing token gains it.
    this.addSql(
      `alter table "api_token" add constraint "api_token_scope_check" check ("scope" in ('read'));`,
    );
    this.addSql(
      `create unique index "api_token_account_name_unique" on "api_token" ("account_id", lower("name")) where "revoked_at" is null and not "managed";`,
    );

    for (const table of ['app_user', 'contact', 'audit_event']) {
      this.addSql(
        `alter table "${table}" add column "change_xid" xid8 not null default pg_current_xact_id();`,
      );
      this.addSql(
        `create index "${table}_account_change_index" on "${table}" ("account_id", "change_xid", "id");`,
      );
    }
    this.addSql(`create function "roster_row_changed"() returns trigger language plpgsql as $$
begin
  if TG_OP = 'UPDATE' then
    if NEW is not distinct from OLD then return NEW; end if;
    -- A statement that sets the position itself (Roster's repair after a restore) is taken as written.
    if NEW.change_xid is distinct from OLD.change_xid then return NEW; end if;
    NEW.updated_at := now();
  end if;
  NEW.change_xid := pg_current_xact_id();
  return NEW;
end
$$;`);
    for (const table of ['app_user', 'contact']) {
      this.addSql(`create trigger "${table}_row_changed" before insert or update on "${table}"
  for each row execute function "roster_row_changed"();`);
    }
  }

  override async down(): Promise<void> {
    for (const table of ['app_user', 'contact']) {
      this.addSql(`drop trigger if exists "${table}_row_changed" on "${table}";`);
    }
    this.addSql(`drop function if exists "roster_row_changed"();`);
    for (const table of ['app_user', 'contact', 'audit_event']) {
      this.addSql(`drop index if exists "${table}_account_change_index";`);
      this.addSql(`alter table "${table}" drop column if exists "change_xid";`);
    }
    this.addSql(`drop table if exists "api_token" cascade;`);
  }
}
