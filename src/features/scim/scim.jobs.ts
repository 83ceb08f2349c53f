import type { EntityManager } from '@mikro-orm/postgresql';
import pg from 'pg';
import { query, sql } from '../../db/sql.ts';
import { TryLater } from '../../shared/jobs.ts';
import type { Logger } from '../../shared/logger.ts';
import { nowOrLater } from '../../slack/later.ts';
import { isSlackBusy } from '../../slack/pacing.ts';
import { Account } from '../accounts/account.entity.ts';
import { ProgressReporter } from '../csv-import/slack/progress.ts';
import type { Deps } from '../feature.ts';
import { type IScimConnection, ScimConnection } from './scim.entity.ts';
import { takeUntoldFailures } from './scim.push.ts';
import { reconcile } from './scim.reconcile.ts';
import { SCIM_JOBS } from './scim.service.ts';
import { drain, type OnOutage, type OnRefused } from './scim.sync.ts';
import {
  answeringMessage,
  failingMessage,
  failuresMessage,
  progressMessage,
  refusedMessage,
  reportMessage,
  unusableUrlMessage,
} from './slack/blocks.ts';

type AccountJob = { accountId: string };
type ReconcileJob = AccountJob & { requestedBy?: string };
type NoticeJob = AccountJob & { message: { text: string; blocks: unknown[] } };

/** Pauses up to this long are waited out by the running sync rather than by a delayed job. */
const SHORT_PAUSE_MS = 5000;

/** The channel the triggers on `app_user` notify with an account id when they mark people pending. */
export const SCIM_CHANNEL = 'roster_scim';

/**
 * SCIM provisioning's jobs: the per-account sync (woken by the triggers' notifications, by delayed wakes
 * after a pause, and every minute as a safety net) and the full reconciliation. Returns the stop of the
 * notification listener.
 */
export async function registerScimJobs(deps: Deps): Promise<(() => Promise<void>) | undefined> {
  const { jobs, orm, slack, admins, scim, logger } = deps;
  const log = logger.child({ feature: 'scim' });

  const kick = (accountId: string) => jobs.send(SCIM_JOBS.sync, { accountId }, { singletonKey: accountId });

  // A notice is told once (the token refused, people refused): queued as a job of its own, so a Slack too
  // busy to list the admins postpones it rather than losing it, and the work that found it is not redone.
  const tellAdmins = async (accountId: string, message: { text: string; blocks: unknown[] }) => {
    await jobs.send<NoticeJob>(SCIM_JOBS.notice, { accountId, message });
  };
  // The token refused: told in the transaction that marks the connection refused.
  const tellRefused =
    (connection: IScimConnection): OnRefused =>
    (tx, problem) =>
      jobs.send<NoticeJob>(
        SCIM_JOBS.notice,
        {
          accountId: connection.account.id,
          message: refusedMessage(connection.baseUrl, problem, connection.managed),
        },
        { em: tx },
      );

  // The service failing for about an hour, and answering again after that: told in the transaction that
  // counts the failure or clears the backoff, so once each.
  const tellOutage = (connection: IScimConnection): OnOutage => {
    const notice = (tx: EntityManager, message: { text: string; blocks: unknown[] }) =>
      jobs.send<NoticeJob>(SCIM_JOBS.notice, { accountId: connection.account.id, message }, { em: tx });
    return {
      failing: (tx, problem) => notice(tx, failingMessage(connection.baseUrl, problem)),
      answering: (tx) => notice(tx, answeringMessage(connection.baseUrl)),
    };
  };

  // A connection saved with a URL Roster no longer takes: stopped before any call, the admins told once.
  const stoppedForUrl = async (em: EntityManager, connection: IScimConnection) => {
    const stopped = await scim.stopUnusableUrl(em, connection, (tx, problem) =>
      jobs.send<NoticeJob>(
        SCIM_JOBS.notice,
        { accountId: connection.account.id, message: unusableUrlMessage(problem) },
        { em: tx },
      ),
    );
    // The reason names the URL redacted; the account is enough to find it.
    if (stopped) log.warn({ accountId: connection.account.id }, 'the saved SCIM URL can no longer be used');
    return stopped;
  };

  await jobs.define<NoticeJob>(
    SCIM_JOBS.notice,
    async ({ accountId, message }) => {
      const em = orm.em.fork();
      const account = await em.findOne(Account, accountId);
      if (!account) return;
      let ids: string[];
      try {
        // Before the directory mirror has synced this reads Slack's member list, which may be busy.
        ids = await admins.adminIds(em, account);
      } catch (err) {
        // Nothing is posted yet: the job is queued again for when Slack allows, without using up retries.
        if (isSlackBusy(err) && !(err instanceof TryLater)) {
          throw new TryLater(
            Math.max(1, (err as { retryAfter?: number }).retryAfter ?? 30) * 1000,
            'Slack is busy',
          );
        }
        throw err;
      }
      // From here nothing throws: a retry would tell the admins already told a second time.
      for (const id of ids) {
        // While Slack is busy the post is queued and made later.
        await nowOrLater(jobs, slack, {
          method: 'chat.postMessage',
          args: { channel: id, ...(message as { text: string }) },
        }).catch((err) => log.warn({ err, admin: id }, 'could not tell an admin about SCIM provisioning'));
      }
    },
    { retryLimit: 10, retryDelay: 30, retryBackoff: true },
  );

  await jobs.define<AccountJob>(
    SCIM_JOBS.sync,
    async ({ accountId }, { signal }) => {
      for (;;) {
        const em = orm.em.fork();
        const connection = await em.findOne(ScimConnection, { account: accountId });
        if (!connection) return;
        if (await stoppedForUrl(em, connection)) return;
        const result = await drain(
          em,
          connection,
          scim.client(connection),
          tellRefused(connection),
          tellOutage(connection),
          signal,
        );
        if (result.synced || result.failed.length) {
          log.info({ accountId, synced: result.synced, failed: result.failed.length }, 'SCIM sync');
        }
        if (result.refused)
          log.warn({ accountId, problem: result.refused }, 'the SCIM service refused the token');
        // Everyone refused and not told yet, by this drain or by one stopped before it told: once each.
        await orm.em.fork().transactional(async (tx) => {
          const failed = await takeUntoldFailures(tx, accountId);
          if (!failed.length) return;
          await jobs.send<NoticeJob>(
            SCIM_JOBS.notice,
            { accountId, message: failuresMessage(connection.baseUrl, failed) },
            { em: tx },
          );
        });
        // Stopped: the people left are pending, and the next start's sync takes them.
        if (!result.wakeAt || signal.aborted) return;
        const wait = result.wakeAt.getTime() - Date.now();
        // A short pause is waited out here; a longer one frees the worker until a wake job is due.
        if (wait > SHORT_PAUSE_MS || jobs.stopping) {
          await jobs.send(SCIM_JOBS.wake, { accountId }, { startAfter: result.wakeAt });
          return;
        }
        await new Promise((r) => setTimeout(r, Math.max(wait, 0)));
      }
    },
    // A drain of many people runs long; if it outlived its expiry, a second one would only share its work.
    { policy: 'stately', retryLimit: 10, retryDelay: 5, localConcurrency: 2, expireInSeconds: 3600 },
  );

  await jobs.define<AccountJob>(SCIM_JOBS.wake, async ({ accountId }) => {
    await kick(accountId);
  });

  await jobs.define<ReconcileJob>(
    SCIM_JOBS.reconcile,
    async ({ accountId, requestedBy }) => {
      const em = orm.em.fork();
      const connection = await em.findOne(ScimConnection, { account: accountId });
      if (!connection) return;
      if (await stoppedForUrl(em, connection)) return;
      // A DM is posted to the user id itself: no conversations.open turn to wait for. A progress message
      // Slack cannot take now is skipped; the report is then posted on its own, later if need be.
      const channel = requestedBy;
      const first = channel
        ? await slack.chat
            .postMessage({ channel, ...progressMessage(connection.baseUrl, 0, 0) })
            .catch((err) => {
              log.warn({ err }, 'could not post the SCIM sync progress');
              return null;
            })
        : null;
      const progress = new ProgressReporter(
        async (done, total) => {
          if (first?.ts && first.channel) {
            await slack.chat.update({
              channel: first.channel,
              ts: first.ts,
              ...progressMessage(connection.baseUrl, done, total),
            });
          }
        },
        { logger: log },
      );
      progress.start();
      let report: Awaited<ReturnType<typeof reconcile>>;
      try {
        report = await reconcile(
          em,
          connection,
          scim.client(connection),
          (done, total) => progress.set(done, total),
          tellRefused(connection),
          tellOutage(connection),
        );
      } finally {
        await progress.stop();
      }
      log.info(
        { accountId, created: report.created.count, updated: report.updated.count, stopped: report.stopped },
        'SCIM reconciliation',
      );
      const message = reportMessage(connection.baseUrl, report);
      // A report Slack refuses outright is logged: failing the job would run the whole reconciliation again.
      const reported = (err: unknown) => log.warn({ err }, 'could not post the SCIM sync report');
      if (channel && first?.ts && first.channel) {
        await nowOrLater(jobs, slack, {
          method: 'chat.update',
          args: { channel: first.channel, ts: first.ts, ...message },
        }).catch(reported);
      } else if (channel) {
        await nowOrLater(jobs, slack, { method: 'chat.postMessage', args: { channel, ...message } }).catch(
          reported,
        );
      }
      // A token refused was told when the connection was marked refused (see tellRefused).
      if (!report.newlyRefused && !requestedBy && report.failed.count) {
        await tellAdmins(accountId, message);
      }
      // Anything a change left pending meanwhile.
      await kick(accountId);
    },
    // One queued and one running per account: a double click does not reconcile twice.
    { policy: 'stately', retryLimit: 2, retryDelay: 30, expireInSeconds: 6 * 3600, localConcurrency: 1 },
  );

  // The schedule's jobs carry no data (null); the one sent at start carries how long to wait for an account.
  await jobs.define<{ untilAccount?: number }>(SCIM_JOBS.tick, async (data) => {
    const untilAccount = data?.untilAccount ?? 0;
    const em = orm.em.fork();
    const accounts = await query<{ id: string }>(em, sql`select id from account`);
    // On a first start the account is created once Slack answers: look again shortly, for a while.
    if (!accounts.length && untilAccount > 0) {
      await jobs.send(SCIM_JOBS.tick, { untilAccount: untilAccount - 1 }, { startAfter: 1 });
    }
    for (const { id } of accounts) await scim.applyEnvironment(em, id);
    const due = await query<{ accountId: string }>(
      em,
      sql`select c.account_id as "accountId" from scim_connection c
        where c.refused_at is null and (c.paused_until is null or c.paused_until <= now())
          and exists (select 1 from scim_sync s where s.account_id = c.account_id and s.state = 'pending'
            and s.next_attempt_at <= now() and (s.leased_until is null or s.leased_until < now()))`,
    );
    // Connections saved with a URL Roster no longer takes (a user name or password, ?query or #fragment):
    // their sync stops them and tells the admins, without waiting for someone to change.
    const unusable = await query<{ accountId: string }>(
      em,
      sql`select account_id as "accountId" from scim_connection
        where refused_at is null and base_url ~ '^[^/]*//[^/?#]*@|[?#]'`,
    );
    for (const { accountId } of [...due, ...unusable]) await kick(accountId);
  });
  await jobs.boss.schedule(SCIM_JOBS.tick, '* * * * *');
  // The thread that works the tick (not the bulk jobs thread) also listens, once per process.
  if (!jobs.worksOn(SCIM_JOBS.tick)) return undefined;
  // At once too: the environment's connection should not wait a minute after a start.
  await jobs.send(SCIM_JOBS.tick, { untilAccount: scim.managed ? 120 : 0 });

  return await listen(orm.config.get('clientUrl') as string, log, (accountId) => {
    kick(accountId).catch((err) => log.warn({ err }, 'could not queue the SCIM sync'));
  });
}

/**
 * Listens for the triggers' notifications on a connection of its own, reconnecting after a loss (the
 * minute's tick covers what arrives meanwhile). Returns its stop.
 */
async function listen(
  url: string,
  log: Logger,
  onAccount: (accountId: string) => void,
): Promise<() => Promise<void>> {
  let client: pg.Client | undefined;
  let stopped = false;
  let retry: NodeJS.Timeout | undefined;
  const connect = async () => {
    const c = new pg.Client({ connectionString: url, application_name: 'roster-scim-listener' });
    client = c;
    c.on('notification', (msg) => {
      if (msg.channel === SCIM_CHANNEL && msg.payload) onAccount(msg.payload);
    });
    c.on('error', (err) => {
      if (!stopped) log.warn({ err }, 'the SCIM listener lost its connection; reconnecting');
    });
    c.on('end', () => {
      if (stopped) return;
      retry = setTimeout(() => void connect(), 5000);
      retry.unref();
    });
    try {
      await c.connect();
      await c.query(`listen ${SCIM_CHANNEL}`);
    } catch (err) {
      if (!stopped) log.warn({ err }, 'the SCIM listener could not connect; trying again');
      await c.end().catch(() => {});
    }
  };
  await connect();
  return async () => {
    stopped = true;
    clearTimeout(retry);
    await client?.end().catch(() => {});
  };
}
