import { randomBytes, randomUUID } from 'node:crypto';
import type { EntityManager } from '@mikro-orm/postgresql';
import { webhookUrlProblem } from '../../config.ts';
import { query, sql } from '../../db/sql.ts';
import { DomainError } from '../../shared/errors.ts';
import { outboundProblem } from '../../shared/outbound.ts';
import type { IAccount } from '../accounts/account.entity.ts';
import { audit, auditedUrl, auditRefusal } from '../audit/audit.service.ts';
import type { Actor } from '../seats/seat.service.ts';
import { isWebhookEventType, TEST_EVENT, type WebhookEventType } from './webhook.events.ts';

/** How many endpoints one account may have (the Slack list shows them all in one modal). */
export const MAX_ENDPOINTS = 10;
export const MAX_URL_LENGTH = 500;

/** An endpoint as admins see it; the secret is never part of it. */
export type Endpoint = {
  id: string;
  url: string;
  events: WebhookEventType[] | null;
  managed: boolean;
  enabled: boolean;
  disabledReason: string | null;
  failingSince: Date | null;
  createdBy: string | null;
  createdAt: Date;
  pending: number;
  lastAttemptAt: Date | null;
  lastOutcome: string | null;
  lastResponseStatus: number | null;
};

export type Attempt = {
  at: Date;
  attempt: number;
  eventType: string;
  msgId: string;
  outcome: 'delivered' | 'retrying' | 'failed';
  responseStatus: number | null;
  error: string | null;
  durationMs: number;
};

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** A new signing secret in Standard Webhooks' form: `whsec_` and 32 random bytes in base64. */
export function newSecret(): string {
  return `whsec_${randomBytes(32).toString('base64')}`;
}

/** A new message id (`webhook-id`), as the database makes them for events. */
export function newMessageId(): string {
  return `msg_${randomUUID().replace(/-/g, '')}`;
}

/**
 * Webhook endpoints of an account, managed by its admins: add (the secret is returned once), list, turn
 * off and on, delete, send a test event, read the delivery log. The endpoint the deployment sets
 * (WEBHOOK_URL) is listed for every account and cannot be changed here, only turned off and on.
 */
export class WebhookEndpoints {
  private readonly production: boolean;
  private readonly allowPrivate: boolean;

  constructor(opts: { production?: boolean; allowPrivate?: boolean } = {}) {
    this.production = opts.production ?? false;
    this.allowPrivate = opts.allowPrivate ?? false;
  }

  async list(em: EntityManager, account: IAccount): Promise<Endpoint[]> {
    return this.select(em, account);
  }

  /** One endpoint of this account (or the deployment's), or null: an id from elsewhere finds nothing. */
  async find(em: EntityManager, account: IAccount, id: string): Promise<Endpoint | null> {
    if (!UUID.test(id)) return null;
    const [endpoint] = await this.select(em, account, id);
    return endpoint ?? null;
  }

  /** The account's endpoints and the deployment's, with their pending count and last attempt; or just `id`. */
  private async select(em: EntityManager, account: IAccount, id?: string): Promise<Endpoint[]> {
    const rows = await query<Record<string, any>>(
      em,
      sql`select w.*,
            (select count(*)::int from webhook_delivery d
              where d.endpoint_id = w.id and d.account_id = ${account.id} and d.status = 'pending') as pending,
            a.at as last_at, a.outcome as last_outcome, a.response_status as last_status
          from webhook_endpoint w
          left join lateral (select at, outcome, response_status from webhook_attempt a
            where a.endpoint_id = w.id and a.account_id = ${account.id} order by a.id desc limit 1) a on true
          where (w.account_id = ${account.id} or w.managed) ${id ? sql`and w.id = ${id}` : sql``}
          order by w.managed desc, w.created_at`,
    );
    return rows.map((r) => ({
      id: r.id,
      url: r.url,
      events: r.events,
      managed: r.managed,
      enabled: r.enabled,
      disabledReason: r.disabled_reason,
      failingSince: r.failing_since ? new Date(r.failing_since) : null,
      createdBy: r.created_by,
      createdAt: new Date(r.created_at),
      pending: r.pending,
      lastAttemptAt: r.last_at ? new Date(r.last_at) : null,
      lastOutcome: r.last_outcome,
      lastResponseStatus: r.last_status,
    }));
  }

  /** Adds an endpoint; returns it with its signing secret, which is shown this once and never again. */
  async add(
    em: EntityManager,
    account: IAccount,
    actor: Actor,
    input: { url: string; events: string[] },
  ): Promise<{ endpoint: Endpoint; secret: string }> {
    await this.requireAdmin(em, account, actor, 'add');
    const url = input.url.trim();
    if (url.length > MAX_URL_LENGTH) {
      throw new DomainError('invalid_input', `Keep the URL under ${MAX_URL_LENGTH} characters.`, {
        field: 'url',
      });
    }
    const problem = webhookUrlProblem(url, this.production);
    if (problem) throw new DomainError('invalid_input', `The URL ${problem}.`, { field: 'url' });
    const unreachable = await outboundProblem(url, this.allowPrivate);
    if (unreachable)
      throw new DomainError('invalid_input', `The URL's host ${unreachable.replace(/^\S+ /, '')}.`, {
        field: 'url',
      });
    const unknown = input.events.filter((e) => !isWebhookEventType(e));
    if (unknown.length) {
      throw new DomainError('invalid_input', `Roster sends no event called ${unknown.join(', ')}.`, {
        field: 'events',
      });
    }
    const events = input.events.length ? [...new Set(input.events)] : null;
    const secret = newSecret();
    const id = randomUUID();
    await em.transactional(async (tx) => {
      // The account row locked: two admins adding at once cannot both pass the count.
      await query(tx, sql`select id from account where id = ${account.id} for update`);
      const [count] = await query<{ n: number }>(
        tx,
        sql`select count(*)::int as n from webhook_endpoint where account_id = ${account.id}`,
      );
      if ((count?.n ?? 0) >= MAX_ENDPOINTS) {
        throw new DomainError(
          'conflict',
          `An account can have ${MAX_ENDPOINTS} webhook endpoints; delete one first.`,
          { field: 'url' },
        );
      }
      await query(
        tx,
        sql`insert into webhook_endpoint (id, account_id, url, secret, events, created_by)
            values (${id}, ${account.id}, ${url}, ${secret}, ${events}, ${actor.slackUserId})`,
      );
      audit(tx, {
        account,
        actor: actor.slackUserId,
        action: 'webhook.endpoint_added',
        subjectType: 'webhook_endpoint',
        subjectId: id,
        surface: actor.surface,
        data: { ...(await auditedUrl(tx, url)), events },
      });
    });
    const endpoint = await this.find(em, account, id);
    return { endpoint: endpoint!, secret };
  }

  /**
   * Turns an endpoint off (nothing is queued for it) or on again (what waited is tried at once, with the
   * full retry window from now: it may have waited longer than that window).
   */
  async setEnabled(
    em: EntityManager,
    account: IAccount,
    actor: Actor,
    id: string,
    enabled: boolean,
  ): Promise<Endpoint> {
    await this.requireAdmin(em, account, actor, enabled ? 'enable' : 'disable');
    const endpoint = await this.mustFind(em, account, id);
    // The deployment's endpoint serves every workspace: one workspace's admin may turn it back on after
    // it was turned off for failing, but not off for everyone.
    if (endpoint.managed && !enabled) {
      throw new DomainError(
        'invalid_input',
        'This endpoint is managed by the deployment (WEBHOOK_URL) and serves every workspace: it can only be turned off there.',
      );
    }
    await em.transactional(async (tx) => {
      await query(
        tx,
        sql`update webhook_endpoint set enabled = ${enabled}, updated_at = now(),
              disabled_reason = ${enabled ? null : 'disabled by an admin'},
              failing_since = null
            where id = ${endpoint.id}`,
      );
      if (enabled) {
        await query(
          tx,
          sql`update webhook_delivery set next_attempt_at = now(), retry_from = now()
              where endpoint_id = ${endpoint.id} and status = 'pending'`,
        );
        await query(tx, sql`select pg_notify('roster_webhooks', '')`);
      }
      audit(tx, {
        account,
        actor: actor.slackUserId,
        action: enabled ? 'webhook.endpoint_enabled' : 'webhook.endpoint_disabled',
        subjectType: 'webhook_endpoint',
        subjectId: endpoint.id,
        surface: actor.surface,
        data: await auditedUrl(tx, endpoint.url),
      });
    });
    return (await this.find(em, account, endpoint.id))!;
  }

  /** Deletes an endpoint and its log; the deployment's endpoint is refused. */
  async remove(em: EntityManager, account: IAccount, actor: Actor, id: string): Promise<Endpoint> {
    await this.requireAdmin(em, account, actor, 'delete');
    const endpoint = await this.mustFind(em, account, id);
    if (endpoint.managed) {
      throw new DomainError(
        'conflict',
        'This endpoint is managed by the deployment (WEBHOOK_URL): change or remove it there.',
      );
    }
    await em.transactional(async (tx) => {
      await query(
        tx,
        sql`delete from webhook_endpoint where id = ${endpoint.id} and account_id = ${account.id}`,
      );
      audit(tx, {
        account,
        actor: actor.slackUserId,
        action: 'webhook.endpoint_deleted',
        subjectType: 'webhook_endpoint',
        subjectId: endpoint.id,
        surface: actor.surface,
        data: await auditedUrl(tx, endpoint.url),
      });
    });
    return endpoint;
  }

  /** Queues a `webhook.test` event to the endpoint; returns its webhook-id. */
  async sendTest(em: EntityManager, account: IAccount, actor: Actor, id: string): Promise<string> {
    await this.requireAdmin(em, account, actor, 'test');
    const endpoint = await this.mustFind(em, account, id);
    if (!endpoint.enabled) {
      throw new DomainError(
        'conflict',
        'This endpoint is turned off: enable it first, then send a test event.',
      );
    }
    const msgId = newMessageId();
    const now = new Date();
    const payload = {
      type: TEST_EVENT,
      timestamp: now.toISOString(),
      data: {
        endpoint: { id: endpoint.id, url: endpoint.url },
        account: { id: account.id, team_id: account.teamId },
        change: { action: 'webhook.test_sent', actor: actor.slackUserId, surface: actor.surface },
      },
    };
    await em.transactional(async (tx) => {
      await query(
        tx,
        sql`insert into webhook_delivery (endpoint_id, account_id, msg_id, event_type, subject, payload)
            values (${endpoint.id}, ${account.id}, ${msgId}, ${TEST_EVENT}, ${`test:${msgId}`},
              ${JSON.stringify(payload)}::jsonb)`,
      );
      await query(tx, sql`select pg_notify('roster_webhooks', '')`);
      audit(tx, {
        account,
        actor: actor.slackUserId,
        action: 'webhook.test_sent',
        subjectType: 'webhook_endpoint',
        subjectId: endpoint.id,
        surface: actor.surface,
        data: { ...(await auditedUrl(tx, endpoint.url)), msgId },
      });
    });
    return msgId;
  }

  /** The latest attempts to deliver this account's events to an endpoint, the newest first. */
  async attempts(em: EntityManager, account: IAccount, actor: Actor, id: string, limit = 15) {
    await this.requireAdmin(em, account, actor, 'read the log of');
    const endpoint = await this.mustFind(em, account, id);
    const rows = await query<Record<string, any>>(
      em,
      sql`select a.at, a.attempt, a.outcome, a.response_status, a.error, a.duration_ms, d.event_type, d.msg_id
          from webhook_attempt a join webhook_delivery d on d.id = a.delivery_id
          where a.endpoint_id = ${endpoint.id} and a.account_id = ${account.id}
          order by a.id desc limit ${limit}`,
    );
    const attempts: Attempt[] = rows.map((r) => ({
      at: new Date(r.at),
      attempt: r.attempt,
      eventType: r.event_type,
      msgId: r.msg_id,
      outcome: r.outcome,
      responseStatus: r.response_status,
      error: r.error,
      durationMs: r.duration_ms,
    }));
    return { endpoint, attempts };
  }

  /**
   * Makes the deployment's endpoint match WEBHOOK_URL and WEBHOOK_SECRET: added, changed (and turned on
   * again when its address or secret changed) or, when they are unset, removed.
   */
  static async syncManaged(em: EntityManager, webhook?: { url: string; secret: string }): Promise<void> {
    if (!webhook) {
      await query(em, sql`delete from webhook_endpoint where managed`);
      return;
    }
    // Turned on again, or given a new address or secret while on (and perhaps failing for want of it): what
    // waited is due at once, with its retries counted from now, as Enable does.
    await query(
      em,
      sql`with before as (select id, enabled, url, secret from webhook_endpoint where managed),
            synced as (insert into webhook_endpoint (id, account_id, url, secret, events, managed, created_by)
              values (${randomUUID()}, null, ${webhook.url}, ${webhook.secret}, null, true, 'deployment')
              on conflict (managed) where managed do update set
                url = excluded.url, secret = excluded.secret, updated_at = now(),
                enabled = webhook_endpoint.enabled
                  or webhook_endpoint.url <> excluded.url or webhook_endpoint.secret <> excluded.secret,
                disabled_reason = case when webhook_endpoint.url <> excluded.url
                  or webhook_endpoint.secret <> excluded.secret then null else webhook_endpoint.disabled_reason end,
                failing_since = case when webhook_endpoint.url <> excluded.url
                  or webhook_endpoint.secret <> excluded.secret then null else webhook_endpoint.failing_since end
              returning id, enabled)
          update webhook_delivery d set next_attempt_at = now(), retry_from = now()
          from synced join before on before.id = synced.id
          where d.endpoint_id = synced.id and d.status = 'pending' and synced.enabled
            and (not before.enabled or before.url <> ${webhook.url} or before.secret <> ${webhook.secret})`,
    );
  }

  private async mustFind(em: EntityManager, account: IAccount, id: string): Promise<Endpoint> {
    const endpoint = await this.find(em, account, id);
    if (!endpoint) throw new DomainError('not_found', 'That webhook endpoint no longer exists.');
    return endpoint;
  }

  /** Refuses, and records, anyone but an admin: `what` they tried names the refusal (`add`, `manage`…). */
  async requireAdmin(em: EntityManager, account: IAccount, actor: Actor, what: string) {
    if (actor.isAdmin) return;
    await auditRefusal(em, {
      account,
      actor: actor.slackUserId,
      action: 'webhook.change_refused',
      subjectType: 'webhook_endpoint',
      surface: actor.surface,
      data: { attempted: what, reason: 'not an admin' },
    });
    throw new DomainError('not_admin', `Only admins can ${what} webhook endpoints.`);
  }
}
