import { Migration } from '@mikro-orm/migrations';

/**
 * SCIM provisioning: the connection to an account's SCIM 2.0 service, each user's sync state, and the
 * triggers that mark a user's sync state pending whenever a column Roster sends to the service changes.
 *
 * - The triggers are on `app_user` itself, so every path that writes users is seen: the services, the
 *   CSV import's set-based statements, a fix made by hand in psql.
 * - They are statement-level with transition tables: a bulk statement of 100,000 rows costs one
 *   `insert … select`, not 100,000 trigger calls.
 * - Only accounts with a connection are marked, so an account without SCIM pays one anti-join per statement.
 * - An update marks a user only when a synced column changed (`is distinct from` over the row of them).
 * - Repeated changes coalesce into one pending row whose `version` grows; the worker pushes the user's
 *   latest state and keeps the row pending if the version moved while it was pushing.
 * - Each statement that marks rows notifies `roster_scim` with the account id (at commit), which wakes the
 *   sync job at once; a periodic job finds anything a missed notification left behind.
 */
export class Migration20261201020000_scim extends Migration {
  override async up(): Promise<void> {
    this.addSql(
      `create table "scim_connection" ("id" uuid not null, "created_at" timestamptz not null default now(), "updated_at" timestamptz not null default now(), "account_id" uuid not null, "base_url" text not null, "token" text null, "managed" boolean not null default false, "connected_by" varchar(255) null, "refused_at" timestamptz null, "problem" text null, "paused_until" timestamptz null, "failures" int not null default 0, "last_reconciled_at" timestamptz null, primary key ("id"));`,
    );
    this.addSql(
      `alter table "scim_connection" add constraint "scim_connection_account_id_unique" unique ("account_id");`,
    );
    this.addSql(
      `alter table "scim_connection" add constraint "scim_connection_account_id_foreign" foreign key ("account_id") references "account" ("id");`,
    );
    this.addSql(
      `create table "scim_sync" ("user_id" uuid not null, "account_id" uuid not null, "remote_id" text null, "state" text not null, "version" int not null default 0, "pushed" jsonb null, "attempts" int not null default 0, "next_attempt_at" timestamptz not null default now(), "leased_until" timestamptz null, "last_error" text null, "last_synced_at" timestamptz null, "updated_at" timestamptz not null default now(), primary key ("user_id"));`,
    );
    this.addSql(`create index "scim_sync_account_id_index" on "scim_sync" ("account_id");`);
    this.addSql(
      `alter table "scim_sync" add constraint "scim_sync_state_check" check ("state" in ('pending', 'synced', 'failed', 'skipped'));`,
    );
    this.addSql(
      `alter table "scim_sync" add constraint "scim_sync_user_id_foreign" foreign key ("user_id") references "app_user" ("id") on delete cascade;`,
    );
    this.addSql(
      `alter table "scim_sync" add constraint "scim_sync_account_id_foreign" foreign key ("account_id") references "account" ("id");`,
    );
    // The worker's claim: due pending rows of one account, oldest first.
    this.addSql(
      `create index "scim_sync_due_index" on "scim_sync" ("account_id", "next_attempt_at") where "state" = 'pending';`,
    );

    const mark = (from: string, changed = 'true') => `
  for acct in
    with marked as (
      insert into scim_sync (user_id, account_id, state, version, next_attempt_at, updated_at)
      select n.id, n.account_id, 'pending', 1, now(), now()
      from ${from}
      where ${changed}
        and exists (select 1 from scim_connection c where c.account_id = n.account_id)
      on conflict (user_id) do update set
        state = 'pending', version = scim_sync.version + 1, account_id = excluded.account_id,
        attempts = 0, next_attempt_at = now(), updated_at = now()
      returning account_id
    )
    select distinct account_id from marked
  loop
    perform pg_notify('roster_scim', acct::text);
  end loop;
  return null;`;
    this.addSql(`create function "roster_scim_mark_inserted"() returns trigger language plpgsql as $$
declare acct uuid;
begin${mark('scim_new_rows n')}
end
$$;`);
    this.addSql(`create function "roster_scim_mark_updated"() returns trigger language plpgsql as $$
declare acct uuid;
begin${mark(
      'scim_new_rows n join scim_old_rows o on o.id = n.id',
      `(o.email, o.first_name, o.last_name, o.title, o.phone, o.role, o.status, o.login_missing, o.account_id)
        is distinct from (n.email, n.first_name, n.last_name, n.title, n.phone, n.role, n.status, n.login_missing, n.account_id)`,
    )}
end
$$;`);
    this.addSql(`create trigger "app_user_scim_insert" after insert on "app_user"
  referencing new table as scim_new_rows
  for each statement execute function "roster_scim_mark_inserted"();`);
    this.addSql(`create trigger "app_user_scim_update" after update on "app_user"
  referencing old table as scim_old_rows new table as scim_new_rows
  for each statement execute function "roster_scim_mark_updated"();`);
  }

  override async down(): Promise<void> {
    this.addSql(`drop trigger if exists "app_user_scim_update" on "app_user";`);
    this.addSql(`drop trigger if exists "app_user_scim_insert" on "app_user";`);
    this.addSql(`drop function if exists "roster_scim_mark_updated"();`);
    this.addSql(`drop function if exists "roster_scim_mark_inserted"();`);
    this.addSql(`drop table if exists "scim_sync";`);
    this.addSql(`drop table if exists "scim_connection";`);
  }
}
