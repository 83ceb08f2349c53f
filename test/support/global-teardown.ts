import { dropRun } from './leftovers.ts';

/** Drops the template and every database this run created, whether or not its suite cleaned up. */
export default async function globalTeardown(): Promise<void> {
  const adminUrl = process.env.ROSTER_TEST_ADMIN_URL;
  if (adminUrl && process.env.ROSTER_TEST_TEMPLATE) await dropRun(adminUrl, process.pid);
  const run = globalThis as { __rosterRun?: { end(): Promise<void> } };
  await run.__rosterRun?.end();
  await (globalThis as { __rosterEmbedded?: { stop(): Promise<void> } }).__rosterEmbedded?.stop();
}
