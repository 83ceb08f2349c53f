import { randomBytes } from 'node:crypto';
import { tagRunDatabase } from './leftovers.ts';
import { adminQuery, withDatabase } from './postgres.ts';

export type TestDatabase = { url: string; name: string; drop(): Promise<void> };

/**
 * Every database of this test run starts with this prefix (the run's template name), so the global teardown
 * can drop all of them, even those of a suite that failed before its own cleanup ran.
 */
export function testDatabasePrefix(): string {
  const template = process.env.ROSTER_TEST_TEMPLATE;
  if (!template) throw new Error('the test database template is missing: run the tests with npm test');
  return `roster_test_${template.replace(/^roster_template_/, '')}_`;
}

/** A fresh database for one test file, copied from the migrated template. */
export async function createTestDatabase(): Promise<TestDatabase> {
  const adminUrl = process.env.ROSTER_TEST_ADMIN_URL;
  const template = process.env.ROSTER_TEST_TEMPLATE;
  if (!adminUrl || !template)
    throw new Error('the test database template is missing: run the tests with npm test');
  const name = `${testDatabasePrefix()}${randomBytes(6).toString('hex')}`;
  await adminQuery(adminUrl, `create database "${name}" template "${template}"`);
  await tagRunDatabase(adminUrl, name, Number(template.replace(/^roster_template_/, '')));
  return {
    url: withDatabase(adminUrl, name),
    name,
    drop: () => adminQuery(adminUrl, `drop database if exists "${name}" with (force)`).then(() => {}),
  };
}
