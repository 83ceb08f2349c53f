import { readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ConfigError, EnvFileError, loadDatabaseConfig, loadEnvFile } from '../config.ts';
import { createLogger } from '../shared/logger.ts';
import { databaseProblem } from './check.ts';
import { type EmbeddedDatabase, startEmbeddedPostgres } from './embedded.ts';
import { migrationStamp, newMigrationStamp } from './migration-name.ts';
import { initORM, migrateGivingWay, migrationsPath, type ORM, withMigrationLock } from './orm.ts';
import { schemaChanges } from './schema-diff.ts';

// `npm run migration:create|up|down`: the migrations, run against the app's own database (DATABASE_URL,
// or the embedded PostgreSQL under DATA_DIR), configured exactly as `npm start` configures it.

const USAGE = `usage:
  npm run migration:create -- NAME   write migrations/MigrationYYYYMMDDHHMMSS_NAME.ts with what the entities need
  npm run migration:create -- NAME --blank   the same, empty
  npm run migration:up               apply the pending migrations
  npm run migration:down             undo the last applied migration`;

async function create(orm: ORM, args: string[]): Promise<string> {
  const name = args.find((a) => !a.startsWith('-'));
  if (!name || !/^[a-z][a-z0-9_]*$/.test(name)) {
    throw new Error(
      `Give the migration a name in snake_case, e.g. npm run migration:create -- add_team_notes\n${USAGE}`,
    );
  }
  const pending = await orm.migrator.getPending();
  if (pending.length > 0) {
    throw new Error(
      `This database lacks ${pending.length} migration(s) (${pending.map((m) => m.name).join(', ')}): run npm run migration:up first, so the new migration holds only what is new.`,
    );
  }
  const changes = args.includes('--blank') ? { up: [], down: [] } : await schemaChanges(orm);
  if (changes.up.length === 0 && !args.includes('--blank')) {
    return 'The database already matches the entities: no migration written (add --blank for an empty one).';
  }
  const now = new Date();
  const stamp = newMigrationStamp(await readdir(migrationsPath), now);
  const className = `Migration${stamp}_${name}`;
  // Template literals, as the existing migrations write their SQL.
  const literal = (line: string) => `\`${line.replace(/[`\\]/g, '\\$&').replace(/\$\{/g, '\\${')}\``;
  const sql = (lines: string[]) => lines.map((line) => `    this.addSql(${literal(line)});`).join('\n');
  const file = join(migrationsPath, `${className}.ts`);
  await writeFile(
    file,
    `import { Migration } from '@mikro-orm/migrations';

/** Say here what this migration changes and why. */
export class ${className} extends Migration {
  override async up(): Promise<void> {
${sql(changes.up)}
  }

  override async down(): Promise<void> {
${sql(changes.down)}
  }
}
`,
  );
  // Said, so a name that does not match the clock surprises nobody.
  const dated =
    stamp === migrationStamp(now)
      ? ''
      : ` It is dated just after the latest migration, since this machine's clock is behind it.`;
  return `Wrote ${file} (${changes.up.length} statement(s)); read it, then npm run migration:up.${dated}`;
}

const waiting = () => console.log('Another Roster is applying migrations to this database; waiting for it.');

async function run(orm: ORM, command: string | undefined, args: string[]): Promise<string> {
  switch (command) {
    case 'create':
      return create(orm, args);
    case 'up': {
      const done = await withMigrationLock(
        orm,
        () =>
          migrateGivingWay(orm, undefined, (holders, retryInMs) =>
            console.log(
              `A table the migrations change is locked by another session (${holders}); nothing was applied, trying again in ${retryInMs / 1000} s.`,
            ),
          ),
        waiting,
      );
      return done.length ? `Applied ${done.map((m) => m.name).join(', ')}` : 'No pending migrations.';
    }
    case 'down': {
      const done = await withMigrationLock(orm, () => orm.migrator.down(), waiting);
      return done.length ? `Undid ${done.map((m) => m.name).join(', ')}` : 'No migration to undo.';
    }
    default:
      throw new Error(USAGE);
  }
}

let exitCode = 0;
let embedded: EmbeddedDatabase | undefined;
let orm: ORM | undefined;
try {
  loadEnvFile();
  const config = loadDatabaseConfig();
  const logger = createLogger(config.logLevel === 'info' ? 'warn' : config.logLevel);
  let url = config.databaseUrl;
  if (!url) {
    embedded = await startEmbeddedPostgres(config.dataDir, logger);
    url = embedded.url;
  }
  console.log(`Database: ${embedded ? `the embedded one under ${config.dataDir}` : 'DATABASE_URL'}`);
  // As at start: one line naming DATABASE_URL, within seconds, rather than a wait without end.
  const problem = embedded ? undefined : await databaseProblem(url);
  if (problem) throw new Error(problem);
  orm = await initORM(url);
  const [command, ...args] = process.argv.slice(2);
  console.log(await run(orm, command, args));
} catch (err) {
  // The settings' own message says Roster cannot start; here it is the migrations that cannot run.
  if (err instanceof EnvFileError) {
    console.error(err.message);
  } else if (err instanceof ConfigError) {
    console.error(
      ['The migrations cannot run because of the settings:', ...err.problems.map((p) => `  - ${p}`)].join(
        '\n',
      ),
    );
  } else {
    console.error(err instanceof Error ? err.message : String(err));
  }
  exitCode = 1;
} finally {
  await orm?.close(true);
  await embedded?.stop();
}
process.exit(exitCode);
