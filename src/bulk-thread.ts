/**
 * The bulk jobs thread (see startBulkThread in bulk.ts): Roster's services on a database pool of their
 * own, working only the bulk queues, until the main thread asks it to stop.
 */
import { readlinkSync } from 'node:fs';
import { setPriority } from 'node:os';
import { join } from 'node:path';
import { parentPort, workerData } from 'node:worker_threads';
import { composeRoster } from './app.ts';
import { type BulkMessage, type BulkThreadData, isBulkQueue } from './bulk.ts';
import { initORM } from './db/orm.ts';
import { features } from './features/index.ts';
import { JobQueue } from './shared/jobs.ts';
import { createLogger } from './shared/logger.ts';
import { createMailer } from './shared/mailer.ts';
import { logUnhandledRejections } from './shared/process-errors.ts';
import { TokenWatch } from './slack/token-watch.ts';

/** The bulk jobs thread's nice value: 10 lets a busy thread that answers Slack run first. */
const BULK_NICE = 10;

const { config, databaseUrl, slackPaceScale } = workerData as BulkThreadData;
const port = parentPort;
if (!port) throw new Error('bulk-thread.ts runs as the bulk jobs thread, started by startBulkThread');

const logger = createLogger(config.logLevel).child({ thread: 'bulk' });
logUnhandledRejections(logger);
lowerPriority();
const stops: (() => Promise<void>)[] = [];
const stopAll = async () => {
  for (const stop of stops.splice(0).reverse()) {
    await stop().catch((err) => logger.warn({ err }, 'error while stopping the bulk jobs thread'));
  }
};

/** Whether Slack takes the bot token, as this thread's calls (or the main thread) found. */
let tokenWatch: TokenWatch | undefined;

try {
  // The main thread has applied the migrations already.
  const orm = await initORM(databaseUrl, { migrate: false });
  stops.push(() => orm.close(true));
  const mailer = createMailer({
    smtpUrl: config.smtpUrl,
    from: config.mailFrom,
    outboxDir: join(config.dataDir, 'outbox'),
    logger,
  });
  stops.push(async () => mailer.close());
  const jobs = await JobQueue.start(databaseUrl, logger, { works: isBulkQueue });
  stops.push(() => jobs.stop((config.stopGraceSeconds ?? 5) * 1000));
  // A bot token Slack refuses is said by the thread that answers Slack, in its log and on /readyz.
  const watch = new TokenWatch(config, logger, {
    onRefused: (code) => port.postMessage({ type: 'token_refused', code } satisfies BulkMessage),
  });
  tokenWatch = watch;
  const { deps, slack } = await composeRoster({
    config,
    logger,
    orm,
    jobs,
    mailer,
    slackPaceScale,
    tokenWatch: watch,
  });
  stops.push(async () => {
    slack.close();
    watch.stop();
  });
  // Every feature's queues are defined here (a bulk job may queue any job), but only bulk ones worked.
  for (const feature of features) {
    const stop = await feature.jobs?.(deps);
    if (stop) stops.push(stop);
  }
} catch (err) {
  await stopAll();
  throw err;
}

port.on('message', (m: BulkMessage) => {
  if (m.type === 'token_refused') tokenWatch?.noteRefused(m.code);
  if (m.type !== 'stop') return;
  void stopAll().then(() => {
    port.postMessage({ type: 'stopped' } satisfies BulkMessage);
    port.close();
  });
});
port.postMessage({ type: 'ready' } satisfies BulkMessage);

/**
 * Bulk work yields the CPU to the thread that answers Slack: this thread runs at a lower priority (a
 * higher nice value, as Linux sets it per thread). Elsewhere, or where it cannot be set, it runs as is.
 */
function lowerPriority(): void {
  try {
    const tid = Number(readlinkSync('/proc/thread-self').split('/').pop());
    if (Number.isInteger(tid) && tid > 0) setPriority(tid, BULK_NICE);
  } catch (err) {
    logger.debug(
      { err: { message: (err as Error).message } },
      'the bulk jobs thread runs at normal priority',
    );
  }
}
