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
};

export type SendOptions = {
  /** Enqueue inside this EntityManager's open transaction, so the job exists only if the rows do. */
  em?: EntityManager;
  singletonKey?: string;
  startAfter?: number | Date;
};

type Handler<T> = (data: T, meta: { id: string; retryCount: number }) => Promise<void>;

/** Background jobs on a Postgres-backed queue (pg-boss) in the app's own database. */
export class JobQueue {
  readonly boss: PgBoss;
  private readonly logger: Logger;
  private readonly defined = new Set<string>();

  private constructor(boss: PgBoss, logger: Logger) {
    this.boss = boss;
    this.logger = logger;
  }

  static async start(connectionString: string, logger: Logger): Promise<JobQueue> {
    const boss = new PgBoss({
      connectionString,
      useListenNotify: true,
      max: 5,
      application_name: 'roster-jobs',
    });
    boss.on('error', (err) => logger.error({ err }, 'job queue error'));
    await boss.start();
    return new JobQueue(boss, logger);
  }

  /** Registers a queue and its worker. A failing handler is retried per `opts`. */
  async define<T extends object>(name: string, handler: Handler<T>, opts: JobOptions = {}): Promise<void> {
    const { localConcurrency = 2, ...queueOptions } = opts;
    await this.boss.createQueue(name, {
      retryLimit: 5,
      retryDelay: 2,
      retryBackoff: true,
      ...queueOptions,
      notify: true,
    });
    this.defined.add(name);
    await this.boss.work<T>(name, { localConcurrency, batchSize: 1 }, async ([job]) => {
      if (!job) return;
      const log = this.logger.child({ job: name, jobId: job.id });
      try {
        await handler(job.data, { id: job.id, retryCount: (job as { retryCount?: number }).retryCount ?? 0 });
      } catch (err) {
        log.warn({ err }, 'job failed; it will be retried if attempts remain');
        throw err;
      }
    });
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

  async stop(): Promise<void> {
    await this.boss.stop({ graceful: true, timeout: 10_000 });
  }
}
