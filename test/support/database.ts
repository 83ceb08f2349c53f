import { randomBytes } from 'node:crypto';
import { adminQuery, withDatabase } from './postgres.ts';

export type TestDatabase = { url: string; name: string; drop(): Promise<void> };

/** A fresh database for one test file, copied from the migrated template. */
export async function createTestDatabase(): Promise<TestDatabase> {
  const adminUrl = process.env.ROSTER_TEST_ADMIN_URL;
  const template = process.env.ROSTER_TEST_TEMPLATE;
  if (!adminUrl || !template)
    throw new Error('the test database template is missing: run the tests with npm test');
  const name = `roster_test_${randomBytes(6).toString('hex')}`;
  await adminQuery(adminUrl, `create database "${name}" template "${template}"`);
  return {
    url: withDatabase(adminUrl, name),
    name,
    drop: () => adminQuery(adminUrl, `drop database if exists "${name}" with (force)`).then(() => {}),
  };
}
