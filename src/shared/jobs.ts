import type { EntityManager } from '@mikro-orm/postgresql';
import { CompiledQuery, type Transaction } from 'kysely';
import { PgBoss } from 'pg-boss';
import type { Logger } from './logger.ts';

export type JobOptions = {
  retryLimit?: number;
  retryDelay?: number;
  retryBackoff?: boolean;
  retryDelayMax?: number;
  expireInSeconds?: number;
  localConcurrency?: number;
  /**
   * pg-boss's queue policy; `stately` keeps at most one job queued and one running per singletonKey,
   * `exclusive` one job queued or running per singletonKey (a second send returns null).
   */
  policy?: 'standard' | 'short' | 'singleton' | 'stately' | 'exclusive';
};

export type SendOptions = {
  /** Enqueue inside this EntityManager's open transaction, so the job exists only if the rows do. */
  em?: EntityManager;
  singletonKey?: string;
  startAfter?: number | Date;
  /**
   * The job's id (a uuid): a second send with the same id queues nothing and returns null, however long
   * after, until the first job is deleted (days after it ends). For "once per X" work whatever its timing.
   */
  id?: string;
};

/** Thrown by a job that ends early because Roster is stopping: the queue runs it again after the next start. */
export class HandedBack extends Error {
  constructor() {
    super('Roster is stopping: the job runs again after the next start');
    this.name = 'HandedBack';
  }
}

/**
 * Thrown by a job that cannot do its work yet (Slack asked Roster to slow down): the job is queued again to
 * start after `retryInMs`, without spending one of its retries or holding a worker meanwhile.
 */
export class TryLater extends Error {
  readonly retryInMs: number;
  /**
   * Why the job waits, the same for every job held back by the same cause (no job's own details): the
   * log counts the jobs of a queue that wait for each reason (see {@link JobQueue}). The message by default.
   */
  readonly reason: string;
  constructor(retryInMs: number, message: string, reason?: string) {
    super(message);
    this.name = 'TryLater';
    this.retryInMs = retryInMs;
    this.reason = reason ?? message;
  }
}

/** How often the log says how many jobs of a queue were queued again to wait (see TryLater), at most. */
export const WAIT_LOG_MS = 60_000;

/** How many reasons for waiting a queue's line in the log names; the rest are counted. */
const MAX_REASONS = 5;

/** The jobs of one queue queued again to wait since its last line in the log. */
type Waits = { reasons: Map<string, number>; retryInSeconds: number; timer: NodeJS.Timeout };

/** Carried in the data of a job queued again to wait: the attempts it had used, and when it was first queued. */
const WAITED = '_waited';
type Waited = { spent: number; since: string; due?: string };

/** A job's own data, and what it carries from before it waited; data that is not an object (a schedule's) as is. */
function unwrapWaited<T>(raw: unknown): { data: T; waited?: Waited } {
  if (!raw || typeof raw !== 'object' || !(WAITED in raw)) return { data: raw as T };
  const { [WAITED]: waited, ...data } = raw as Record<string, unknown>;
  return { data: data as T, waited: waited as Waited };
}

/**
 * A queue's retry and expiry options when its definition leaves them out. Every one is set explicitly on
 * the queue, so that a definition that drops an option also takes it off an existing queue.
 */
const QUEUE_DEFAULTS = {
  retryLimit: 5,
  retryDelay: 2,
  retryBackoff: true,
  retryDelayMax: null,
  // pg-boss's own default.
  expireInSeconds: 15 * 60,
} as const;

type QueueOptions = {
  retryLimit: number;
  retryDelay: number;
  retryBackoff: boolean;
  retryDelayMax: number | null;
  expireInSeconds: number;
  notify: boolean;
};

type Handler<T> = (
  data: T,
  meta: {
    id: string;
    retryCount: number;
    createdOn: Date;
    /**
     * When the job was first due: its start time when it was queued to start later, else when it was
     * queued. Kept by a copy queued again to wait (TryLater); a retry after a failure counts from its retry.
     */
    dueOn: Date;
    /**
     * Aborted as soon as Roster begins to stop (not when a job merely outlives its expiry): long work ends
     * at its next step, and the job is handed back to the queue.
     */
    signal: AbortSignal;
  },
) => Promise<void>;

/**
 * Which queues this process works: every queue is defined (so any job can be sent from here), but only
 * those `works` accepts get a worker. Roster's bulk jobs are worked by their own thread this way.
 */
export type WorkFilter = (name: string) => boolean;

/** Background jobs on a Postgres-backed queue (pg-boss) in the app's own database. */
export class JobQueue {
  readonly boss: PgBoss;
  private readonly logger: Logger;
  private readonly defined = new Set<string>();
  private readonly works: WorkFilter;
  private readonly waitLogMs: number;
  private readonly waits = new Map<string, Waits>();
  stopping = false;
  /** Aborted when the queue begins to stop: the signal every running job is given. */
  private readonly stopped = new AbortController();

  private constructor(boss: PgBoss, logger: Logger, works: WorkFilter, waitLogMs: number) {
    this.boss = boss;
    this.logger = logger;
    this.works = works;
    this.waitLogMs = waitLogMs;
  }

  /** `waitLogMs`: how often the log counts a queue's waiting jobs, at most ({@link WAIT_LOG_MS}). */
  static async start(
    connectionString: string,
    logger: Logger,
    opts: { works?: WorkFilter; waitLogMs?: number } = {},
  ): Promise<JobQueue> {
    const boss = new PgBoss({
      connectionString,
      useListenNotify: true,
      max: 5,
      application_name: 'roster-jobs',
    });
    const queue = new JobQueue(boss, logger, opts.works ?? (() => true), opts.waitLogMs ?? WAIT_LOG_MS);
    let shutdownReported = false;
    boss.on('error', (err: Error & { code?: string }) => {
      // 57P01: the server ended the connection because it is shutting down, or because the queue
      // itself is stopping (it ends its own LISTEN connection). Not a fault of Roster's.
      if (err.code === '57P01') {
        if (!queue.stopping && !shutdownReported) logger.warn('the database is shutting down');
        shutdownReported = true;
        return;
      }
      logger.error({ err: { message: err.message, code: err.code, stack: err.stack } }, 'job queue error');
    });
    await boss.start();
    return queue;
  }

  /**
   * Registers a queue and its worker. A failing handler is retried per `opts`; a queue an earlier version
   * created is brought to these options (see {@link align}).
   */
  async define<T extends object>(name: string, handler: Handler<T>, opts: JobOptions = {}): Promise<void> {
    const { localConcurrency = 2, policy, ...given } = opts;
    const wanted: QueueOptions = { ...QUEUE_DEFAULTS, ...given, notify: true };
    const { retryDelayMax, ...created } = wanted;
    await this.boss.createQueue(name, {
      ...created,
      ...(retryDelayMax === null ? {} : { retryDelayMax }),
      ...(policy ? { policy } : {}),
    });
    await this.align(name, wanted, policy);
    this.defined.add(name);
    if (!this.works(name)) return;
    // NOTIFY wakes workers for new jobs at once; retries and delayed jobs are found by polling, which
    // would otherwise wait 30 s between looks.
    await this.boss.work<T>(
      name,
      // Metadata for the singleton key, which a job rescheduled for Slack's pace keeps (see below).
      { localConcurrency, batchSize: 1, notifyPollingIntervalSeconds: 2, includeMetadata: true },
      async ([job]) => {
        if (!job) return;
        const log = this.logger.child({ job: name, jobId: job.id });
        const { waited, data } = unwrapWaited<T>(job.data);
        // The attempts a job had used before it was queued again to wait count on: a job that meets Slack's
        // pace on every attempt still comes to its last one, and its handler gives up and says so.
        const retryCount = ((job as { retryCount?: number }).retryCount ?? 0) + (waited?.spent ?? 0);
        const createdOn = waited
          ? new Date(waited.since)
          : ((job as { createdOn?: Date }).createdOn ?? new Date());
        const startAfter = (job as { startAfter?: Date }).startAfter;
        const dueOn = waited
          ? new Date(waited.due ?? waited.since)
          : new Date(Math.max(createdOn.getTime(), startAfter ? new Date(startAfter).getTime() : 0));
        try {
          await handler(data, { id: job.id, retryCount, createdOn, dueOn, signal: this.stopped.signal });
        } catch (err) {
          if (err instanceof TryLater) {
            // A new job, not a retry: waiting for Slack's pace is not a failure and must not use up attempts,
            // nor give back those used already (they travel with it, and its own limit is what is left).
            const seconds = Math.max(1, Math.ceil(err.retryInMs / 1000));
            const key = (job as { singletonKey?: string | null }).singletonKey;
            const carried: Waited = {
              spent: retryCount,
              since: createdOn.toISOString(),
              due: dueOn.toISOString(),
            };
            // With its singleton key: a keyless copy would escape the one-per-key limit of its queue, and
            // in a stately queue collide with other keyless copies and be dropped.
            await this.boss.send(name, { ...data, [WAITED]: carried } as object, {
              startAfter: seconds,
              retryLimit: Math.max(0, wanted.retryLimit - retryCount),
              ...(key ? { singletonKey: key } : {}),
            });
            this.noteWait(name, err.reason, seconds);
            return;
          }
          if (this.stopping || err instanceof HandedBack) {
            // Its connections were closed under it, or it ended at its next step: not a fault, and no stack.
            log.info('job handed back by the stop; it runs again after the next start');
          } else {
            log.warn({ err }, 'job failed; it will be retried if attempts remain');
          }
          throw err;
        }
      },
    );
  }

  /**
   * Logs that a job of `queue` was queued again to wait: the first at once, then those that follow in one
   * line per queue every {@link waitLogMs} with how many waited and why. Thousands of deliveries waiting for
   * Slack (a refused bot token, its pace) are each queued again every minute or so; a line for each would
   * bury the log.
   */
  private noteWait(queue: string, reason: string, retryInSeconds: number): void {
    const waits = this.waits.get(queue);
    if (waits) {
      waits.reasons.set(reason, (waits.reasons.get(reason) ?? 0) + 1);
      waits.retryInSeconds = Math.max(waits.retryInSeconds, retryInSeconds);
      return;
    }
    this.logger.info({ queue, waiting: 1, retryInSeconds }, `1 job of ${queue} waits: ${reason}`);
    const timer = setInterval(() => this.flushWaits(queue), this.waitLogMs);
    timer.unref();
    this.waits.set(queue, { reasons: new Map(), retryInSeconds: 0, timer });
  }

  /** Says how many jobs of `queue` waited since its last line; ends its lines when none did. */
  private flushWaits(queue: string): void {
    const waits = this.waits.get(queue);
    if (!waits) return;
    const waiting = [...waits.reasons.values()].reduce((a, b) => a + b, 0);
    if (!waiting) {
      clearInterval(waits.timer);
      this.waits.delete(queue);
      return;
    }
    const seconds = Math.round(this.waitLogMs / 1000);
    // The most frequent reasons, a few at most: the line stays one line whatever waits.
    const ranked = [...waits.reasons].sort((a, b) => b[1] - a[1]);
    const why = ranked
      .slice(0, MAX_REASONS)
      .map(([reason, n]) => (ranked.length > 1 ? `${reason} (${n})` : reason));
    if (ranked.length > MAX_REASONS) why.push(`${ranked.length - MAX_REASONS} other reasons`);
    this.logger.info(
      {
        queue,
        waiting,
        reasons: Object.fromEntries(ranked.slice(0, MAX_REASONS)),
        retryInSeconds: waits.retryInSeconds,
      },
      `${waiting} ${waiting === 1 ? 'job' : 'jobs'} of ${queue} queued again to wait in the last ${seconds} s: ${why.join('; ')}`,
    );
    waits.reasons = new Map();
    waits.retryInSeconds = 0;
  }

  /**
   * pg-boss creates a queue once and keeps the options it was created with, so a retry policy changed in
   * the code would never reach a database an earlier version made the queue in. The options that differ are
   * set again: one UPDATE of the queue's row, which instances of one version starting at once may each run;
   * they write the same values, so their order does not matter, and once aligned nothing is written. (An
   * older version started later puts its own options back until it is replaced.) A policy cannot change
   * after creation: that is only logged.
   */
  private async align(name: string, wanted: QueueOptions, policy: JobOptions['policy']): Promise<void> {
    const queue = await this.boss.getQueue(name);
    if (!queue) return;
    const wantedPolicy = policy ?? 'standard';
    if (queue.policy !== wantedPolicy) {
      this.logger.warn(
        { queue: name, policy: queue.policy, wanted: wantedPolicy },
        'the job queue keeps the policy it was created with',
      );
    }
    const stale = (Object.keys(wanted) as (keyof QueueOptions)[]).filter(
      (key) => (queue[key] ?? null) !== wanted[key],
    );
    if (!stale.length) return;
    // All of them, not only those that differ: pg-boss checks them together (a retryDelayMax needs
    // retryBackoff in the same call).
    await this.boss.updateQueue(name, wanted);
    const changed = (from: object) =>
      Object.fromEntries(stale.map((key) => [key, (from as QueueOptions)[key] ?? null]));
    this.logger.info(
      { queue: name, was: changed(queue), now: changed(wanted) },
      'job queue options updated to this version',
    );
  }

  /** Whether this process works the jobs of this queue (see WorkFilter). */
  worksOn(name: string): boolean {
    return this.defined.has(name) && this.works(name);
  }

  /** Whether a job of this name is defined in this process (a feature left out defines none). */
  has(name: string): boolean {
    return this.defined.has(name);
  }

  async send<T extends object>(name: string, data: T, opts: SendOptions = {}): Promise<string | null> {
    if (!this.defined.has(name)) throw new Error(`No job named ${name} is defined`);
    const { em, ...rest } = opts;
    const trx = em?.getTransactionContext<Transaction<unknown>>();
    const db = trx
      ? {
          async executeSql(text: string, values: unknown[] = []) {
            const res = await trx.executeQuery(CompiledQuery.raw(text, values));
            return { rows: res.rows as unknown[] };
          },
        }
      : undefined;
    return this.boss.send(name, data, { ...rest, ...(db ? { db } : {}) });
  }

  /** Sends a job unless one of this name is already queued (not yet started): for "do it soon" requests. */
  async sendUnlessQueued<T extends object>(name: string, data: T): Promise<string | null> {
    const queued = await this.boss.findJobs(name, { queued: true, limit: 1 });
    return queued.length ? null : this.send(name, data);
  }

  /**
   * Resolves once none of these jobs is waiting or running (done, or failed once and waiting for its retry),
   * or after `timeoutMs`; true when none was left.
   */
  async settled(name: string, ids: string[], timeoutMs: number): Promise<boolean> {
    const until = Date.now() + timeoutMs;
    for (;;) {
      const jobs = await Promise.all(ids.map((id) => this.boss.findJobs(name, { id, limit: 1 })));
      if (jobs.every(([job]) => !job || (job.state !== 'created' && job.state !== 'active'))) return true;
      if (Date.now() > until) return false;
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  /** Lets running jobs finish for up to `graceMs`; those still running are then failed, to be retried later. */
  async stop(graceMs = 5_000): Promise<void> {
    this.stopping = true;
    this.stopped.abort();
    await this.boss.stop({ graceful: graceMs > 0, timeout: Math.max(graceMs, 1000) });
    for (const [queue, waits] of this.waits) {
      this.flushWaits(queue);
      clearInterval(waits.timer);
    }
    this.waits.clear();
  }
}
