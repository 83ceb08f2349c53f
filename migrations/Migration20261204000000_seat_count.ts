import { Migration } from '@mikro-orm/migrations';

/**
 * Paid seats in use, kept as a number per account instead of counted again and again.
 *
 * Before, every check counted an account's seat holders: the seat service under its lock, and the
 * seat-limit backstop once per committing transaction. Each count reads every paid person of the
 * account, so an import of 100,000 invitations in batches counted 50,000 rows on average, twice a
 * batch, and the time spent counting grew with the square of the file.
 *
 * Now:
 * - `seat_usage` holds each account's committed count of seat holders (employees and contractors not
 *   invited, invited or active).
 * - A statement-level trigger on `app_user` (insert, update, delete) writes one `seat_change` row per
 *   statement and account whose seats moved, with the net change, read from the statement's
 *   transition tables. Those rows live only inside their transaction: no other one ever sees them.
 * - At commit, a deferred constraint trigger on `seat_change` takes the account row's lock (the one the
 *   seat service's lock takes), adds the transaction's changes to `seat_usage` and removes them, and
 *   refuses the commit when seats were taken and the count passes the limit: the same last defence
 *   as before, with the same constraint name, checked on the transaction's end state. A transaction
 *   that frees seats before it takes as many still passes.
 * - Seats in use, as a transaction sees them, are `seat_usage.used` plus its own `seat_change` rows.
 *
 * The account row lock is taken at commit only, as the count's was, and only by a transaction that
 * takes seats: one that merely writes people does not wait for `/seats` or another import's batch, and
 * one that only frees seats (a deactivation, an expired invitation) adds its change under the count's
 * own row lock, so it never waits for the account while holding a person (the other order, account
 * first, is the one every seat-taking path keeps).
 *
 * `app_user` is locked against writes while the count is first taken and the triggers made, so no
 * instance still running the previous version adds a seat holder the count misses. A `TRUNCATE` of
 * `app_user` (which fires no row or statement trigger of the others) zeroes the counts.
 */
export class Migration20261204000000_seat_count extends Migration {
  override async up(): Promise<void> {
    this.addSql(`lock table "app_user" in share row exclusive mode;`);
    this.addSql(`create table "seat_usage" (
  "account_id" uuid primary key references "account" ("id"),
  "used" int not null default 0
);`);
    this.addSql(`insert into "seat_usage" ("account_id", "used")
select a.id, (select count(*) from app_user u where u.account_id = a.id
  and u.role in ('employee', 'contractor') and u.status in ('not_invited', 'invited', 'active'))
from account a;`);
    this.addSql(`create table "seat_change" (
  "id" bigint generated always as identity primary key,
  "account_id" uuid not null,
  "delta" int not null
);`);

    // Records each statement's net change of seat holders, per account.
    this.addSql(`create function "roster_seat_change"() returns trigger language plpgsql as $$
begin
  if TG_OP = 'INSERT' then
    insert into seat_change (account_id, delta)
    select n.account_id, count(*) from seat_new n
    where n.role in ('employee', 'contractor') and n.status in ('not_invited', 'invited', 'active')
    group by n.account_id;
  elsif TG_OP = 'DELETE' then
    insert into seat_change (account_id, delta)
    select o.account_id, -count(*) from seat_old o
    where o.role in ('employee', 'contractor') and o.status in ('not_invited', 'invited', 'active')
    group by o.account_id;
  else
    insert into seat_change (account_id, delta)
    select c.account_id, sum(c.d) from (
      select n.account_id, 1 as d from seat_new n
      where n.role in ('employee', 'contractor') and n.status in ('not_invited', 'invited', 'active')
      union all
      select o.account_id, -1 from seat_old o
      where o.role in ('employee', 'contractor') and o.status in ('not_invited', 'invited', 'active')
    ) c
    group by c.account_id having sum(c.d) <> 0;
  end if;
  return null;
end
$$;`);
    this.addSql(`create trigger "app_user_seat_change_insert" after insert on "app_user"
  referencing new table as seat_new for each statement execute function "roster_seat_change"();`);
    this.addSql(`create trigger "app_user_seat_change_update" after update on "app_user"
  referencing old table as seat_old new table as seat_new for each statement execute function "roster_seat_change"();`);
    this.addSql(`create trigger "app_user_seat_change_delete" after delete on "app_user"
  referencing old table as seat_old for each statement execute function "roster_seat_change"();`);

    // At commit: the first change of an account applies all of the transaction's changes for it.
    this.addSql(`create function "roster_apply_seat_change"() returns trigger language plpgsql as $$
declare
  lim int;
  total int;
  now_used int;
begin
  if not exists (select 1 from seat_change where id = NEW.id) then return null; end if;
  select coalesce(sum(delta), 0) into total from seat_change where account_id = NEW.account_id;
  -- Seats taken are checked against the limit under the account's lock; seats freed need no check.
  if total > 0 then
    select a.seat_limit into lim from account a where a.id = NEW.account_id for no key update;
  end if;
  with gone as (delete from seat_change where account_id = NEW.account_id returning delta)
  select coalesce(sum(delta), 0) into total from gone;
  if total = 0 then return null; end if;
  insert into seat_usage as s (account_id, used) values (NEW.account_id, total)
  on conflict (account_id) do update set used = s.used + excluded.used
  returning s.used into now_used;
  if total > 0 and now_used > lim then
    raise exception 'No paid seat is free: % paid seats would be in use, over the limit of %.', now_used, lim
      using errcode = 'check_violation', constraint = 'app_user_seat_limit', table = 'app_user';
  end if;
  return null;
end
$$;`);
    this.addSql(`create constraint trigger "seat_change_apply" after insert on "seat_change"
  deferrable initially deferred for each row execute function "roster_apply_seat_change"();`);
    this.addSql(`create function "roster_seat_truncate"() returns trigger language plpgsql as $$
begin
  update seat_usage set used = 0 where used <> 0;
  delete from seat_change;
  return null;
end
$$;`);
    this.addSql(`create trigger "app_user_seat_truncate" after truncate on "app_user"
  for each statement execute function "roster_seat_truncate"();`);

    // The old per-row checks and the index their counts read, replaced by the above; a lowered limit
    // is checked against the count.
    this.addSql(`drop trigger "app_user_seat_limit_insert" on "app_user";`);
    this.addSql(`drop index "app_user_seat_holder_index";`);
    this.addSql(`drop trigger "app_user_seat_limit_update" on "app_user";`);
    this.addSql(`create or replace function "roster_check_seat_limit"() returns trigger language plpgsql as $$
declare
  lim int;
  used int;
begin
  select a.seat_limit into lim from account a where a.id = NEW.id for no key update;
  select coalesce((select s.used from seat_usage s where s.account_id = NEW.id), 0)
    + coalesce((select sum(c.delta) from seat_change c where c.account_id = NEW.id), 0)
  into used;
  if used > lim then
    raise exception 'No paid seat is free: % paid seats would be in use, over the limit of %.', used, lim
      using errcode = 'check_violation', constraint = 'app_user_seat_limit', table = TG_TABLE_NAME;
  end if;
  return null;
end
$$;`);
  }

  override async down(): Promise<void> {
    this.addSql(`drop trigger if exists "app_user_seat_truncate" on "app_user";`);
    this.addSql(`drop function if exists "roster_seat_truncate"();`);
    this.addSql(`drop trigger if exists "seat_change_apply" on "seat_change";`);
    this.addSql(`drop trigger if exists "app_user_seat_change_insert" on "app_user";`);
    this.addSql(`drop trigger if exists "app_user_seat_change_update" on "app_user";`);
    this.addSql(`drop trigger if exists "app_user_seat_change_delete" on "app_user";`);
    this.addSql(`drop function if exists "roster_apply_seat_change"();`);
    this.addSql(`drop function if exists "roster_seat_change"();`);
    this.addSql(`drop table if exists "seat_change";`);
    this.addSql(`drop table if exists "seat_usage";`);
    this.addSql(
      `create index "app_user_seat_holder_index" on "app_user" ("account_id") where "role" in ('employee', 'contractor') and "status" in ('not_invited', 'invited', 'active');`,
    );
    this.addSql(`create or replace function "roster_check_seat_limit"() returns trigger language plpgsql as $$
declare
  acct uuid;
  seen text;
  mark text;
  lim int;
  used int;
begin
  if TG_TABLE_NAME = 'account' then acct := NEW.id; else acct := NEW.account_id; end if;
  mark := statement_timestamp()::text || '/' || acct::text || ';';
  seen := coalesce(current_setting('roster.seat_limit_checked', true), '');
  if position(mark in seen) > 0 then return null; end if;
  select a.seat_limit into lim from account a where a.id = acct for no key update;
  select count(*) into used from app_user u
    where u.account_id = acct and u.role in ('employee', 'contractor')
      and u.status in ('not_invited', 'invited', 'active');
  if used > lim then
    raise exception 'No paid seat is free: % paid seats would be in use, over the limit of %.', used, lim
      using errcode = 'check_violation', constraint = 'app_user_seat_limit', table = TG_TABLE_NAME;
  end if;
  perform set_config('roster.seat_limit_checked', seen || mark, true);
  return null;
end
$$;`);
    this.addSql(`create constraint trigger "app_user_seat_limit_insert" after insert on "app_user"
  deferrable initially deferred for each row
  when (NEW.role in ('employee', 'contractor') and NEW.status in ('not_invited', 'invited', 'active'))
  execute function "roster_check_seat_limit"();`);
    this.addSql(`create constraint trigger "app_user_seat_limit_update" after update of "role", "status", "account_id" on "app_user"
  deferrable initially deferred for each row
  when (NEW.role in ('employee', 'contractor') and NEW.status in ('not_invited', 'invited', 'active')
    and not (OLD.role in ('employee', 'contractor') and OLD.status in ('not_invited', 'invited', 'active')
      and OLD.account_id = NEW.account_id))
  execute function "roster_check_seat_limit"();`);
  }
}
