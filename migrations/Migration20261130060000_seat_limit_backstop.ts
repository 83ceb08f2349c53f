import { Migration } from '@mikro-orm/migrations';

/**
 * The seat limit, enforced by the database as well as by the seat service: whatever code writes
 * `app_user` or `account`, a transaction that would leave more paid seat holders (employees and
 * contractors not invited, invited or active) than the account's `seat_limit` fails at commit.
 *
 * - The triggers are deferred to commit, so a transaction may pass through an over-limit state (a
 *   bulk update that promotes some rows before it frees others) as long as it ends within the limit.
 * - They fire only for rows that start holding a seat (and for a lowered limit), so imports of locked
 *   users, deactivations, resends and acceptances queue nothing.
 * - At commit, every queued event of one account is checked by one count: the first event records
 *   the account in a transaction-local setting keyed by the commit's statement timestamp, and the
 *   rest of that commit's events for the account return at once. A bulk insert of thousands of paid
 *   rows costs one count, not thousands.
 * - The check locks the account row first (`for no key update`, which the seat service's lock also
 *   waits for, but which does not wait for other transactions merely inserting users of the account),
 *   so two transactions committing at once cannot both count before the other's rows are visible.
 * - The error is a check violation on the constraint name `app_user_seat_limit`, which the app turns
 *   into its "no seat" message.
 */
export class Migration20261130060000_seat_limit_backstop extends Migration {
  override async up(): Promise<void> {
    this.addSql(
      `create index "app_user_seat_holder_index" on "app_user" ("account_id") where "role" in ('employee', 'contractor') and "status" in ('not_invited', 'invited', 'active');`,
    );
    this.addSql(`create function "roster_check_seat_limit"() returns trigger language plpgsql as $$
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
    this.addSql(`create constraint trigger "account_seat_limit_lowered" after update of "seat_limit" on "account"
  deferrable initially deferred for each row
  when (NEW.seat_limit < OLD.seat_limit)
  execute function "roster_check_seat_limit"();`);
  }

  override async down(): Promise<void> {
    this.addSql(`drop trigger if exists "account_seat_limit_lowered" on "account";`);
    this.addSql(`drop trigger if exists "app_user_seat_limit_update" on "app_user";`);
    this.addSql(`drop trigger if exists "app_user_seat_limit_insert" on "app_user";`);
    this.addSql(`drop function if exists "roster_check_seat_limit"();`);
    this.addSql(`drop index if exists "app_user_seat_holder_index";`);
  }
}
