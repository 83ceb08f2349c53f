import { adminQuery } from './postgres.ts';

export default async function globalTeardown(): Promise<void> {
  const adminUrl = process.env.ROSTER_TEST_ADMIN_URL;
  const template = process.env.ROSTER_TEST_TEMPLATE;
  if (adminUrl && template) {
    await adminQuery(adminUrl, `drop database if exists "${template}" with (force)`).catch(() => {});
  }
  await (globalThis as { __rosterEmbedded?: { stop(): Promise<void> } }).__rosterEmbedded?.stop();
}
