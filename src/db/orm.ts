import { Migrator } from '@mikro-orm/migrations';
import { defineConfig, MikroORM, type Options } from '@mikro-orm/postgresql';
import { CompiledQuery, type DatabaseConnection } from 'kysely';
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

/** Opens the ORM; `migrate` applies pending migrations first. */
export async function initORM(clientUrl: string, opts: { migrate?: boolean } & Partial<Options> = {}) {
  const { migrate = false, ...overrides } = opts;
  const orm = await MikroORM.init(ormOptions(clientUrl, overrides));
  if (migrate) await orm.migrator.up();
  return orm;
}

export type ORM = MikroORM;
