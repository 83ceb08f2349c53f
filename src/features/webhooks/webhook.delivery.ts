import type { EntityManager } from '@mikro-orm/postgresql';
import { Webhook } from 'standardwebhooks';
import { query, sql } from '../../db/sql.ts';
import type { Logger } from '../../shared/logger.ts';
import { type OutboundError, outboundRequest } from '../../shared/outbound.ts';

/** How deliveries are paced; every figure can be changed, so tests and benches need not wait hours. */
export type WebhookPolicy = {
  /** How long one HTTP call may take before it counts as failed. */
  timeoutMs: number;
  /** The first retry waits this long; each next one twice as long, up to `retryMaxMs`. */
  retryBaseMs: number;
  retryMaxMs: number;
  /**
   * A delivery is retried until it is this old, then given up (its successors for the subject go on); one
   * that waited for its endpoint to be enabled again, until this long after that.
   */
  retryForMs: number;
  /** An endpoint that has answered nothing but failures for this long is turned off and its admins told. */
  disableAfterMs: number;
  /** Requests in flight at once to one endpoint (each for a different person or contact). */
  concurrency: number;
  /** How long one delivery job works before it hands over to the next (so one endpoint cannot hog a worker). */
  jobBudgetMs: number;
  /** How often each instance looks for deliveries that have come due (retries); new events wake it at once. */
  sweepMs: number;
};

export const DEFAULT_POLICY: WebhookPolicy = {
  timeoutMs: 10_000,
  retryBaseMs: 5_000,
  retryMaxMs: 60 * 60_000,
  retryForMs: 25 * 60 * 60_000,
  disableAfterMs: 24 * 60 * 60_000,
  concurrency: 16,
  jobBudgetMs: 20_000,
  sweepMs: 1_000,
};

type Claimed = {
  id: string;
  account_id: string;
  msg_id: string;
  event_type: string;
  payload: { type: string; timestamp: string; data: unknown };
  attempts: number;
};

type EndpointRow = { id: string; url: string; secret: string; enabled: boolean };

export type Outcome = { ok: boolean; status: number | null; error: string | null; durationMs: number };

/**
 * Endpoints with deliveries due now that a claim would take: the oldest pending event of its subject, as
 * the claim takes them. Without that, an endpoint whose later events wait behind an earlier one's backoff
 * (a receiver down for hours) was found due at every sweep, and a job queued each second that claimed
 * nothing. Per endpoint, the first such delivery found ends the look (in the pending index, by endpoint
 * and due time; the subject's oldest from the chain index).
 */
export const DUE_ENDPOINTS = sql`select w.id as endpoint_id from webhook_endpoint w
    where w.enabled and exists (select 1 from webhook_delivery d
      where d.endpoint_id = w.id and d.status = 'pending' and d.next_attempt_at <= now()
        and (d.lease_until is null or d.lease_until < now())
        and d.id = (select min(e.id) from webhook_delivery e where e.chain = d.chain and e.status = 'pending'))`;

/**
 * Sends an endpoint's due deliveries, signed per Standard Webhooks. Deliveries are claimed from the
 * outbox by status, never by a cursor, under a lease: a delivery whose sender died is claimed again when
 * its lease runs out (at-least-once; the webhook-id stays the same, so receivers drop repeats). A delivery
 * waits while an earlier one for the same person or contact is pending, so each subject's events arrive
 * in order; different subjects go out side by side.
 */
export class WebhookSender {
  readonly policy: WebhookPolicy;
  private readonly logger: Logger;
  private readonly onDisabled: (tx: EntityManager, endpointId: string) => Promise<void>;
  private readonly allowPrivate: boolean;

  constructor(opts: {
    policy: WebhookPolicy;
    logger: Logger;
    /** Whether endpoints may be on this machine or a private network (src/shared/outbound.ts). */
    allowPrivate?: boolean;
    /** Called in the transaction that turned an endpoint off, to queue the notice to its admins. */
    onDisabled: (tx: EntityManager, endpointId: string) => Promise<void>;
  }) {
    this.policy = opts.policy;
    this.logger = opts.logger;
    this.onDisabled = opts.onDisabled;
    this.allowPrivate = opts.allowPrivate ?? false;
  }

  /** Endpoints with deliveries due now, for the sweep to queue a delivery job each. */
  async dueEndpoints(em: EntityManager): Promise<string[]> {
    const rows = await query<{ endpoint_id: string }>(em, DUE_ENDPOINTS);
    return rows.map((r) => r.endpoint_id);
  }

  /**
   * Delivers what is due for one endpoint, `concurrency` at a time, until nothing is due, the job's
   * budget is spent, or `signal` is aborted (Roster is stopping): the sends under way end, and what was
   * claimed but not sent is handed back. Returns how many attempts were made and whether work may be left.
   * The endpoint is looked up again before each round of sends: once it is deleted or turned off, only the
   * sends already under way go out, and what was claimed for it is handed back (a turned-off endpoint's
   * deliveries wait for it to be enabled; a deleted one's went with it).
   */
  async run(
    em: EntityManager,
    endpointId: string,
    signal?: AbortSignal,
  ): Promise<{ attempts: number; more: boolean }> {
    const [endpoint] = await query<EndpointRow>(
      em,
      sql`select id, url, secret, enabled from webhook_endpoint where id = ${endpointId}`,
    );
    if (!endpoint?.enabled) return { attempts: 0, more: false };
    const signer = new Webhook(endpoint.secret);
    const deadline = Date.now() + this.policy.jobBudgetMs;
    const { concurrency } = this.policy;
    const inFlight = new Set<Promise<unknown>>();
    // Claimed ahead of the sends, so a claim never holds up a free slot; each claimed row is the oldest
    // pending event of its subject, so nothing here can overtake an earlier event of the same subject.
    const ready: Claimed[] = [];
    let claiming: Promise<unknown> | null = null;
    let drained = false;
    // Whether the endpoint was still there and on when last looked at; `cleared` lets the sends started
    // right after a look go (a claim looks too), so no send goes out on a look older than its round.
    let open = true;
    let cleared = false;
    let checking: Promise<unknown> | null = null;
    let attempts = 0;
    let more = false;
    // Wakes the wait below at a stop; the listener goes with the run (the signal is shared by every job).
    let wake = () => {};
    const stopped = new Promise<void>((done) => {
      wake = done;
    });
    if (signal?.aborted) wake();
    else signal?.addEventListener('abort', wake, { once: true });
    try {
      for (;;) {
        // Deleted or turned off: the sends under way end, nothing more is claimed or sent.
        if (!open) break;
        const late = Date.now() >= deadline || signal?.aborted === true;
        // Up to four slots' worth claimed ahead: one claim (a round trip) then feeds many sends.
        if (!late && !claiming && !drained && ready.length < 2 * concurrency) {
          const limit = 4 * concurrency - ready.length - inFlight.size;
          if (limit > 0) {
            const claim: Promise<unknown> = this.claim(em, endpointId, limit)
              .then((rows) => {
                ready.push(...rows);
                drained = rows.length === 0;
                // The claim takes rows only while the endpoint is on: as good as a look.
                if (rows.length) cleared = true;
              })
              .finally(() => {
                claiming = null;
              });
            claiming = claim;
          }
        }
        while (!late && cleared && ready.length && inFlight.size < concurrency) {
          const row = ready.shift()!;
          attempts += 1;
          const task: Promise<unknown> = this.deliverOne(em, endpoint, signer, row)
            .catch((err) =>
              this.logger.error({ err, endpointId, delivery: row.id }, 'webhook delivery failed'),
            )
            .finally(() => {
              inFlight.delete(task);
              // A finished delivery may let the next event of its subject go.
              drained = false;
            });
          inFlight.add(task);
        }
        cleared = false;
        if (late) {
          more = true;
          break;
        }
        // Rows to send and a free slot: one look at the endpoint lets the next round go.
        if (ready.length && inFlight.size < concurrency && !checking) {
          const check: Promise<unknown> = this.isOpen(em, endpointId)
            .then((on) => {
              open = on;
              cleared = on;
            })
            .catch((err) => {
              // Not known to be on, so nothing more is sent this time; the sweep finds what is left.
              this.logger.warn({ err, endpointId }, 'could not look up a webhook endpoint before sending');
              open = false;
            })
            .finally(() => {
              checking = null;
            });
          checking = check;
        }
        const waits = [...inFlight, ...(claiming ? [claiming] : []), ...(checking ? [checking] : [])];
        if (waits.length === 0) break;
        await Promise.race([...waits, stopped]);
      }
      await Promise.all([...inFlight, ...(claiming ? [claiming] : []), ...(checking ? [checking] : [])]);
    } finally {
      signal?.removeEventListener('abort', wake);
    }
    // Claimed but not sent (the budget ran out, Roster is stopping, the endpoint was turned off): handed
    // back at once rather than when the lease ends. A deleted endpoint's rows are gone already.
    if (ready.length) {
      await query(
        em,
        sql`update webhook_delivery set lease_until = null, attempts = attempts - 1
            where id = any(${ready.map((r) => r.id)}::bigint[])`,
      );
      more = true;
    }
    return { attempts, more: more && open };
  }

  /** Whether the endpoint still exists and is on. */
  private async isOpen(em: EntityManager, endpointId: string): Promise<boolean> {
    const [row] = await query<{ enabled: boolean }>(
      em,
      sql`select enabled from webhook_endpoint where id = ${endpointId}`,
    );
    return row?.enabled === true;
  }

  private async claim(em: EntityManager, endpointId: string, limit: number): Promise<Claimed[]> {
    const leaseMs = this.policy.timeoutMs + 30_000;
    return query<Claimed>(
      em,
      sql`with picked as (
            select d.id from webhook_delivery d
            where d.endpoint_id = ${endpointId} and d.status = 'pending' and d.next_attempt_at <= now()
              and (d.lease_until is null or d.lease_until < now())
              -- The subject's oldest pending event only: a subquery run per row with the chain (endpoint and
              -- subject) as its parameter, which only the chain index answers, whatever the statistics say.
              and d.id = (select min(e.id) from webhook_delivery e where e.chain = d.chain and e.status = 'pending')
              and exists (select 1 from webhook_endpoint w where w.id = d.endpoint_id and w.enabled)
            -- By due time, which only the pending index gives: ordered by id, Postgres may walk the primary
            -- key through every delivered row (kept 30 days) on each claim.
            order by d.next_attempt_at, d.id limit ${limit}
            for update of d skip locked)
          update webhook_delivery d set attempts = d.attempts + 1,
            lease_until = now() + make_interval(secs => ${leaseMs / 1000})
          from picked where d.id = picked.id
          returning d.id, d.account_id, d.msg_id, d.event_type, d.payload, d.attempts`,
    );
  }

  private async deliverOne(
    em: EntityManager,
    endpoint: EndpointRow,
    signer: Webhook,
    row: Claimed,
  ): Promise<void> {
    const outcome = await send(endpoint.url, signer, row, this.policy.timeoutMs, this.allowPrivate);
    await this.record(em, endpoint.id, row, outcome);
  }

  private waiting: {
    em: EntityManager;
    endpointId: string;
    row: Claimed;
    outcome: Outcome;
    done: () => void;
    fail: (e: unknown) => void;
  }[] = [];
  private flushing = false;

  /**
   * Records a success. Successes that end while a write is under way are written together by the next
   * one (one statement for many), so recording costs little per delivery under load; each caller resumes
   * once its own row is written, and only then can the next event of its subject be claimed.
   */
  private delivered(em: EntityManager, endpointId: string, row: Claimed, outcome: Outcome): Promise<void> {
    return new Promise<void>((done, fail) => {
      this.waiting.push({ em, endpointId, row, outcome, done, fail });
      if (!this.flushing) void this.flush();
    });
  }

  private async flush(): Promise<void> {
    this.flushing = true;
    try {
      while (this.waiting.length) {
        const batch = this.waiting.splice(0, 500);
        try {
          await query(
            batch[0]!.em,
            sql`with r as (select * from unnest(${batch.map((b) => b.row.id)}::bigint[],
                  ${batch.map((b) => b.endpointId)}::uuid[], ${batch.map((b) => b.row.account_id)}::uuid[],
                  ${batch.map((b) => b.row.attempts)}::int[], ${batch.map((b) => b.outcome.status)}::int[],
                  ${batch.map((b) => b.outcome.durationMs)}::int[])
                  as r(id, endpoint_id, account_id, attempt, status, duration_ms)),
                d as (update webhook_delivery w set status = 'delivered', delivered_at = now(), lease_until = null,
                    last_attempt_at = now(), last_response_status = r.status, last_error = null
                  from r where w.id = r.id
                  returning r.*),
                -- Attempts only for the deliveries still there: an endpoint deleted meanwhile took its own
                -- with it, and one missing row must not fail the batch (and resend the others).
                a as (insert into webhook_attempt (delivery_id, endpoint_id, account_id, attempt, response_status, duration_ms, outcome)
                  select d.id, d.endpoint_id, d.account_id, d.attempt, d.status, d.duration_ms, 'delivered' from d order by d.id)
              update webhook_endpoint set failing_since = null
              where id in (select endpoint_id from r) and failing_since is not null`,
          );
          for (const b of batch) b.done();
        } catch (err) {
          for (const b of batch) b.fail(err);
        }
      }
    } finally {
      this.flushing = false;
    }
  }

  /** Writes an attempt's outcome: delivered, retried later with backoff, or given up; and the endpoint's health. */
  async record(em: EntityManager, endpointId: string, row: Claimed, outcome: Outcome): Promise<void> {
    const p = this.policy;
    if (outcome.ok) return this.delivered(em, endpointId, row, outcome);
    await em.fork().transactional(async (tx) => {
      // Exponential backoff with a little jitter, so a receiver coming back is not hit by every retry at once.
      const delayMs = Math.min(p.retryBaseMs * 2 ** Math.min(row.attempts - 1, 30), p.retryMaxMs);
      const jittered = Math.round(delayMs * (0.9 + Math.random() * 0.2));
      await query(
        tx,
        sql`with d as (update webhook_delivery set lease_until = null, last_attempt_at = now(),
                last_response_status = ${outcome.status}, last_error = ${outcome.error},
                status = case when coalesce(retry_from, created_at) + make_interval(secs => ${p.retryForMs / 1000}) <= now()
                  then 'failed' else 'pending' end,
                next_attempt_at = now() + make_interval(secs => ${jittered / 1000})
              where id = ${row.id} returning id, status)
            insert into webhook_attempt (delivery_id, endpoint_id, account_id, attempt, response_status, error, duration_ms, outcome)
            select d.id, ${endpointId}, ${row.account_id}, ${row.attempts}, ${outcome.status}, ${outcome.error},
              ${outcome.durationMs}, case when d.status = 'failed' then 'failed' else 'retrying' end from d`,
      );
      await query(
        tx,
        sql`update webhook_endpoint set failing_since = now() where id = ${endpointId} and failing_since is null`,
      );
      // The row lock makes one transaction the one that turns it off, and tells the admins.
      const disabled = await query<{ id: string }>(
        tx,
        sql`update webhook_endpoint set enabled = false, updated_at = now(),
              disabled_reason = 'failing since ' || to_char(failing_since at time zone 'UTC', 'YYYY-MM-DD HH24:MI "UTC"')
            where id = ${endpointId} and enabled
              and failing_since <= now() - make_interval(secs => ${p.disableAfterMs / 1000})
            returning id`,
      );
      if (disabled.length) {
        this.logger.warn({ endpointId }, 'webhook endpoint turned off after failing for too long');
        await this.onDisabled(tx, endpointId);
      }
    });
  }
}

/**
 * One signed POST. Anything but a 2xx answer within the timeout is a failure; redirects are not followed.
 * Without `allowPrivate` the connection itself refuses this machine and private networks (at every call:
 * a name can come to resolve elsewhere, even between a check and the connection).
 */
export async function send(
  url: string,
  signer: Webhook,
  row: Claimed,
  timeoutMs: number,
  allowPrivate = false,
): Promise<Outcome> {
  // The payload in the order Standard Webhooks shows it; the body signed is exactly the body sent.
  const body = JSON.stringify({
    type: row.payload.type,
    timestamp: row.payload.timestamp,
    data: row.payload.data,
  });
  const now = new Date();
  const started = performance.now();
  try {
    const res = await outboundRequest(url, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'user-agent': 'Roster-Webhooks/1.0',
        'webhook-id': row.msg_id,
        'webhook-timestamp': String(Math.floor(now.getTime() / 1000)),
        'webhook-signature': signer.sign(row.msg_id, now, body),
      },
      body,
      timeoutMs,
      allowPrivate,
    });
    // The answer's body is not needed, and is not kept: a receiver could send any amount.
    res.discard();
    const durationMs = Math.round(performance.now() - started);
    const ok = res.status >= 200 && res.status < 300;
    return { ok, status: res.status, error: ok ? null : `HTTP ${res.status}`, durationMs };
  } catch (err) {
    const durationMs = Math.round(performance.now() - started);
    const e = err as OutboundError;
    const error =
      e.code === 'TIMEOUT'
        ? `no answer within ${timeoutMs < 1000 ? `${timeoutMs} ms` : `${Math.round(timeoutMs / 1000)} s`}`
        : e.code === 'PRIVATE_ADDRESS'
          ? e.message.slice(0, 200)
          : (e.code ?? e.message).slice(0, 200);
    return { ok: false, status: null, error, durationMs };
  }
}
