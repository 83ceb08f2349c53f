import { Migration } from '@mikro-orm/migrations';

/** The audit actions that become webhook events (see `webhook_events` below for which event each makes). */
const ACTIONS = [
  'user.added',
  'user.imported',
  'user.updated',
  'user.edited',
  'user.email_changed',
  'user.permission_set_changed',
  'user.unlocked',
  'user.deactivated',
  'user.reactivated',
  'user.role_changed',
  'invitation.created',
  'invitation.resent',
  'invitation.accepted',
  'invitation.cancelled',
  'invitation.expired',
  'seat_limit.changed',
  'seat_request.approved',
  'seat_request.rejected',
  'seat_request.expired',
  'contact.added',
  'contact.imported',
  'contact.edited',
  'contact.updated',
  'contact.converted',
  'csv_import.completed',
];

/**
 * Signed webhooks: endpoints, the outbox of deliveries and the log of attempts.
 *
 * Webhook events come from the audit log, which every people change writes in its own transaction. A
 * constraint trigger on `audit_event`, deferred to commit, turns each audited change into outbox rows
 * (one per enabled endpoint that wants the event): the rows commit with the change or not at all, so no
 * change is missed and none is sent that did not happen. No cursor over the audit ids is kept (bigserial
 * ids can commit out of order); deliveries are claimed by status with `for update skip locked`. Each
 * endpoint's events of one subject (a person, a contact…) form a chain, delivered oldest first; the chain
 * is one indexed column, so finding a chain's oldest pending event is one probe of its own index.
 *
 * The payload is built at commit, when every statement of the transaction has run: the person, contact,
 * seat request or import as the change left it. The trigger tells the app with `pg_notify`, which
 * Postgres delivers after the commit and sends once per transaction.
 */
export class Migration20261201010000_webhooks extends Migration {
  override async up(): Promise<void> {
    this.addSql(`create table "webhook_endpoint" (
      "id" uuid primary key,
      "account_id" uuid null references "account" ("id") on delete cascade,
      "url" text not null,
      "secret" text not null,
      "events" text[] null,
      "managed" boolean not null default false,
      "enabled" boolean not null default true,
      "disabled_reason" text null,
      "failing_since" timestamptz null,
      "created_by" text null,
      "created_at" timestamptz not null default now(),
      "updated_at" timestamptz not null default now(),
      constraint "webhook_endpoint_secret_check" check ("secret" like 'whsec\\_%'),
      constraint "webhook_endpoint_owner_check" check ("managed" = ("account_id" is null)));`);
    this.addSql(`create index "webhook_endpoint_account_index" on "webhook_endpoint" ("account_id");`);
    this.addSql(
      `create unique index "webhook_endpoint_one_managed" on "webhook_endpoint" ("managed") where "managed";`,
    );
    this.addSql(`create table "webhook_delivery" (
      "id" bigserial primary key,
      "endpoint_id" uuid not null references "webhook_endpoint" ("id") on delete cascade,
      "account_id" uuid not null references "account" ("id") on delete cascade,
      "msg_id" text not null,
      "event_type" text not null,
      "subject" text not null,
      "chain" text generated always as ("endpoint_id"::text || ' ' || "subject") stored,
      "payload" jsonb not null,
      "audit_event_id" bigint null,
      "status" text not null default 'pending',
      "attempts" int not null default 0,
      "next_attempt_at" timestamptz not null default now(),
      "lease_until" timestamptz null,
      "last_attempt_at" timestamptz null,
      "last_response_status" int null,
      "last_error" text null,
      "delivered_at" timestamptz null,
      "created_at" timestamptz not null default now(),
      constraint "webhook_delivery_status_check" check ("status" in ('pending', 'delivered', 'failed')),
      constraint "webhook_delivery_msg_unique" unique ("endpoint_id", "msg_id"));`);
    this.addSql(
      `create index "webhook_delivery_due_index" on "webhook_delivery" ("next_attempt_at") where "status" = 'pending';`,
    );
    this.addSql(
      `create index "webhook_delivery_chain_index" on "webhook_delivery" ("chain", "id") where "status" = 'pending';`,
    );
    this.addSql(
      `create index "webhook_delivery_pending_index" on "webhook_delivery" ("endpoint_id", "next_attempt_at", "id") where "status" = 'pending';`,
    );
    this.addSql(`create table "webhook_attempt" (
      "id" bigserial primary key,
      "delivery_id" bigint not null references "webhook_delivery" ("id") on delete cascade,
      "endpoint_id" uuid not null references "webhook_endpoint" ("id") on delete cascade,
      "account_id" uuid not null,
      "attempt" int not null,
      "at" timestamptz not null default now(),
      "response_status" int null,
      "error" text null,
      "duration_ms" int not null,
      "outcome" text not null,
      constraint "webhook_attempt_outcome_check" check ("outcome" in ('delivered', 'retrying', 'failed')));`);
    this.addSql(
      `create index "webhook_attempt_endpoint_index" on "webhook_attempt" ("endpoint_id", "account_id", "id");`,
    );
    this.addSql(`create index "webhook_attempt_delivery_index" on "webhook_attempt" ("delivery_id");`);

    this.addSql(`create function "webhook_ts"(t timestamptz) returns text language sql immutable as $$
  select to_char(t at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')
$$;`);
    this.addSql(`create function "webhook_person"(uid uuid) returns jsonb language sql stable as $$
  select jsonb_build_object(
    'id', u.id, 'email', case when u.login_missing then null else u.email end, 'first_name', u.first_name, 'last_name', u.last_name,
    'name', nullif(btrim(concat_ws(' ', u.first_name, u.last_name)), ''),
    'title', u.title, 'phone', u.phone, 'role', u.role, 'status', u.status,
    'seat', u.role in ('employee', 'contractor') and u.status in ('not_invited', 'invited', 'active'),
    'permission_set', case when ps.id is null then null
      else jsonb_build_object('id', ps.id, 'name', ps.name, 'admin', ps.is_admin) end,
    'slack_user_id', u.slack_user_id, 'login_missing', u.login_missing,
    'deactivated_at', webhook_ts(u.deactivated_at),
    'created_at', webhook_ts(u.created_at), 'updated_at', webhook_ts(u.updated_at))
  from app_user u left join permission_set ps on ps.id = u.permission_set_id
  where u.id = uid
$$;`);
    this.addSql(`create function "webhook_contact"(cid uuid) returns jsonb language sql stable as $$
  select jsonb_build_object(
    'id', c.id, 'name', c.name, 'email', c.email, 'phone', c.phone, 'company', c.company,
    'title', c.title, 'user_id', c.user_id,
    'created_at', webhook_ts(c.created_at), 'updated_at', webhook_ts(c.updated_at))
  from contact c where c.id = cid
$$;`);
    this.addSql(`create function "webhook_events"(ev audit_event)
  returns table ("type" text, "subject" text, "data" jsonb) language plpgsql stable as $$
declare
  change jsonb := jsonb_build_object('action', ev.action, 'actor', ev.actor, 'surface', ev.surface,
    'audit_event_id', ev.id, 'at', webhook_ts(ev.created_at), 'details', ev.data);
  uid uuid;
  t text;
begin
  if ev.subject_type = 'invitation' and ev.subject_id is not null then
    select i.user_id into uid from invitation i where i.id = ev.subject_id::uuid;
  elsif ev.subject_type = 'user' and ev.subject_id is not null then
    uid := ev.subject_id::uuid;
  end if;
  t := case ev.action
    when 'user.added' then 'person.created'
    when 'user.imported' then 'person.created'
    when 'user.updated' then 'person.updated'
    when 'user.edited' then 'person.updated'
    when 'user.email_changed' then 'person.updated'
    when 'user.permission_set_changed' then 'person.updated'
    when 'user.unlocked' then 'person.updated'
    when 'invitation.expired' then 'person.updated'
    when 'invitation.created' then 'person.invited'
    when 'invitation.resent' then 'person.invited'
    when 'invitation.accepted' then 'person.activated'
    when 'user.deactivated' then 'person.deactivated'
    when 'invitation.cancelled' then 'person.deactivated'
    when 'user.reactivated' then 'person.reactivated'
    when 'user.role_changed' then 'person.role_changed'
    when 'seat_limit.changed' then 'seat_limit.changed'
    when 'seat_request.approved' then 'seat_request.decided'
    when 'seat_request.rejected' then 'seat_request.decided'
    when 'seat_request.expired' then 'seat_request.decided'
    when 'contact.added' then 'contact.created'
    when 'contact.imported' then 'contact.created'
    when 'contact.edited' then 'contact.updated'
    when 'contact.updated' then 'contact.updated'
    when 'contact.converted' then 'contact.converted'
    when 'csv_import.completed' then 'import.completed'
  end;
  if t is null then return; end if;
  -- An invitation that expired while its person had already moved on changed nobody.
  if ev.action = 'invitation.expired' and coalesce((ev.data->>'userExpired')::boolean, false) = false then
    return;
  end if;
  if t like 'person.%' then
    if uid is null then return; end if;
    return query select t, 'person:' || uid::text,
      jsonb_build_object('person', webhook_person(uid), 'change', change)
      where exists (select 1 from app_user u where u.id = uid);
  elsif t like 'contact.%' then
    if ev.subject_id is null then return; end if;
    return query select t, 'contact:' || ev.subject_id,
      jsonb_build_object('contact', webhook_contact(ev.subject_id::uuid), 'change', change)
        || case when t = 'contact.converted' and ev.data->>'userId' is not null
             then jsonb_build_object('person', webhook_person((ev.data->>'userId')::uuid)) else '{}'::jsonb end;
    -- The person a conversion created is new to anyone who follows people only.
    if t = 'contact.converted' and ev.data->>'userId' is not null then
      return query select 'person.created', 'person:' || (ev.data->>'userId'),
        jsonb_build_object('person', webhook_person((ev.data->>'userId')::uuid), 'change', change);
    end if;
  elsif t = 'seat_limit.changed' then
    return query select t, 'account:' || ev.account_id::text,
      jsonb_build_object('seats', jsonb_build_object(
        'limit', a.seat_limit,
        'used', (select count(*) from app_user u where u.account_id = ev.account_id
          and u.role in ('employee', 'contractor') and u.status in ('not_invited', 'invited', 'active')),
        'from', ev.data->'from', 'to', ev.data->'to'), 'change', change)
      from account a where a.id = ev.account_id;
  elsif t = 'seat_request.decided' then
    return query select t, 'seat_request:' || r.id::text,
      jsonb_build_object('seat_request', jsonb_build_object(
        'id', r.id, 'kind', r.kind, 'status', r.status, 'email', r.email, 'name', r.name, 'role', r.role,
        'user_id', r.user_id, 'requested_by', r.requested_by, 'decided_by', r.decided_by,
        'decided_at', webhook_ts(r.decided_at), 'reason', r.reason,
        'created_at', webhook_ts(r.created_at)), 'change', change)
      from seat_request r where r.id = ev.subject_id::uuid;
  elsif t = 'import.completed' then
    return query select t, 'import:' || i.id::text,
      jsonb_build_object('import', jsonb_build_object(
        'id', i.id, 'file_name', i.file_name, 'status', i.status, 'counts', i.counts,
        'uploaded_by', i.uploaded_by, 'finished_at', webhook_ts(i.finished_at)), 'change', change)
      from csv_import i where i.id = ev.subject_id::uuid;
  end if;
end
$$;`);
    this.addSql(`create function "webhook_outbox"() returns trigger language plpgsql as $$
declare
  e record;
  msg text;
begin
  if not exists (select 1 from webhook_endpoint w
      where w.enabled and (w.account_id = NEW.account_id or w.account_id is null)) then
    return null;
  end if;
  for e in select * from webhook_events(NEW) loop
    -- One id per event, the same for every endpoint and every retry: the receiver's idempotency key.
    msg := 'msg_' || replace(gen_random_uuid()::text, '-', '');
    insert into webhook_delivery (endpoint_id, account_id, msg_id, event_type, subject, payload, audit_event_id)
    select w.id, NEW.account_id, msg, e.type, e.subject,
      jsonb_build_object('type', e.type, 'timestamp', webhook_ts(NEW.created_at), 'data', e.data), NEW.id
    from webhook_endpoint w
    where w.enabled and (w.account_id = NEW.account_id or w.account_id is null)
      and (w.events is null or e.type = any(w.events));
    if found then perform pg_notify('roster_webhooks', ''); end if;
  end loop;
  return null;
end
$$;`);
    this.addSql(`create constraint trigger "audit_event_webhooks" after insert on "audit_event"
  deferrable initially deferred for each row
  when (NEW.action in (${ACTIONS.map((a) => `'${a}'`).join(', ')}))
  execute function "webhook_outbox"();`);
  }

  override async down(): Promise<void> {
    this.addSql(`drop trigger if exists "audit_event_webhooks" on "audit_event";`);
    this.addSql(`drop function if exists "webhook_outbox"();`);
    this.addSql(`drop function if exists "webhook_events"(audit_event);`);
    this.addSql(`drop function if exists "webhook_contact"(uuid);`);
    this.addSql(`drop function if exists "webhook_person"(uuid);`);
    this.addSql(`drop function if exists "webhook_ts"(timestamptz);`);
    this.addSql(`drop table if exists "webhook_attempt";`);
    this.addSql(`drop table if exists "webhook_delivery";`);
    this.addSql(`drop table if exists "webhook_endpoint";`);
  }
}
