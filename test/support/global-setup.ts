import { chmod, mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startEmbeddedPostgres } from '../../src/db/embedded.ts';
import { initORM } from '../../src/db/orm.ts';
import { JobQueue } from '../../src/shared/jobs.ts';
import { createLogger } from '../../src/shared/logger.ts';
import { dropLeftovers, dropRun, holdRunMarker, tagRunDatabase } from './leftovers.ts';
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
  // Runs killed outright leave their databases behind; those whose process is gone are dropped now.
  await dropLeftovers(adminUrl);
  await endOnSignals(adminUrl);
  const template = `roster_template_${process.pid}`;
  await adminQuery(adminUrl, `drop database if exists "${template}" with (force)`);
  await adminQuery(adminUrl, `create database "${template}"`);
  await tagRunDatabase(adminUrl, template, process.pid);
  const templateUrl = withDatabase(adminUrl, template);
  const orm = await initORM(templateUrl, { migrate: true });
  await orm.close(true);
  const jobs = await JobQueue.start(templateUrl, logger);
  await jobs.stop();
  process.env.ROSTER_TEST_ADMIN_URL = adminUrl;
  process.env.ROSTER_TEST_TEMPLATE = template;
}

/** How long an interrupted run may spend dropping its databases before it exits anyway. */
const INTERRUPT_CLEANUP_MS = 10_000;

/**
 * Ctrl-C (SIGINT) or SIGTERM ends the run at once, with no global teardown: the run drops its own databases
 * first, then exits as interrupted (130, or 143). A second signal exits without waiting.
 */
async function endOnSignals(adminUrl: string): Promise<void> {
  const pid = process.pid;
  const marker = await holdRunMarker(adminUrl, pid);
  let interrupted = false;
  const onSignal = (signal: NodeJS.Signals) => {
    const code = signal === 'SIGINT' ? 130 : 143;
    if (interrupted) process.exit(code);
    interrupted = true;
    process.stderr.write(`\n${signal}: dropping this run's test databases before stopping…\n`);
    const embedded = (globalThis as { __rosterEmbedded?: { stop(): Promise<void> } }).__rosterEmbedded;
    const cleanup = (async () => {
      await dropRun(adminUrl, pid);
      await marker.end().catch(() => {});
      await embedded?.stop();
    })().catch(() => {});
    const timeout = new Promise((done) => setTimeout(done, INTERRUPT_CLEANUP_MS).unref());
    void Promise.race([cleanup, timeout]).then(() => process.exit(code));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  (globalThis as { __rosterRun?: { end(): Promise<void> } }).__rosterRun = {
    async end() {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      await marker.end().catch(() => {});
    },
  };
}
