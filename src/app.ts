import type { Server } from 'node:http';
import { join } from 'node:path';
import type { App, SocketModeReceiver } from '@slack/bolt';
import { ErrorCode, WebClient } from '@slack/web-api';
import nodemailer from 'nodemailer';
import { BULK_QUEUES, type BulkMessage, type BulkThread, isBulkQueue, startBulkThread } from './bulk.ts';
import { type BulkJobs, type Config, configWarnings, isLocal } from './config.ts';
import { databaseProblem } from './db/check.ts';
import { type EmbeddedDatabase, startEmbeddedPostgres } from './db/embedded.ts';
import { initORM, MigrationFailed, type ORM } from './db/orm.ts';
import { query, sql } from './db/sql.ts';
import { AccountDirectory } from './features/accounts/account.directory.ts';
import { type IAccount, SlackInstallation } from './features/accounts/account.entity.ts';
import { ensureAccount } from './features/accounts/account.service.ts';
import { DIRECTORY_JOBS } from './features/directory/index.ts';
import type { Deps, Feature } from './features/feature.ts';
import { features as allFeatures } from './features/index.ts';
import { buildServices } from './services.ts';
import { JobQueue } from './shared/jobs.ts';
import { createLogger, type Logger, scrub } from './shared/logger.ts';
import { createMailer, type Mailer } from './shared/mailer.ts';
import { outboundProblem } from './shared/outbound.ts';
import { createSlackApp, INTERACTIVE_CLIENT } from './slack/app.ts';
import { defineSlackCalls, pruneRedraws } from './slack/later.ts';
import { boltLogger } from './slack/logger.ts';
import { PRUNE_RECEIPTS_JOB, pruneReceipts } from './slack/once.ts';
import { PacedWebClient, SlackPacer } from './slack/pacing.ts';
import { SocketHealth } from './slack/socket-health.ts';
import { TokenWatch } from './slack/token-watch.ts';
import { Outcomes } from './web/outcome.ts';
import { Csrf, Router } from './web/router.ts';
import { createHttpServer } from './web/server.ts';
import { addWelcomePage } from './web/welcome.page.ts';

export type RosterOptions = {
  config: Config;
  logger?: Logger;
  processBeforeResponse?: boolean;
  features?: Feature[];
  /** Bind address for the HTTP server; all interfaces by default. */
  host?: string;
  /**
   * Multiplies the pace of bulk Slack calls: for a Slack stand-in whose rate-limit windows are shortened by
   * the same factor (benches). Slack itself is paced at 1.
   */
  slackPaceScale?: number;
  /** A stop asked for while starting: what is started is stopped again and startRoster() throws. */
  signal?: AbortSignal;
  /** Told while migrations are waited for or applied (true) and when they are done (false). */
  onMigrations?: (busy: boolean) => void;
};

export type Roster = {
  url: string;
  port: number;
  deps: Deps;
  app: App;
  orm: ORM;
  jobs: JobQueue;
  mailer: Mailer;
  /** The paced client bulk work uses (deps.slack); listeners answer people through Bolt's own client. */
  slack: PacedWebClient;
  pacer: SlackPacer;
  /** The thread that works the bulk jobs, when BULK_JOBS is `thread`. */
  bulkThread?: BulkThread;
  /** Whether Slack still takes the bot token, as this thread's calls found. */
  tokenWatch: TokenWatch;
  stop(): Promise<void>;
};

/**
 * A bulk call that fails on the network is tried again a few times within seconds; beyond that the job
 * itself is retried later, rather than a worker sleeping for the Web API client's default half hour.
 */
const BULK_RETRIES = { retries: 3, factor: 2, minTimeout: 500, maxTimeout: 4000 };

/**
 * What both of Roster's threads are built from: the Slack clients, the job queue's shared jobs and the
 * services. The main thread adds the Slack listeners and web pages; the bulk jobs thread only the jobs.
 */
export async function composeRoster(parts: {
  config: Config;
  logger: Logger;
  orm: ORM;
  jobs: JobQueue;
  mailer: Mailer;
  slackPaceScale?: number;
  /** Whether Slack still takes the bot token; this thread's own when not given. */
  tokenWatch?: TokenWatch;
}): Promise<{ deps: Deps; pacer: SlackPacer; slack: PacedWebClient; tokenWatch: TokenWatch }> {
  const { config, logger, orm, jobs, mailer } = parts;
  const tokenWatch = parts.tokenWatch ?? new TokenWatch(config, logger);
  const pacer = new SlackPacer(() => orm.em.fork());
  const slack = new PacedWebClient(config.slack.botToken, {
    pacer,
    logger,
    watch: tokenWatch,
    scale: parts.slackPaceScale ?? 1,
    // Each try ends after 10 s without an answer, as the listeners' own calls do: a Slack that takes a call
    // and never answers would otherwise hold the job's worker until the job expires (15 minutes, 2 hours
    // for an import batch), and four of them every invitation worker.
    client: {
      slackApiUrl: config.slack.apiUrl,
      logger: boltLogger(logger),
      retryConfig: BULK_RETRIES,
      timeout: INTERACTIVE_CLIENT.timeout,
    },
  });
  // A lookup a person may be waiting on (users.info on a mirror miss, inside a click) is made like the
  // listeners' own calls: never paced, and a 429 is said at once rather than slept on.
  const promptSlack = new WebClient(config.slack.botToken, {
    slackApiUrl: config.slack.apiUrl,
    logger: boltLogger(logger),
    ...INTERACTIVE_CLIENT,
  });
  await defineSlackCalls(jobs, slack, orm);
  await jobs.define(PRUNE_RECEIPTS_JOB, async () => {
    await pruneReceipts(orm.em.fork());
    await pruneRedraws(orm.em.fork());
    await pacer.prune();
  });
  const deps: Deps = {
    config,
    logger,
    orm,
    jobs,
    mailer,
    slack,
    router: new Router(),
    csrf: new Csrf(config.slack.signingSecret, config.publicUrl),
    outcomes: new Outcomes(config.slack.signingSecret, config.publicUrl),
    ...buildServices({
      orm,
      jobs,
      slack,
      prompt: promptSlack,
      scim: config.scim,
      tokenSecret: config.slack.signingSecret,
      allowPrivateUrls: config.allowPrivateUrls ?? false,
    }),
  };
  return { deps, pacer, slack, tokenWatch };
}

/**
 * A start that cannot go on because of a setting or this machine (the database, the port, DATA_DIR): the
 * message names the setting and says what to check, for the operator to read without a stack trace.
 */
export class StartupError extends Error {}

/** Thrown when Slack refuses the bot token at startup; the message says what to check. */
export class SlackAuthError extends StartupError {}

/** Builds and starts everything: database, migrations, jobs, the Slack app and the HTTP server. */
export async function startRoster(opts: RosterOptions): Promise<Roster> {
  const { config, signal } = opts;
  const logger = opts.logger ?? createLogger(config.logLevel);
  const cleanups: [string, () => Promise<void>][] = [];
  const cleanUp = async () => {
    for (const [name, cleanup] of cleanups.splice(0).reverse()) {
      await cleanup().catch((err) => logger.warn({ err, step: name }, 'error while stopping'));
      logger.debug({ step: name }, 'stopped');
    }
  };
  const graceMs = (config.stopGraceSeconds ?? 5) * 1000;
  /** How long Slack waits for a request's ack. */
  const SLACK_ACK_MS = 3000;
  /** When the stop's grace ends: Slack requests still being worked and running jobs share it. */
  let graceEnds = 0;

  for (const warning of configWarnings(config)) logger.warn(warning);
  if (config.smtpUrl) {
    const smtpUrl = config.smtpUrl;
    // In the background: a mail server that is down must not keep Slack's requests waiting.
    void smtpProblem(smtpUrl).then((problem) => problem && logger.warn(problem));
  }
  // A deployment's own endpoint on this machine or a private network is accepted by the settings (for
  // ALLOW_PRIVATE_URLS), but without it never called: said once here rather than only per failed delivery.
  for (const [setting, url] of [
    ['WEBHOOK_URL', config.webhook?.url],
    ['SCIM_URL', config.scim?.url],
  ] as const) {
    if (!url) continue;
    void outboundProblem(url, config.allowPrivateUrls ?? false).then(
      (problem) => problem && logger.warn(`${setting} will not be called: ${problem}.`),
    );
  }

  try {
    let embedded: EmbeddedDatabase | undefined;
    let databaseUrl = config.databaseUrl;
    if (!databaseUrl) {
      embedded = await startEmbeddedPostgres(config.dataDir, logger).catch((err: Error) => {
        signal?.throwIfAborted();
        // A second `npm start` in the same directory (another terminal) meets the first one's database.
        if (err.message.includes('postmaster.pid')) {
          throw new StartupError(
            `Another Roster (or PostgreSQL) already runs on DATA_DIR (${config.dataDir}): stop it, or give this one a DATA_DIR of its own or a DATABASE_URL.`,
          );
        }
        throw new StartupError(
          `The embedded PostgreSQL could not start under ${join(config.dataDir, 'postgres')} (${scrub(err.message).slice(0, 300)}). Check that DATA_DIR (${config.dataDir}) is a directory Roster may write, or set DATABASE_URL.`,
        );
      });
      cleanups.push(['embedded database', () => embedded!.stop()]);
      databaseUrl = embedded.url;
    } else {
      // Said in one line, and within seconds, rather than the ORM's stack trace or a wait without end.
      const problem = await databaseProblem(databaseUrl, signal);
      if (problem) throw new StartupError(problem);
    }
    signal?.throwIfAborted();

    // Replicas started together take turns at the migrations (an advisory lock): one applies them. A stop
    // meanwhile waits for what cannot be cut short, and says so rather than seeming to hang.
    let migrations: 'waiting' | 'applying' | undefined;
    const sayWhatTheStopWaitsFor = () => {
      if (migrations === 'waiting') {
        logger.info('stopping once the other instance has applied the migrations (none are applied here)');
      } else if (migrations === 'applying') {
        logger.info(
          'stopping once the migrations being applied are done: cut short, they would leave the database half-way',
        );
      }
    };
    signal?.addEventListener('abort', sayWhatTheStopWaitsFor, { once: true });
    const orm = await initORM(databaseUrl, {
      migrate: true,
      signal,
      onLockWait: () => {
        migrations = 'waiting';
        opts.onMigrations?.(true);
        logger.info('another instance is applying migrations; waiting for it');
      },
      onMigrating: (names) => {
        migrations = 'applying';
        opts.onMigrations?.(true);
        logger.info({ migrations: names }, `applying ${names.length} database migration(s)`);
      },
      onTableLocked: (holders, retryInMs, waitMs) => {
        logger.warn(
          `a table the migrations change is locked by another session (${holders}); nothing was applied (requests on that table were held up for at most ${waitMs / 1000} s); trying again in ${retryInMs / 1000} s`,
        );
      },
    })
      .catch((err: unknown) => {
        // One line that says what failed and what to do, not the driver's stack.
        throw err instanceof MigrationFailed ? new StartupError(err.message, { cause: err }) : err;
      })
      .finally(() => {
        signal?.removeEventListener('abort', sayWhatTheStopWaitsFor);
        opts.onMigrations?.(false);
      });
    cleanups.push(['database pool', () => orm.close(true)]);
    signal?.throwIfAborted();

    const mailer = createMailer({
      smtpUrl: config.smtpUrl,
      from: config.mailFrom,
      outboxDir: join(config.dataDir, 'outbox'),
      logger,
    });
    cleanups.push(['mailer', async () => mailer.close()]);

    const accounts = new AccountDirectory();
    const bulk = config.bulkJobs ?? 'thread';
    // Stopped before the mailer and the pool, so jobs still running can finish their work with them.
    const jobs = await JobQueue.start(databaseUrl, logger, {
      works: bulk === 'inline' ? () => true : (name) => !isBulkQueue(name),
    });
    // Both threads' jobs get the same grace, at the same time: jobs waiting for their turn at Slack's pace give
    // up first (queued again), and the bulk jobs thread stops alongside this thread's queue.
    let bulkSlack: PacedWebClient | undefined;
    let bulkThread: BulkThread | undefined;
    let bulkThreadStopped: Promise<void> | undefined;
    cleanups.push([
      'jobs',
      async () => {
        bulkSlack?.close();
        // What is left of the grace, if Slack requests still being worked took part of it (the jobs ran on).
        const left = graceEnds ? Math.max(0, graceEnds - Date.now()) : graceMs;
        await Promise.all([bulkThreadStopped ?? bulkThread?.stop(), jobs.stop(left)]);
      },
    ]);

    const tokenWatch = new TokenWatch(config, logger);
    cleanups.push(['bot token checks', async () => tokenWatch.stop()]);
    const { app, receiver } = createSlackApp({
      config,
      logger,
      em: orm.em,
      accounts,
      jobs,
      processBeforeResponse: opts.processBeforeResponse,
      tokenWatch,
    });
    const composed = await composeRoster({
      config,
      logger,
      orm,
      jobs,
      mailer,
      slackPaceScale: opts.slackPaceScale,
      tokenWatch,
    });
    const { deps, pacer } = composed;
    bulkSlack = composed.slack;
    await jobs.boss.schedule(PRUNE_RECEIPTS_JOB, '17 3 * * *');
    for (const feature of opts.features ?? allFeatures) {
      const stopFeature = await feature.jobs?.(deps);
      if (stopFeature) cleanups.push([`${feature.name} jobs`, stopFeature]);
      feature.slack?.(app, deps);
      feature.web?.(deps.router, deps);
    }
    addWelcomePage(deps.router, config);
    await app.durableEvents.define(jobs, orm.em, logger);
    // Run once Slack's requests no longer come in (the HTTP server and the socket are closed before it): a
    // listener goes on after its ack has answered Slack, and still needs the jobs, the mailer and the pool.
    cleanups.push([
      'slack requests',
      async () => {
        // The bulk jobs thread serves no Slack request: its stop (and its jobs' grace) starts now, as before.
        bulkThreadStopped = bulkThread?.stop();
        // Awaited (and any failure logged) with the jobs, below.
        bulkThreadStopped?.catch(() => {});
        if (app.inFlight === 0) return;
        logger.info({ requests: app.inFlight }, 'waiting for Slack requests still being worked');
        const wait = graceEnds ? Math.max(0, graceEnds - Date.now()) : graceMs;
        if (!(await app.settle(wait))) {
          logger.warn(
            { requests: app.inFlight },
            `Slack requests still being worked after the stop's grace (STOP_GRACE_SECONDS=${graceMs / 1000}); stopping anyway`,
          );
        }
      },
    ]);
    if (bulk === 'thread') {
      // Started once this thread's queues and migrations are in place; stopped with them (see 'jobs').
      bulkThread = await startBulkThread({
        config,
        databaseUrl,
        slackPaceScale: opts.slackPaceScale ?? 1,
        logger,
        onTokenRefused: (code) => tokenWatch.noteRefused(code),
      });
      const thread = bulkThread;
      tokenWatch.onRefusal((code) =>
        thread.current()?.postMessage({ type: 'token_refused', code } satisfies BulkMessage),
      );
    } else if (bulk === 'off') {
      logger.info({ queues: BULK_QUEUES }, 'bulk jobs are left to other instances (BULK_JOBS=off)');
    }

    // Slack is checked with a bounded call first: the app's own client retries for about 30 minutes, and
    // the HTTP port must open meanwhile so /healthz answers and /readyz says what is wrong.
    const slack: SlackState = { ok: false, problem: 'connecting to Slack' };
    /** Set when the stop begins: /readyz then answers 503 "stopping", through the drain and after. */
    let stopping = false;
    let socket: SocketHealth | undefined;
    const connectSlack = async (checked = false): Promise<boolean> => {
      const problem = checked ? undefined : await slackProblem(config, logger);
      if (problem) {
        slack.problem = problem.message;
        return false;
      }
      await app.init();
      const installed = await recordInstallation(app.client, orm, logger);
      // API_TOKEN belongs to the workspace of SLACK_BOT_TOKEN, the one this deployment serves; so do Slack's
      // requests: another workspace the database knows (one an earlier bot token served) is refused.
      if (installed) {
        await deps.apiTokens.applyDeploymentToken(orm.em.fork(), installed, config.apiToken);
        accounts.remember({ id: installed.id, teamId: installed.teamId });
      }
      // The directory mirror is filled now that the workspace is known (the job skips a fresh one).
      if (jobs.has(DIRECTORY_JOBS.sync)) await jobs.send(DIRECTORY_JOBS.sync, {});
      if (!receiver) {
        const client = (app as unknown as { receiver: SocketModeReceiver }).receiver.client;
        socket = new SocketHealth(logger);
        socket.watch(client, { acked: (ms) => app.acked(ms) });
        try {
          await app.start();
        } catch (err) {
          throw new SlackAuthError(
            `Socket Mode could not connect to Slack (${(err as Error).message}). Check SLACK_APP_TOKEN: an app-level token with the connections:write scope, from the app's "Basic Information" page.`,
          );
        }
        cleanups.push([
          'socket mode',
          async () => {
            // A request being worked answers Slack on the socket: it is closed once they have (Slack waits
            // 3 s for an ack, so no longer than that, nor than the stop's grace).
            const wait = Math.min(SLACK_ACK_MS, graceEnds ? Math.max(0, graceEnds - Date.now()) : graceMs);
            if (!(await app.acked(wait))) {
              logger.warn(
                'Slack requests not acknowledged before the socket closed; Slack shows their people an error',
              );
            }
            await app.stop();
          },
        ]);
      }
      slack.ok = true;
      slack.problem = undefined;
      return true;
    };

    // A token API_TOKEN no longer sets stops working before the API answers, whether or not Slack does.
    await deps.apiTokens.retireDeploymentTokens(orm.em.fork(), config.apiToken);
    const server = createHttpServer({
      orm,
      logger,
      router: deps.router,
      slackListener: receiver?.requestListener,
      slackProblem: () => (slack.ok ? undefined : slack.problem),
      health: async () => ({ ok: true, body: { status: 'ok' } }),
      ready: async () =>
        stopping
          ? { ok: false, body: { status: 'stopping', reasons: ['Roster is stopping'] } }
          : readiness({ orm, jobs, slack, tokenWatch, socket, bulk, bulkThread }),
      trustProxy: config.trustProxy,
      publicUrl: () => config.publicUrl,
    });
    if (isLocal(config.publicUrl)) warnWhenReachedFromElsewhere(server, config.publicUrl, logger);
    signal?.throwIfAborted();
    await listen(server, config.port, opts.host);
    cleanups.push(['http server', () => close(server)]);
    const address = server.address();
    const port = typeof address === 'object' && address ? address.port : config.port;

    // Up to 8 s when Slack does not answer: a stop meanwhile does not wait for it.
    const first = await untilStopped(slackProblem(config, logger), signal);
    if (first?.retry) {
      logger.error(first.message);
      // Tried again in the background until Slack answers; the stop ends the attempts.
      let retrying: Promise<unknown> = Promise.resolve();
      const timer = setInterval(() => {
        retrying = retrying.then(() =>
          connectSlack().then(
            (ok) => {
              if (ok) {
                clearInterval(timer);
                logger.info('Slack answers again: Roster is ready');
              }
            },
            (err) => logger.error({ err }, 'could not connect to Slack'),
          ),
        );
      }, SLACK_RETRY_MS);
      timer.unref();
      cleanups.push([
        'slack retries',
        async () => {
          clearInterval(timer);
          await retrying;
        },
      ]);
      slack.problem = first.message;
    } else if (first) {
      logger.error(first.message);
      slack.problem = first.message;
    } else {
      await connectSlack(true);
    }
    const requestUrl = `${config.publicUrl}/slack/events`;
    const pages = `web pages at ${config.publicUrl}/`;
    logger.info(
      {
        port,
        mode: receiver ? 'http' : 'socket',
        database: embedded ? 'embedded' : 'DATABASE_URL',
        ...(receiver ? { requestUrl } : {}),
      },
      receiver
        ? `Roster is listening on port ${port}. Slack's Request URL (commands, interactivity, events): ${requestUrl}; ${pages}${
            isLocal(config.publicUrl)
              ? '. Slack cannot call a local address: set PUBLIC_URL to the https:// address Slack reaches this machine at, or use Socket Mode (SLACK_APP_TOKEN)'
              : ''
          }`
        : `Roster is listening on port ${port} and ${slack.ok ? 'connected' : 'not connected'} in Socket Mode (no Request URL needed); ${pages}`,
    );
    let stopped: Promise<void> | undefined;
    const stop = () => {
      stopped ??= (async () => {
        stopping = true;
        const drainMs = (config.stopDrainSeconds ?? 0) * 1000;
        if (drainMs > 0) {
          // A load balancer that reads /readyz sends new requests elsewhere meanwhile; those that still
          // come here (Slack's included) are served as usual.
          logger.info({ seconds: drainMs / 1000 }, 'draining: /readyz answers 503 until the port closes');
          await new Promise((r) => setTimeout(r, drainMs));
        }
        graceEnds = Date.now() + graceMs;
        await cleanUp();
      })();
      return stopped;
    };
    return {
      url: `http://127.0.0.1:${port}`,
      port,
      deps,
      app,
      orm,
      jobs,
      mailer,
      slack: composed.slack,
      pacer,
      bulkThread,
      tokenWatch,
      stop,
    };
  } catch (err) {
    await cleanUp();
    throw err;
  }
}

/**
 * The workspace's name as Slack has it now (team.info, which the team:read scope allows), so a workspace
 * renamed while Roster was stopped is named right; auth.test's name if team.info cannot be read.
 */
async function workspaceName(client: WebClient, logger: Logger, fallback?: string): Promise<string | null> {
  try {
    const info = await client.team.info();
    return info.team?.name ?? fallback ?? null;
  } catch (err) {
    logger.warn({ err }, "could not read the workspace's name with team.info; using auth.test's");
    return fallback ?? null;
  }
}

/** Records the bot token's workspace, under its current name, and returns its account. */
async function recordInstallation(
  client: WebClient,
  orm: ORM,
  logger: Logger,
): Promise<IAccount | undefined> {
  const auth = await client.auth.test();
  const teamId = auth.team_id;
  if (!teamId || !auth.user_id) return undefined;
  const name = await workspaceName(client, logger, auth.team);
  const em = orm.em.fork();
  const account = await ensureAccount(em, teamId, name);
  await em.upsert(
    SlackInstallation,
    {
      teamId,
      // The account's name: team.info's, unless a rename Slack dated later was handled meanwhile.
      teamName: account.name ?? name,
      enterpriseId: auth.enterprise_id ?? null,
      appId: (auth as { app_id?: string }).app_id ?? null,
      botUserId: auth.user_id,
      botId: auth.bot_id ?? null,
    },
    { onConflictFields: ['teamId'], onConflictExcludeFields: ['id', 'createdAt'] },
  );
  logger.info({ team: teamId, teamName: name }, 'connected to Slack');
  return account;
}

/** How often Roster tries Slack again when it could not be reached at start. */
const SLACK_RETRY_MS = 30_000;

type SlackState = { ok: boolean; problem?: string };

/**
 * One bounded auth.test (no retries, 8 s): undefined when Slack accepts the bot token, otherwise a line
 * that says what to check, and whether trying again later may help (Slack unreachable) or not (refused).
 */
export async function slackProblem(
  config: Config,
  logger: Logger,
): Promise<{ message: string; retry: boolean } | undefined> {
  const client = new WebClient(config.slack.botToken, {
    slackApiUrl: config.slack.apiUrl,
    retryConfig: { retries: 0 },
    timeout: 8000,
    logger: boltLogger(logger),
  });
  try {
    await client.auth.test();
    return undefined;
  } catch (err) {
    const e = err as Error & { code?: string; data?: { error?: string } };
    if (e.code === ErrorCode.PlatformError) {
      return {
        retry: false,
        message: `Slack did not accept SLACK_BOT_TOKEN (${e.data?.error}). Check the token on the app's "OAuth & Permissions" page and that SLACK_API_URL (${config.slack.apiUrl}) is right; then restart Roster.`,
      };
    }
    // What fetch says by itself ("fetch failed") names no cause; the one under it does (ENOTFOUND, ECONNREFUSED).
    const cause = (e as { original?: { cause?: { code?: string; message?: string } } }).original?.cause;
    const why = cause?.code ?? cause?.message;
    return {
      retry: true,
      message: `Slack cannot be reached at ${config.slack.apiUrl} (${scrub(e.message)}${why ? `: ${scrub(why)}` : ''}). Check this machine's network and SLACK_API_URL; Roster tries again every ${SLACK_RETRY_MS / 1000} s.`,
    };
  }
}

/** How long /readyz waits for the database before it says the database does not answer. */
const READINESS_DATABASE_MS = 5000;
type DatabaseReadiness = { checks: Record<string, string>; reasons: string[] };
/** The database check under way, per ORM: a probe while one waits on a silent server joins it. */
const databaseChecks = new WeakMap<ORM, Promise<DatabaseReadiness>>();

/**
 * The database's part of /readyz: it answers, and its migrations are applied. A server that takes the
 * connection and then says nothing (a network partition, a stuck server) is reported after
 * {@link READINESS_DATABASE_MS}, rather than leaving the probe waiting for ever.
 */
async function databaseReadiness(orm: ORM): Promise<DatabaseReadiness> {
  let running = databaseChecks.get(orm);
  if (!running) {
    const started = performance.now();
    running = (async (): Promise<DatabaseReadiness> => {
      try {
        await query(orm.em.fork(), sql`select 1`);
        const database = `up (${Math.round(performance.now() - started)} ms)`;
        const pending = await orm.migrator.getPending();
        return {
          checks: { database, migrations: pending.length ? `${pending.length} pending` : 'applied' },
          reasons: pending.length ? [`migrations not applied: ${pending.map((m) => m.name).join(', ')}`] : [],
        };
      } catch (err) {
        return {
          checks: { database: 'down' },
          reasons: [`the database does not answer: ${scrub((err as Error).message)}`],
        };
      }
    })().finally(() => databaseChecks.delete(orm));
    databaseChecks.set(orm, running);
  }
  let timer: NodeJS.Timeout | undefined;
  const silent = new Promise<DatabaseReadiness>((ok) => {
    timer = setTimeout(
      () =>
        ok({
          checks: { database: 'not answering' },
          reasons: [`the database did not answer within ${READINESS_DATABASE_MS / 1000} s`],
        }),
      READINESS_DATABASE_MS,
    );
  });
  try {
    return await Promise.race([running, silent]);
  } finally {
    clearTimeout(timer);
  }
}

/** /readyz: what must hold for Roster to do its work, each with the reason when it does not. */
async function readiness(parts: {
  orm: ORM;
  jobs: JobQueue;
  slack: SlackState;
  tokenWatch: TokenWatch;
  socket?: SocketHealth;
  bulk: BulkJobs;
  bulkThread?: BulkThread;
}): Promise<{ ok: boolean; body: Record<string, unknown> }> {
  const reasons: string[] = [];
  const warnings: string[] = [];
  const checks: Record<string, string> = {};
  const db = await databaseReadiness(parts.orm);
  Object.assign(checks, db.checks);
  reasons.push(...db.reasons);
  checks.queue = parts.jobs.stopping ? 'stopped' : 'running';
  if (parts.jobs.stopping) reasons.push('the job queue is stopping');
  if (parts.bulkThread) {
    const { running, since } = parts.bulkThread.state();
    // Said, but not a reason to take this instance out of a load balancer: it still answers Slack, and
    // its imports and deliveries wait in the queue (or are worked by another instance) meanwhile.
    checks.bulkJobs = running ? 'own thread' : `own thread, restarting since ${since.toISOString()}`;
  } else {
    checks.bulkJobs = parts.bulk === 'off' ? 'left to other instances' : 'inline';
  }
  const refused = parts.tokenWatch.problem();
  checks.slack = !parts.slack.ok ? 'not connected' : refused ? 'token refused' : 'ok';
  if (!parts.slack.ok) reasons.push(parts.slack.problem ?? 'not connected to Slack');
  // Said, but not a reason to take the instance out of a load balancer: a token Slack stopped taking while
  // Roster ran is refused to every instance alike, and the invitation and join pages, the emails' links and
  // the API still work. (A token refused at start is a reason: a new deployment set up wrong should not
  // replace one that works.)
  else if (refused) warnings.push(refused);
  if (parts.socket) {
    const { check, problem } = parts.socket.report();
    checks.socketMode = check;
    if (problem) reasons.push(problem);
  }
  return {
    ok: reasons.length === 0,
    body: {
      status: reasons.length === 0 ? 'ready' : 'not ready',
      reasons,
      ...(warnings.length ? { warnings } : {}),
      checks,
    },
  };
}

/** Whether the SMTP server in SMTP_URL answers: undefined when it does, otherwise what to check. */
export async function smtpProblem(smtpUrl: string): Promise<string | undefined> {
  const transport = nodemailer.createTransport({
    url: smtpUrl,
    connectionTimeout: 5000,
    greetingTimeout: 5000,
    socketTimeout: 5000,
  });
  try {
    await transport.verify();
    return undefined;
  } catch (err) {
    return `SMTP_URL does not answer (${scrub((err as Error).message)}): emails will fail until it does. Check its host, port and credentials.`;
  } finally {
    transport.close();
  }
}

/** PUBLIC_URL left local while people reach Roster at another address: its links would not open for them. */
function warnWhenReachedFromElsewhere(server: Server, publicUrl: string, logger: Logger): void {
  const onRequest = (req: { headers: { host?: string } }) => {
    const host = req.headers.host;
    if (!host || isLocal(`http://${host}`)) return;
    server.off('request', onRequest);
    logger.warn(
      `Roster is reached at ${host} but PUBLIC_URL is ${publicUrl}: links in invitations and join links will not open for others. Set PUBLIC_URL to the address people reach Roster at.`,
    );
  };
  server.on('request', onRequest);
}

function listen(server: Server, port: number, host?: string): Promise<void> {
  return new Promise((ok, fail) => {
    const onError = (err: Error & { code?: string }) =>
      fail(
        err.code === 'EADDRINUSE'
          ? new StartupError(
              `PORT ${port} is already in use by another program: stop it, or set PORT to a free port.`,
            )
          : err.code === 'EACCES'
            ? new StartupError(
                `PORT ${port} may not be opened by this user (ports below 1024 need privileges): set PORT to 1024 or above, e.g. 3000.`,
              )
            : err,
      );
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      ok();
    });
  });
}

/** `work`, or the stop's reason as soon as `signal` aborts (what `work` then does is left to the exit). */
function untilStopped<T>(work: Promise<T>, signal?: AbortSignal): Promise<T> {
  if (!signal) return work;
  signal.throwIfAborted();
  let onAbort = () => {};
  const aborted = new Promise<never>((_, fail) => {
    onAbort = () => fail(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
  });
  return Promise.race([work, aborted]).finally(() => signal.removeEventListener('abort', onAbort));
}

/** Stops taking requests and lets those in flight finish; keep-alive connections get a short grace. */
function close(server: Server): Promise<void> {
  const cutoff = setTimeout(() => server.closeAllConnections(), 3000);
  return new Promise((ok) => {
    server.close(() => {
      clearTimeout(cutoff);
      ok();
    });
    server.closeIdleConnections();
  });
}
