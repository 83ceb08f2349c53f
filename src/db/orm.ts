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
    signal?: AbortSignal;
  } & Partial<Options> = {},
) {
  const { migrate = false, onLockWait, onMigrating, signal, ...overrides } = opts;
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
          return orm.migrator.up().catch((err: unknown) => {
            throw new MigrationFailed(
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
