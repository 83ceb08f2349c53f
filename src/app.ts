import type { Server } from 'node:http';
import { join } from 'node:path';
import type { App } from '@slack/bolt';
import type { WebClient } from '@slack/web-api';
import nodemailer from 'nodemailer';
import { type Config, configWarnings, isLocal } from './config.ts';
import { type EmbeddedDatabase, startEmbeddedPostgres } from './db/embedded.ts';
import { initORM, type ORM } from './db/orm.ts';
import { SlackInstallation } from './features/accounts/account.entity.ts';
import { ensureAccount } from './features/accounts/account.service.ts';
import { features as allFeatures, type Deps, type Feature } from './features/index.ts';
import { PeopleChanges } from './features/people/people.changes.ts';
import { AdminDirectory } from './features/seats/admins.ts';
import { SeatService } from './features/seats/seat.service.ts';
import { JobQueue } from './shared/jobs.ts';
import { createLogger, type Logger, scrub } from './shared/logger.ts';
import { createMailer, type Mailer } from './shared/mailer.ts';
import { createSlackApp } from './slack/app.ts';
import { PRUNE_RECEIPTS_JOB, pruneReceipts } from './slack/once.ts';
import { Csrf, Router } from './web/router.ts';
import { createHttpServer } from './web/server.ts';

export type RosterOptions = {
  config: Config;
  logger?: Logger;
  processBeforeResponse?: boolean;
  features?: Feature[];
  /** Bind address for the HTTP server; all interfaces by default. */
  host?: string;
};

export type Roster = {
  url: string;
  port: number;
  deps: Deps;
  app: App;
  orm: ORM;
  jobs: JobQueue;
  mailer: Mailer;
  slack: WebClient;
  stop(): Promise<void>;
};

/** Thrown when Slack refuses the bot token at startup; the message says what to check. */
export class SlackAuthError extends Error {}

/** Builds and starts everything: database, migrations, jobs, the Slack app and the HTTP server. */
export async function startRoster(opts: RosterOptions): Promise<Roster> {
  const { config } = opts;
  const logger = opts.logger ?? createLogger(config.logLevel);
  const cleanups: [string, () => Promise<void>][] = [];
  const stop = async () => {
    for (const [name, cleanup] of cleanups.splice(0).reverse()) {
      await cleanup().catch((err) => logger.warn({ err, step: name }, 'error while stopping'));
      logger.debug({ step: name }, 'stopped');
    }
  };

  for (const warning of configWarnings(config)) logger.warn(warning);
  if (config.smtpUrl) {
    const smtpUrl = config.smtpUrl;
    // In the background: a mail server that is down must not keep Slack's requests waiting.
    void smtpProblem(smtpUrl).then((problem) => problem && logger.warn(problem));
  }

  try {
    let embedded: EmbeddedDatabase | undefined;
    let databaseUrl = config.databaseUrl;
    if (!databaseUrl) {
      embedded = await startEmbeddedPostgres(config.dataDir, logger);
      cleanups.push(['embedded database', () => embedded!.stop()]);
      databaseUrl = embedded.url;
    }

    const orm = await initORM(databaseUrl, { migrate: true });
    cleanups.push(['database pool', () => orm.close(true)]);

    const mailer = createMailer({
      smtpUrl: config.smtpUrl,
      from: config.mailFrom,
      outboxDir: join(config.dataDir, 'outbox'),
      logger,
    });
    cleanups.push(['mailer', async () => mailer.close()]);

    // Stopped before the mailer and the pool, so jobs still running can finish their work with them.
    const jobs = await JobQueue.start(databaseUrl, logger);
    cleanups.push(['jobs', () => jobs.stop()]);

    const { app, receiver } = createSlackApp({
      config,
      logger,
      em: orm.em,
      processBeforeResponse: opts.processBeforeResponse,
    });
    try {
      await app.init();
    } catch (err) {
      throw new SlackAuthError(
        `Slack did not accept SLACK_BOT_TOKEN (${(err as Error).message}). Check the token on the app's "OAuth & Permissions" page and that SLACK_API_URL (${config.slack.apiUrl}) is right.`,
      );
    }
    await recordInstallation(app.client, orm, logger);

    await jobs.define(PRUNE_RECEIPTS_JOB, async () => {
      await pruneReceipts(orm.em.fork());
    });
    await jobs.boss.schedule(PRUNE_RECEIPTS_JOB, '17 3 * * *');

    const router = new Router();
    const seats = new SeatService(jobs);
    const deps: Deps = {
      config,
      logger,
      orm,
      jobs,
      mailer,
      slack: app.client,
      router,
      csrf: new Csrf(config.slack.signingSecret, config.publicUrl),
      seats,
      admins: new AdminDirectory(app.client),
      people: new PeopleChanges(seats, jobs),
    };
    for (const feature of opts.features ?? allFeatures) {
      await feature.jobs?.(deps);
      feature.slack?.(app, deps);
      feature.web?.(router, deps);
    }

    const server = createHttpServer({
      orm,
      logger,
      router,
      slackListener: receiver?.requestListener,
      health: () => health(orm),
    });
    if (isLocal(config.publicUrl)) warnWhenReachedFromElsewhere(server, config.publicUrl, logger);
    await listen(server, config.port, opts.host);
    cleanups.push(['http server', () => close(server)]);
    const address = server.address();
    const port = typeof address === 'object' && address ? address.port : config.port;

    if (!receiver) {
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
          await app.stop();
        },
      ]);
    }
    logger.info(
      { port, mode: receiver ? 'http' : 'socket', database: embedded ? 'embedded' : 'DATABASE_URL' },
      receiver
        ? `Roster is listening on port ${port}; Slack requests go to /slack/events`
        : 'Roster is connected in Socket Mode',
    );
    return { url: `http://127.0.0.1:${port}`, port, deps, app, orm, jobs, mailer, slack: app.client, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

async function recordInstallation(client: WebClient, orm: ORM, logger: Logger): Promise<void> {
  const auth = await client.auth.test();
  const teamId = auth.team_id;
  if (!teamId || !auth.user_id) return;
  const em = orm.em.fork();
  await ensureAccount(em, teamId, auth.team ?? null);
  await em.upsert(
    SlackInstallation,
    {
      teamId,
      teamName: auth.team ?? null,
      enterpriseId: auth.enterprise_id ?? null,
      appId: (auth as { app_id?: string }).app_id ?? null,
      botUserId: auth.user_id,
      botId: auth.bot_id ?? null,
    },
    { onConflictFields: ['teamId'], onConflictExcludeFields: ['id', 'createdAt'] },
  );
  logger.info({ team: teamId, teamName: auth.team }, 'connected to Slack');
}

async function health(orm: ORM): Promise<{ ok: boolean; body: Record<string, unknown> }> {
  const started = performance.now();
  try {
    await orm.em.getConnection().execute('select 1');
    return {
      ok: true,
      body: { status: 'ok', database: { state: 'up', latencyMs: Math.round(performance.now() - started) } },
    };
  } catch (err) {
    return {
      ok: false,
      body: { status: 'error', database: { state: 'down', error: (err as Error).message } },
    };
  }
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
    server.once('error', fail);
    server.listen(port, host, () => {
      server.off('error', fail);
      ok();
    });
  });
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
