import pg from 'pg';
import { query, sql } from '../../db/sql.ts';
import { hostOnlyUrl, redactedUrl } from '../../shared/outbound.ts';
import { nowOrLater } from '../../slack/later.ts';
import { Account } from '../accounts/account.entity.ts';
import type { Deps } from '../feature.ts';
import { webhookDisabledText } from './slack/blocks.ts';
import type { WebhookSender } from './webhook.delivery.ts';
import { MAX_ENDPOINTS } from './webhook.endpoints.ts';

export const WEBHOOK_JOBS = {
  deliver: 'webhooks.deliver',
  disabled: 'webhooks.endpoint_disabled',
  prune: 'webhooks.prune',
} as const;

/** How long delivered and given-up deliveries (and their attempts) are kept for the log. */
const KEEP_DAYS = 30;

/** The daily prune of deliveries done with (their attempts go with them), by the index on when they ended. */
export const PRUNE_DELIVERIES = sql`delete from webhook_delivery where status <> 'pending'
    and coalesce(delivered_at, last_attempt_at, created_at) < now() - make_interval(days => ${KEEP_DAYS})`;

/**
 * The delivery jobs: one `webhooks.deliver` job at a time per endpoint (pg-boss' stately policy keeps
 * one queued and one running per endpoint), queued when the outbox trigger's NOTIFY arrives and by a
 * sweep that finds retries that have come due. The notice to admins when an endpoint is turned off, and
 * a daily prune of the log.
 */
export async function registerWebhookJobs(
  deps: Deps,
  sender: WebhookSender,
): Promise<(() => Promise<void>) | undefined> {
  const { jobs, orm, logger, slack, admins } = deps;
  await jobs.define<{ endpointId: string }>(
    WEBHOOK_JOBS.deliver,
    async ({ endpointId }, { signal }) => {
      const { more } = await sender.run(orm.em.fork(), endpointId, signal);
      // Stopped: the sweep of the next start finds what is left.
      if (more && !signal.aborted) {
        await jobs.send(WEBHOOK_JOBS.deliver, { endpointId }, { singletonKey: endpointId });
      }
    },
    {
      policy: 'stately',
      retryLimit: 3,
      retryDelay: 1,
      expireInSeconds: Math.ceil((sender.policy.jobBudgetMs + sender.policy.timeoutMs) / 1000) + 60,
      // One worker for every endpoint there can be (an account's and the deployment's), since each job is
      // one endpoint's: receivers that never answer hold only their own deliveries, never a healthy one's.
      localConcurrency: MAX_ENDPOINTS + 1,
    },
  );

  await jobs.define<{ endpointId: string }>(WEBHOOK_JOBS.disabled, async ({ endpointId }) => {
    const em = orm.em.fork();
    const [endpoint] = await query<{
      url: string;
      account_id: string | null;
      disabled_reason: string | null;
    }>(em, sql`select url, account_id, disabled_reason from webhook_endpoint where id = ${endpointId}`);
    if (!endpoint) return;
    const [last] = await query<{ response_status: number | null; error: string | null }>(
      em,
      sql`select response_status, error from webhook_attempt where endpoint_id = ${endpointId} order by id desc limit 1`,
    );
    // The deployment's endpoint serves every account: each one's admins are told.
    const accounts = await em.find(Account, endpoint.account_id ? { id: endpoint.account_id } : {});
    // Named without its query string, which may hold the receiver's key: a DM stays in Slack's history. The
    // deployment's, told to every workspace's admins, by its host alone: its path may hold the key.
    const shown = endpoint.account_id ? redactedUrl(endpoint.url) : hostOnlyUrl(endpoint.url);
    const text = webhookDisabledText(shown, endpoint.disabled_reason, last);
    // Every account's admins are found before anyone is told: finding them may say "try again later",
    // and a retry must not tell the admins of the accounts before it a second time.
    const ids = new Set<string>();
    for (const account of accounts) for (const id of await admins.adminIds(em, account)) ids.add(id);
    for (const id of ids) {
      // Queued for later while Slack is busy: an admin is told of the disable once.
      await nowOrLater(jobs, slack, { method: 'chat.postMessage', args: { channel: id, text } }).catch(
        (err) =>
          logger.warn({ err, user: id }, 'could not tell an admin their webhook endpoint was turned off'),
      );
    }
  });

  await jobs.define(WEBHOOK_JOBS.prune, async () => {
    await query(orm.em.fork(), PRUNE_DELIVERIES);
  });
  await jobs.boss.schedule(WEBHOOK_JOBS.prune, '41 3 * * *');

  // Where deliveries are worked (not in the bulk jobs thread), the outbox is watched.
  return jobs.worksOn(WEBHOOK_JOBS.deliver) ? startSweep(deps, sender) : undefined;
}

/**
 * Queues a delivery job for every endpoint with deliveries due: at once when the outbox trigger notifies
 * (LISTEN on its own connection), and every `sweepMs` for retries that have come due. Returns its stop.
 */
function startSweep(deps: Deps, sender: WebhookSender): () => Promise<void> {
  const { jobs, orm, logger } = deps;
  let running: Promise<void> | null = null;
  let again = false;
  let stopped = false;
  const sweep = (): Promise<void> => {
    if (stopped) return Promise.resolve();
    if (running) {
      again = true;
      return running;
    }
    running = (async () => {
      do {
        again = false;
        const due = await sender.dueEndpoints(orm.em.fork());
        for (const endpointId of due) {
          await jobs.send(WEBHOOK_JOBS.deliver, { endpointId }, { singletonKey: endpointId });
        }
      } while (again && !stopped);
    })()
      .catch((err) => {
        if (!stopped) logger.warn({ err }, 'could not look for webhook deliveries; trying again shortly');
      })
      .finally(() => {
        running = null;
      });
    return running;
  };

  const timer = setInterval(sweep, sender.policy.sweepMs);
  timer.unref();

  let client: pg.Client | null = null;
  let retry: NodeJS.Timeout | null = null;
  const listen = async () => {
    const c = new pg.Client({ connectionString: orm.config.get('clientUrl') as string });
    c.on('notification', () => void sweep());
    c.on('error', (err) => {
      if (stopped) return;
      logger.warn({ err: { message: err.message } }, 'lost the webhook notifications; listening again');
      c.end().catch(() => undefined);
      client = null;
      retry = setTimeout(() => void listen().catch(() => undefined), 2_000);
      retry.unref();
    });
    await c.connect();
    await c.query('listen roster_webhooks');
    client = c;
    // Whatever was queued while nobody listened.
    void sweep();
  };
  void listen().catch((err) => {
    // The sweep still finds every delivery, only later than a notification would.
    logger.warn({ err: { message: (err as Error).message } }, 'could not listen for webhook notifications');
  });

  return async () => {
    stopped = true;
    clearInterval(timer);
    if (retry) clearTimeout(retry);
    await running;
    await client?.end().catch(() => undefined);
  };
}
