import { Migration } from '@mikro-orm/migrations';

/**
 * The webhook outbox trigger costs nothing while no endpoint is on. It was a deferred trigger on every
 * audit event that, at commit, looked for endpoints and usually found none: about a third of the cost of
 * writing an audit event, a million times over in a million-row import. Now each statement that writes
 * audit events first notes whether any endpoint is on (one lookup per statement, in a transaction-local
 * setting), and the row trigger is queued only when one is. Endpoints are looked for when the event is
 * written rather than at commit; which endpoints take it, and its payload, are still decided at commit.
 * The trigger is rebuilt from its own definition (kept in its comment, for the way down).
 */
export class Migration20261202040000_webhook_outbox_gate extends Migration {
  override async up(): Promise<void> {
    this.addSql(`create or replace function "webhook_outbox_gate"() returns trigger language plpgsql as $$
begin
  perform set_config('roster.webhooks',
    case when exists (select 1 from webhook_endpoint where enabled) then 'on' else 'off' end, true);
  return null;
end
$$;`);
    this.addSql(`create trigger "audit_event_webhooks_gate" before insert on "audit_event"
  for each statement execute function "webhook_outbox_gate"();`);
    this.addSql(`do $$
declare def text;
begin
  select pg_get_triggerdef(t.oid) into def from pg_trigger t
    where t.tgname = 'audit_event_webhooks' and t.tgrelid = 'audit_event'::regclass;
  drop trigger "audit_event_webhooks" on "audit_event";
  execute replace(def, 'WHEN (', 'WHEN (current_setting(''roster.webhooks'', true) = ''on'' AND ');
  execute format('comment on trigger "audit_event_webhooks" on "audit_event" is %L', def);
end
$$;`);
  }

  override async down(): Promise<void> {
    this.addSql(`do $$
declare def text;
begin
  select obj_description(t.oid, 'pg_trigger') into def from pg_trigger t
    where t.tgname = 'audit_event_webhooks' and t.tgrelid = 'audit_event'::regclass;
  drop trigger "audit_event_webhooks" on "audit_event";
  execute def;
end
$$;`);
    this.addSql(`drop trigger if exists "audit_event_webhooks_gate" on "audit_event";`);
    this.addSql(`drop function if exists "webhook_outbox_gate"();`);
  }
}
