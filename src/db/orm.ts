import { setTimeout as sleep } from 'node:timers/promises';
import { Migrator } from '@mikro-orm/migrations';
import { defineConfig, MikroORM, type Options } from '@mikro-orm/postgresql';
import { CompiledQuery, type DatabaseConnection, sql } from 'kysely';
import { entities } from './entities.ts';

export const migrationsPath = new URL('../../migrations/', import.meta.url).pathname;

/** The ORM options for a database URL; tests and the CLI override what they need. */
export function ormOptions(clientUrl: string, overrides: Partial<Options> = {}): Options {
  return defineConfig({
    clientUrl,
    entities,
    extensions: [Migrator],
    migrations: {
      path: migrationsPath,
      glob: '!(*.d).ts',
      emit: 'ts',
      transactional: true,
      allOrNothing: true,
      snapshot: false,
      silent: true,
    },
    pool: { min: 0, max: 10 },
    // Postgres compiles a statement to machine code when its estimated cost is high, which costs 0.4 s
    // a statement: an import batch of a few thousand rows is estimated well above the threshold (a
    // set-returning function is guessed at a thousand rows), and paid that for each statement, more than
    // the work itself. Roster's statements are short, so compiling never pays off.
    onCreateConnection: async (connection) => {
      await (connection as DatabaseConnection).executeQuery(CompiledQuery.raw('set jit = off'));
    },
    forceUtcTimezone: true,
    debug: false,
    ...overrides,
  });
}

/**
 * Pending migrations that could not be applied. They run in one transaction, so none of them was: the
 * message says so, names them and what the database answered, and what to do.
 */
export class MigrationFailed extends Error {
  constructor(names: string[], cause: unknown) {
    const why = cause instanceof Error ? cause.message.split('\n')[0] : String(cause);
    super(
      `Applying ${names.length} database migration(s) failed (${names.join(', ')}): ${why}. None of them was applied, so the database is as it was before. Fix what the database says (see Upgrading in the README), or go back to the version that ran before, and start again.`,
      { cause },
    );
    this.name = 'MigrationFailed';
  }
}

/**
 * Opens the ORM; `migrate` applies pending migrations first (see {@link withMigrationLock}), telling
 * `onMigrating` which ones just before. A `signal` aborted before they begin (while waiting for another
 * instance's) applies none; once begun, they are applied to the end, never left half-way.
 */
export async function initORM(
  clientUrl: string,
  opts: {
    migrate?: boolean;
    onLockWait?: () => void;
    onMigrating?: (names: string[]) => void;
    /** Told when an attempt gave way to another session's lock on a table, before the next one. */
    onTableLocked?: (holders: string, retryInMs: number, waitMs: number) => void;
    tableLocks?: Partial<TableLockPatience>;
    signal?: AbortSignal;
  } & Partial<Options> = {},
) {
  const { migrate = false, onLockWait, onMigrating, onTableLocked, tableLocks, signal, ...overrides } = opts;
  const orm = await MikroORM.init(ormOptions(clientUrl, overrides));
  if (migrate) {
    try {
      await withMigrationLock(
        orm,
        async () => {
          signal?.throwIfAborted();
          const pending = await orm.migrator.getPending();
          signal?.throwIfAborted();
          if (pending.length) onMigrating?.(pending.map((m) => m.name));
          return migrateGivingWay(
            orm,
            { ...TABLE_LOCK_PATIENCE, ...tableLocks },
            onTableLocked,
            signal,
          ).catch((err: unknown) => {
            throw err instanceof MigrationFailed
              ? err
              : new MigrationFailed(
                  pending.map((m) => m.name),
                  err,
                );
          });
        },
        onLockWait,
      );
    } catch (err) {
      await orm.close(true);
      throw err;
    }
  }
  return orm;
}

/** How migrations give way to other sessions' locks on the tables they change (see {@link migrateGivingWay}). */
export interface TableLockPatience {
  /** How long one attempt waits for a table's lock before giving way. */
  waitMs: number;
  /** How long between attempts. */
  retryInMs: number;
  /** How long in all before the start fails. */
  giveUpAfterMs: number;
}

const TABLE_LOCK_PATIENCE: TableLockPatience = {
  // Queries on the table wait behind the migration as long as it waits: half a second, once per attempt.
  waitMs: 500,
  retryInMs: 5_000,
  giveUpAfterMs: 10 * 60_000,
};

/**
 * Applies the pending migrations in one transaction that waits at most `waitMs` for any table's lock.
 * Changing a table takes a lock that waits for every transaction using that table (a long report, a
 * `pg_dump` backup), and while it waits Postgres queues every other query on that table behind it: the
 * Roster instances still serving would stop answering. So an attempt that waits too long gives way (the
 * transaction is undone, nothing is applied), says which sessions hold the tables, and tries again,
 * until `giveUpAfterMs`. A stop between attempts leaves the database as it was.
 */
export async function migrateGivingWay(
  orm: MikroORM,
  patience: TableLockPatience = TABLE_LOCK_PATIENCE,
  onTableLocked?: (holders: string, retryInMs: number, waitMs: number) => void,
  signal?: AbortSignal,
) {
  const connection = orm.em.getConnection();
  const since = Date.now();
  for (;;) {
    try {
      return await connection.transactional(async (trx) => {
        await connection.execute(
          `set local lock_timeout = ${Math.max(1, Math.round(patience.waitMs))}`,
          [],
          'run',
          trx,
        );
        return orm.migrator.up({ transaction: trx });
      });
    } catch (err) {
      if (!isLockTimeout(err)) throw err;
      const holders = await longTransactions(orm, patience.waitMs);
      if (Date.now() - since + patience.retryInMs > patience.giveUpAfterMs) {
        const pending = (await orm.migrator.getPending()).map((m) => m.name);
        throw new MigrationFailed(
          pending,
          new Error(
            `a table they change stayed locked by other sessions for ${Math.round((Date.now() - since) / 1000)} s (${holders}); end those sessions or wait for them to finish`,
          ),
        );
      }
      onTableLocked?.(holders, patience.retryInMs, patience.waitMs);
      await sleep(patience.retryInMs, undefined, { signal });
    }
  }
}

const isLockTimeout = (err: unknown): boolean => {
  for (let e = err; e instanceof Error; e = e.cause) {
    if ((e as { code?: string }).code === '55P03') return true;
  }
  return false;
};

/** The other sessions of this database in a transaction older than `olderThanMs`: who, since when. */
async function longTransactions(orm: MikroORM, olderThanMs: number): Promise<string> {
  const rows = await orm.em
    .getConnection()
    .execute<{ pid: number; app: string; age: number; state: string }[]>(
      `select pid, coalesce(nullif(application_name, ''), 'no name') as app, state,
            extract(epoch from now() - xact_start)::int as age
       from pg_stat_activity
      where datname = current_database() and pid <> pg_backend_pid() and xact_start is not null
        and xact_start < now() - make_interval(secs => ?)
      order by xact_start limit 5`,
      [olderThanMs / 1000],
    );
  return rows.length
    ? rows.map((r) => `pid ${r.pid}, ${r.app}, ${r.state}, transaction open ${r.age} s`).join('; ')
    : 'no transaction open now';
}

/**
 * Runs `work` (applying or undoing migrations) while this session holds Roster's migration lock, a
 * Postgres advisory lock: instances started together (replicas of one deployment, `npm run migration:up`
 * beside a start) take turns, and each reads what is still pending only once it holds the lock, so a
 * migration runs once and the others find it applied. The lock belongs to one connection held for the
 * while, and Postgres frees it when that connection ends, even if the process dies half-way.
 */
export async function withMigrationLock<T>(orm: MikroORM, work: () => Promise<T>, onWait?: () => void) {
  return orm.em
    .getConnection()
    .getClient()
    .connection()
    .execute(async (db) => {
      const key = sql`hashtext(${MIGRATION_LOCK})`;
      const { rows } = await sql<{ got: boolean }>`select pg_try_advisory_lock(${key}) as got`.execute(db);
      if (!rows[0]?.got) {
        onWait?.();
        await sql`select pg_advisory_lock(${key})`.execute(db);
      }
      try {
        return await work();
      } finally {
        await sql`select pg_advisory_unlock(${key})`.execute(db);
      }
    });
}

/** Names Roster's advisory lock around migrations (hashed to the lock's number). */
const MIGRATION_LOCK = 'roster:migrations';

export type ORM = MikroORM;
