import type { EntityManager } from '@mikro-orm/postgresql';
import pg from 'pg';
import { type Roster, startRoster } from '../../src/app.ts';
import { loadConfig } from '../../src/config.ts';
import { query, sql } from '../../src/db/sql.ts';
import { Account, type IAccount } from '../../src/features/accounts/account.entity.ts';
import type { Feature } from '../../src/features/feature.ts';
import { createLogger, type Logger } from '../../src/shared/logger.ts';
import { createTestDatabase, type TestDatabase } from './database.ts';
import { SlackDriver } from './slack-driver.ts';
import { type Member, type SlackStandin, startSlackStandin } from './slack-standin.ts';
import type { TierOptions } from './slack-tiers.ts';
import { type SmtpSink, startSmtpSink } from './smtp-sink.ts';
import { SocketDriver, type SocketStandin, startSocketStandin } from './socket-standin.ts';

export const TEAM_ID = 'T0001';
export const SIGNING_SECRET = 'test-signing-secret';
export const BOT_TOKEN = 'xoxb-test-bot-token';
export const APP_TOKEN = 'xapp-1-AROSTER-test-app-token';

/** The workspace every test starts with: an owner, an admin and two members. */
export const DEFAULT_MEMBERS: Member[] = [
  {
    id: 'UOWNER',
    name: 'olive',
    realName: 'Olive Owner',
    email: 'olive@acme.test',
    isOwner: true,
    isAdmin: true,
  },
  { id: 'UADMIN', name: 'adam', realName: 'Adam Admin', email: 'adam@acme.test', isAdmin: true },
  { id: 'UMANAGER', name: 'mia', realName: 'Mia Manager', email: 'mia@acme.test', title: 'Team lead' },
  { id: 'UMEMBER', name: 'max', realName: 'Max Member', email: 'max@acme.test', phone: '+1 555 0100' },
];

/** The team of another organisation, met in channels shared through Slack Connect. */
export const PARTNER_TEAM = 'TPARTNER';

/** A person of another organisation, seen in a channel shared through Slack Connect. */
export const outsider = (id: string, name: string, email: string): Member => ({
  id,
  name,
  realName: `${name[0]!.toUpperCase()}${name.slice(1)} Outside`,
  email,
  teamId: PARTNER_TEAM,
});

export type TestApp = {
  roster: Roster;
  url: string;
  standin: SlackStandin;
  slack: SlackDriver;
  smtp: SmtpSink;
  /** In Socket Mode (`socketMode: true`), Slack's end of the socket; `slack` then delivers through it. */
  socket?: SocketStandin;
  db: TestDatabase;
  /** A fresh EntityManager, to read what the app wrote. */
  em(): EntityManager;
  account(): Promise<IAccount>;
  setSeatLimit(limit: number): Promise<void>;
  stop(): Promise<void>;
};

/**
 * The whole app, running as it does in production, against a fresh database, a Slack Web API stand-in
 * and an SMTP sink, with Slack's requests answered only after their handlers finish.
 */
export async function startTestApp(
  opts: {
    members?: Member[];
    env?: Record<string, string>;
    features?: Feature[];
    seatLimit?: number;
    /** Where the app logs; by default a logger at LOG_LEVEL (silent unless set). */
    logger?: Logger;
    /** Run in Socket Mode (SLACK_APP_TOKEN set) against a Socket Mode stand-in, instead of over HTTP. */
    socketMode?: boolean;
    /** The stand-in's rate limits: Slack's tiers by default (see test/support/slack-tiers.ts). */
    tiers?: TierOptions;
    /**
     * Answer Slack's HTTP requests only once their handlers finish (the default here, for determinism);
     * false answers at the ack, as in production, and the handler runs on after the answer.
     */
    processBeforeResponse?: boolean;
  } = {},
): Promise<TestApp> {
  const db = await createTestDatabase();
  const standin = await startSlackStandin({
    members: opts.members ?? DEFAULT_MEMBERS,
    teamId: TEAM_ID,
    botToken: BOT_TOKEN,
    tiers: opts.tiers,
  });
  const socket = opts.socketMode ? await startSocketStandin({ standin, appToken: APP_TOKEN }) : undefined;
  const smtp = await startSmtpSink();
  const config = loadConfig({
    SLACK_SIGNING_SECRET: SIGNING_SECRET,
    SLACK_BOT_TOKEN: BOT_TOKEN,
    SLACK_API_URL: standin.apiUrl,
    DATABASE_URL: db.url,
    SMTP_URL: smtp.url,
    MAIL_FROM: 'Roster <roster@acme.test>',
    PORT: '0',
    PUBLIC_URL: 'http://localhost',
    LOG_LEVEL: process.env.LOG_LEVEL ?? 'silent',
    // On the test's own event loop, where a test can see and shape them (a subset of features, the
    // stand-in's pace); test/bulk-thread.test.ts runs them in their thread as in production.
    BULK_JOBS: 'inline',
    // The tests' webhook receivers and SCIM services listen on 127.0.0.1, which Roster refuses unless
    // allowed; a test of that refusal sets ALLOW_PRIVATE_URLS to '' (not set) or 'false'.
    ALLOW_PRIVATE_URLS: 'true',
    ...(socket ? { SLACK_APP_TOKEN: APP_TOKEN } : {}),
    ...opts.env,
  });
  const roster = await startRoster({
    config,
    logger: opts.logger ?? createLogger(config.logLevel),
    processBeforeResponse: opts.processBeforeResponse ?? true,
    host: '127.0.0.1',
    // The app paces itself as fast as the stand-in's shortened windows allow.
    slackPaceScale: (opts.tiers || undefined)?.scale ?? 1,
    ...(opts.features ? { features: opts.features } : {}),
  });
  // Links in messages and emails point at the running app.
  config.publicUrl = roster.url;
  const slack = socket
    ? new SocketDriver({ socket, standin, teamId: TEAM_ID })
    : new SlackDriver({ appUrl: roster.url, signingSecret: SIGNING_SECRET, standin, teamId: TEAM_ID });
  const em = () => roster.orm.em.fork();
  const account = () => em().findOneOrFail(Account, { teamId: TEAM_ID });
  const app: TestApp = {
    roster,
    url: roster.url,
    standin,
    slack,
    smtp,
    socket,
    db,
    em,
    account,
    async setSeatLimit(limit) {
      await em()
        .getConnection()
        .execute('update account set seat_limit = ? where team_id = ?', [limit, TEAM_ID]);
    },
    async stop() {
      await roster.stop();
      await socket?.close();
      await standin.close();
      await smtp.close();
      await db.drop();
      // Slack would have refused these, and the person would have seen nothing: a test file that made
      // Roster send one fails here even if its own assertions did not notice.
      if (standin.refusedBlocks.length) {
        throw new Error(
          `Slack would refuse ${standin.refusedBlocks.length} message(s) or view(s) as invalid_blocks: ${JSON.stringify(standin.refusedBlocks).slice(0, 3000)}`,
        );
      }
      // Slack shows the person an error for a request not acknowledged within 3 seconds.
      if (!socket && slack.unacked.length) {
        throw new Error(
          `${slack.unacked.length} request(s) not acknowledged within 3 s: ${JSON.stringify(slack.unacked)}`,
        );
      }
      if (socket?.unacked.length) {
        throw new Error(
          `${socket.unacked.length} Socket Mode envelope(s) not acknowledged within 3 s: ${JSON.stringify(socket.unacked.map((e) => e.payload.command ?? e.payload.type ?? e.payload.event?.type))}`,
        );
      }
    },
  };
  if (opts.seatLimit !== undefined) await app.setSeatLimit(opts.seatLimit);
  return app;
}

/** Polls until `check` holds; for effects of background jobs. */
export async function eventually<T>(
  check: () => Promise<T | undefined | null | false> | T | undefined | null | false,
  timeoutMs = 10000,
): Promise<T> {
  const start = Date.now();
  let last: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value) return value as T;
    } catch (err) {
      last = err;
    }
    if (Date.now() - start > timeoutMs) {
      throw last instanceof Error ? last : new Error('eventually: the condition did not hold in time');
    }
    await new Promise((r) => setTimeout(r, 25));
  }
}

/**
 * Resolves once the job queue has nothing left to do: no job waiting, running or due for a retry (in
 * `queues`, counting retries scheduled later too; otherwise in every queue, counting what is due within a
 * minute, which includes work rescheduled to wait for Slack's rate limits).
 * For checks that something did NOT happen: they look after the work that could have done it, not
 * after a guessed pause. Jobs queued by jobs are waited for as well.
 */
export async function jobsDrained(
  em: EntityManager,
  opts: { queues?: string[]; timeoutMs?: number } = {},
): Promise<void> {
  const { queues, timeoutMs = 15000 } = opts;
  const pending = async () => {
    const [row] = await query<{ n: number }>(
      em.fork(),
      queues
        ? sql`select count(*)::int as n from pgboss.job
            where state in ('created', 'retry', 'active') and name = any(${queues})`
        : // Due within a minute: a job waiting its turn under Slack's rate limits comes back within seconds.
          sql`select count(*)::int as n from pgboss.job
            where state in ('created', 'retry', 'active') and start_after <= now() + interval '1 minute'`,
    );
    return row!.n;
  };
  // A job is marked done only after its handler returned, so the jobs it queued are counted by then.
  await eventually(async () => (await pending()) === 0, timeoutMs);
}

/**
 * Another Roster instance on `t`'s database, Slack stand-in and mail sink, with its own job workers, as a
 * second replica of one deployment would run. `env` adds or overrides settings; the caller stops it.
 */
export async function startSecondInstance(
  t: TestApp,
  opts: { env?: Record<string, string>; features?: Feature[]; slackPaceScale?: number } = {},
): Promise<Roster> {
  const config = loadConfig({
    SLACK_SIGNING_SECRET: SIGNING_SECRET,
    SLACK_BOT_TOKEN: BOT_TOKEN,
    SLACK_API_URL: t.standin.apiUrl,
    DATABASE_URL: t.db.url,
    SMTP_URL: t.smtp.url,
    MAIL_FROM: 'Roster <roster@acme.test>',
    PORT: '0',
    PUBLIC_URL: 'http://localhost',
    LOG_LEVEL: 'silent',
    ALLOW_PRIVATE_URLS: 'true',
    ...opts.env,
  });
  const roster = await startRoster({
    config,
    logger: createLogger('silent'),
    processBeforeResponse: true,
    host: '127.0.0.1',
    slackPaceScale: opts.slackPaceScale ?? 10,
    ...(opts.features ? { features: opts.features } : {}),
  });
  config.publicUrl = roster.url;
  return roster;
}

/**
 * Submits the invite form (opened by UMANAGER) with a bad address while another session holds the table of
 * Slack receipts, so the submission is still being worked, before its ack, when `meanwhile` starts; the
 * lock is let go 300 ms later. Returns Slack's answer to the submission, and what `meanwhile` gave.
 */
export async function submitWhileWorked<T>(
  t: TestApp,
  meanwhile: () => Promise<T>,
): Promise<{ answer: Awaited<ReturnType<SlackDriver['submitView']>>; during: T }> {
  const holder = new pg.Client({ connectionString: t.db.url });
  const watcher = new pg.Client({ connectionString: t.db.url });
  holder.on('error', () => {});
  watcher.on('error', () => {});
  await holder.connect();
  await watcher.connect();
  try {
    await t.slack.command('/invite', 'ana@example.com', { user: 'UMANAGER' });
    await t.standin.waitForCall('views.open');
    const view = t.standin.lastOpenedView();
    await holder.query('begin');
    await holder.query('lock table slack_receipt in share mode');
    const submitted = t.slack.submitView(
      view,
      { emails: 'ana@example.com, not-an-email' },
      { user: 'UMANAGER' },
    );
    await eventually(async () => {
      const { rows } = await watcher.query(
        `select 1 from pg_stat_activity where datname = current_database() and wait_event_type = 'Lock'`,
      );
      return rows.length > 0;
    });
    const during = meanwhile();
    await new Promise((r) => setTimeout(r, 300));
    await holder.query('commit');
    const answer = await submitted;
    return { answer, during: await during };
  } finally {
    await holder.query('rollback').catch(() => {});
    await holder.end().catch(() => {});
    await watcher.end().catch(() => {});
  }
}
