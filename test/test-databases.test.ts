import { spawn } from 'node:child_process';
import { resolve } from 'node:path';
import { adminQuery } from './support/postgres.ts';

const root = resolve(import.meta.dirname, '..');

describe('the test databases', () => {
  it('are all dropped at the end of a run, even those of a suite that failed before its cleanup', async () => {
    const jest = spawn(
      process.execPath,
      [
        '--experimental-vm-modules',
        'node_modules/jest/bin/jest.js',
        '--testMatch',
        '**/fixtures/suites/fails-before-cleanup.fixture.ts',
      ],
      { cwd: root, env: { ...process.env, ROSTER_TEST_ADMIN_URL: process.env.ROSTER_TEST_ADMIN_URL } },
    );
    let output = '';
    jest.stdout.on('data', (c) => (output += c));
    jest.stderr.on('data', (c) => (output += c));
    const code = await new Promise((ok) => jest.on('exit', ok));
    // The inner run failed, as it should, and its template was named after its process.
    expect(code).toBe(1);
    expect(output).toContain('this suite fails on purpose');
    const { rows } = await adminQuery(
      process.env.ROSTER_TEST_ADMIN_URL as string,
      `select datname from pg_database where datname like 'roster\\_test\\_${jest.pid}\\_%' or datname = 'roster_template_${jest.pid}'`,
    );
    expect(rows).toEqual([]);
  }, 90_000);
});
