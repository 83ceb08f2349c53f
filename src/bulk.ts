import { Worker } from 'node:worker_threads';
import type { Config } from './config.ts';
import { ERROR_FILE_JOB, FINISH_JOB, UNLOCK_ALL_JOB } from './features/csv-import/csv-import.jobs.ts';
import { CSV_JOBS } from './features/csv-import/import-types.ts';
import { DIRECTORY_JOBS } from './features/directory/index.ts';
import { INVITE_JOBS } from './features/invites/invitation.service.ts';
import { SCIM_JOBS } from './features/scim/scim.service.ts';
import type { Logger } from './shared/logger.ts';

/** The jobs that take long or come by the thousand: CSV imports, invitation deliveries, syncs. */
export const BULK_QUEUES: readonly string[] = [
  CSV_JOBS.preview,
  CSV_JOBS.run,
  CSV_JOBS.recheck,
  // What follows an import: its summary, and its error file (read, written and uploaded a page at a time).
  FINISH_JOB,
  ERROR_FILE_JOB,
  UNLOCK_ALL_JOB,
  INVITE_JOBS.deliver,
  INVITE_JOBS.deliverBatch,
  DIRECTORY_JOBS.sync,
  SCIM_JOBS.sync,
  SCIM_JOBS.reconcile,
];

export const isBulkQueue = (name: string) => BULK_QUEUES.includes(name);

/** What the bulk jobs thread is started with (copied into the thread, so plain data only). */
export type BulkThreadData = { config: Config; databaseUrl: string; slackPaceScale: number };

/** Messages between the threads. */
export type BulkMessage =
  | { type: 'ready' }
  | { type: 'stop' }
  | { type: 'stopped' }
  /**
   * Slack refuses the bot token (see TokenWatch): from the thread, its calls found it; to the thread, the
   * thread that answers Slack found it or was told by an event (`app_uninstalled`), so bulk work waits at once.
   */
  | { type: 'token_refused'; code: string };

export type BulkThread = {
  /** Whether the thread is working its jobs, and since when it is not. */
  state(): { running: boolean; since: Date };
  /** The thread now running, if any (for diagnostics). */
  current(): Worker | undefined;
  stop(): Promise<void>;
};

/** How long a stopping thread may take beyond its jobs' grace before it is ended. */
const STOP_MARGIN_MS = 3_000;
/** A thread that failed is started again after this long, doubled for each failure in a row, up to the most. */
const RESTART_MS = 5_000;
const MAX_RESTART_MS = 5 * 60_000;
/** A thread that ran this long before failing counts as a first failure again. */
const STEADY_MS = 60_000;

/**
 * Starts the thread that works the bulk jobs, with its own event loop, heap, database pool and Slack
 * client, so that reading and applying a large file or delivering thousands of invitations never holds
 * up the event loop that acknowledges Slack. Resolves once the thread works its queues; a thread that
 * fails later is logged and started again. A thread that cannot start at all rejects, with its error.
 */
export async function startBulkThread(opts: {
  config: Config;
  databaseUrl: string;
  slackPaceScale: number;
  logger: Logger;
  /** Slack refused the bot token to the thread's calls. */
  onTokenRefused?: (code: string) => void;
}): Promise<BulkThread> {
  const { logger } = opts;
  const data: BulkThreadData = {
    config: opts.config,
    databaseUrl: opts.databaseUrl,
    slackPaceScale: opts.slackPaceScale,
  };
  let worker: Worker | undefined;
  let running = false;
  let since = new Date();
  let stopping = false;
  let restart: NodeJS.Timeout | undefined;
  /** Restarts since the thread last ran for a while: each waits twice as long as the one before. */
  let failures = 0;

  const scheduleRestart = () => {
    if (stopping) return;
    const delay = Math.min(RESTART_MS * 2 ** failures, MAX_RESTART_MS);
    failures += 1;
    logger.error(`the bulk jobs thread is not running; starting it again in ${Math.round(delay / 1000)} s`);
    restart = setTimeout(() => {
      launch().catch((err) => {
        logger.error({ err }, 'the bulk jobs thread could not start');
        scheduleRestart();
      });
    }, delay);
    restart.unref();
  };

  const launch = () =>
    new Promise<void>((ready, failed) => {
      const w = new Worker(new URL('./bulk-thread.ts', import.meta.url), { workerData: data });
      worker = w;
      let started = 0;
      w.on('message', (m: BulkMessage) => {
        if (m.type === 'token_refused') opts.onTokenRefused?.(m.code);
        if (m.type !== 'ready') return;
        started = Date.now();
        running = true;
        since = new Date();
        ready();
      });
      w.on('error', (err) => {
        logger.error({ err }, 'the bulk jobs thread failed');
        if (!started) failed(err);
      });
      w.on('exit', (code) => {
        if (worker === w) worker = undefined;
        if (running) since = new Date();
        running = false;
        if (!started) {
          failed(new Error(`the bulk jobs thread exited with code ${code} while starting`));
          return;
        }
        if (stopping) return;
        // A thread that ran for a while failed by accident, not on every start: the next try comes soon.
        if (Date.now() - started > STEADY_MS) failures = 0;
        // Its jobs go back to the queue when their leases run out; the new thread picks them up.
        logger.error({ code }, 'the bulk jobs thread stopped');
        scheduleRestart();
      });
    });

  await launch();
  logger.debug({ queues: BULK_QUEUES }, 'bulk jobs are worked by their own thread');
  return {
    state: () => ({ running, since }),
    current: () => worker,
    async stop() {
      stopping = true;
      clearTimeout(restart);
      const w = worker;
      if (!w) return;
      const exited = new Promise<void>((done) => w.once('exit', () => done()));
      const deadline = (opts.config.stopGraceSeconds ?? 5) * 1000 + STOP_MARGIN_MS;
      const timer = setTimeout(() => {
        logger.warn('the bulk jobs thread did not stop in time; ending it');
        void w.terminate();
      }, deadline);
      w.postMessage({ type: 'stop' } satisfies BulkMessage);
      await exited;
      clearTimeout(timer);
    },
  };
}
