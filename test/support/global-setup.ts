import { chmod, mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startEmbeddedPostgres } from '../../src/db/embedded.ts';
import { initORM } from '../../src/db/orm.ts';
import { JobQueue } from '../../src/shared/jobs.ts';
import { createLogger } from '../../src/shared/logger.ts';
import { adminQuery, answers, DEFAULT_ADMIN_URL, withDatabase } from './postgres.ts';

/**
 * Finds a PostgreSQL for the tests (ROSTER_TEST_ADMIN_URL, the machine's server on 127.0.0.1:5432,
 * or an embedded one) and builds a template database with every migration and the job queue's schema,
 * so each test file can copy a fresh database from it in milliseconds.
 */
export default async function globalSetup(): Promise<void> {
  const logger = createLogger('warn');
  let adminUrl = process.env.ROSTER_TEST_ADMIN_URL ?? DEFAULT_ADMIN_URL;
  if (!(await answers(adminUrl))) {
    if (process.env.ROSTER_TEST_ADMIN_URL) {
      throw new Error(`ROSTER_TEST_ADMIN_URL does not answer: ${process.env.ROSTER_TEST_ADMIN_URL}`);
    }
    const dir = await mkdtemp(join(tmpdir(), 'roster-test-pg-'));
    // As root, PostgreSQL runs as the postgres user, which must be able to enter the directory.
    await chmod(dir, 0o755);
    const embedded = await startEmbeddedPostgres(dir, logger);
    (globalThis as { __rosterEmbedded?: { stop(): Promise<void> } }).__rosterEmbedded = embedded;
    adminUrl = withDatabase(embedded.url, 'postgres');
  }
  const template = `roster_template_${process.pid}`;
  await adminQuery(adminUrl, `drop database if exists "${template}" with (force)`);
  await adminQuery(adminUrl, `create database "${template}"`);
  const templateUrl = withDatabase(adminUrl, template);
  const orm = await initORM(templateUrl, { migrate: true });
  await orm.close(true);
  const jobs = await JobQueue.start(templateUrl, logger);
  await jobs.stop();
  process.env.ROSTER_TEST_ADMIN_URL = adminUrl;
  process.env.ROSTER_TEST_TEMPLATE = template;
}
