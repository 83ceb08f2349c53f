import { testDatabasePrefix } from './database.ts';
import { adminQuery } from './postgres.ts';

/** Drops the template and every database this run created, whether or not its suite cleaned up. */
export default async function globalTeardown(): Promise<void> {
  const adminUrl = process.env.ROSTER_TEST_ADMIN_URL;
  const template = process.env.ROSTER_TEST_TEMPLATE;
  if (adminUrl && template) {
    const prefix = testDatabasePrefix();
    const left = await adminQuery(
      adminUrl,
      `select datname from pg_database where starts_with(datname, '${prefix}') or datname = '${template}'`,
    ).catch(() => ({ rows: [] as { datname: string }[] }));
    for (const { datname } of left.rows) {
      await adminQuery(adminUrl, `drop database if exists "${datname}" with (force)`).catch(() => {});
    }
  }
  await (globalThis as { __rosterEmbedded?: { stop(): Promise<void> } }).__rosterEmbedded?.stop();
}
