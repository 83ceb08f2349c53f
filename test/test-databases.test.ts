import { spawn } from 'node:child_process';
import { resolve } from 'node:path';
import pg from 'pg';
import { dropLeftovers, holdRunMarker, runTag, tagRunDatabase } from './support/leftovers.ts';
import { adminQuery, withDatabase } from './support/postgres.ts';

const root = resolve(import.meta.dirname, '..');
const adminUrl = () => process.env.ROSTER_TEST_ADMIN_URL as string;

/** The databases whose names match the regular expression `pattern`. */
async function databases(pattern: string): Promise<string[]> {
  const { rows } = await adminQuery(
    adminUrl(),
    `select datname from pg_database where datname ~ '${pattern}'`,
  );
  return rows.map((r) => r.datname as string).sort();
}

/** The id of a process that has ended, as a run killed outright leaves in its databases' names. */
async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', '']);
  await new Promise((ok) => child.on('exit', ok));
  return child.pid as number;
}

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

  it('of a run stopped by Ctrl-C are dropped by it, and a later run drops those of runs killed outright', async () => {
    const dead = await deadPid();
    // A run still going (this one) and names that only look like Roster's are never touched.
    const alive = process.pid;
    const leftovers = [
      `roster_template_${dead}`,
      `roster_test_${dead}_0123456789ab`,
      `roster_test_${dead}_migrate`,
    ];
    const kept = [
      `roster_test_${alive}_0123456789ab`,
      `roster_test_${dead}`,
      `roster_test_0${dead}_0123456789ab`,
      `roster_template_${dead}_copy`,
      `myroster_template_${dead}`,
    ];
    // Made on this machine by the dead run, as a run tags what it makes: these go.
    for (const name of [...leftovers, ...kept]) {
      await adminQuery(adminUrl(), `drop database if exists "${name}"`);
      await adminQuery(adminUrl(), `create database "${name}"`);
      await tagRunDatabase(adminUrl(), name, dead);
    }
    try {
      // Its own process group, as a terminal's Ctrl-C reaches every process of the run.
      const jest = spawn(
        process.execPath,
        [
          '--experimental-vm-modules',
          'node_modules/jest/bin/jest.js',
          '--testMatch',
          '**/fixtures/suites/waits-for-interrupt.fixture.ts',
        ],
        { cwd: root, detached: true, env: { ...process.env, ROSTER_TEST_ADMIN_URL: adminUrl() } },
      );
      let output = '';
      jest.stdout.on('data', (c) => (output += c));
      jest.stderr.on('data', (c) => (output += c));
      const exited = new Promise<number | null>((ok) => jest.on('exit', (code) => ok(code)));
      const pid = jest.pid as number;
      const ofRun = `^roster_(template_${pid}|test_${pid}_.*)$`;
      const deadline = Date.now() + 60_000;
      while ((await databases(ofRun)).length < 2) {
        if (Date.now() > deadline) throw new Error(`the inner run never created its database:\n${output}`);
        await new Promise((r) => setTimeout(r, 200));
      }
      process.kill(-pid, 'SIGINT');
      expect(await exited).toBe(130);
      expect(await databases(ofRun)).toEqual([]);
      // Dropped when the inner run started, since their process is gone; the others are still there.
      expect(await databases(`^(${[...leftovers, ...kept].join('|')})$`)).toEqual([...kept].sort());
    } finally {
      for (const name of [...leftovers, ...kept]) {
        await adminQuery(adminUrl(), `drop database if exists "${name}"`);
      }
    }
  }, 120_000);

  it('are left alone, however dead their process looks, when made elsewhere, by an untagged run, or still in use', async () => {
    const dead = await deadPid();
    const name = (suffix: string) => `roster_test_${dead}_${suffix}`;
    const made = async (suffix: string, tag: string | null) => {
      await adminQuery(adminUrl(), `drop database if exists "${name(suffix)}"`);
      await adminQuery(adminUrl(), `create database "${name(suffix)}"`);
      if (tag) await adminQuery(adminUrl(), `comment on database "${name(suffix)}" is '${tag}'`);
    };
    await made('elsewhere', runTag(dead, 'another-machine'));
    await made('untagged', null);
    await made('marked', runTag(dead));
    await made('connected', runTag(dead));
    await made('gone', runTag(dead));
    // A run on another machine whose process id is this dead one keeps its marker session open.
    const marker = await holdRunMarker(adminUrl(), dead);
    // Someone working in one of them.
    const user = new pg.Client({ connectionString: withDatabase(adminUrl(), name('connected')) });
    await user.connect();
    try {
      // While the marker is open, nothing of that process id goes.
      const ofDead = (names: string[]) => names.filter((n) => n.startsWith(name(''))).sort();
      expect(ofDead(await dropLeftovers(adminUrl()))).toEqual([]);
      await marker.end();
      expect(ofDead(await dropLeftovers(adminUrl()))).toEqual([name('gone'), name('marked')].sort());
      expect(await databases(`^roster_test_${dead}_`)).toEqual(
        ['connected', 'elsewhere', 'untagged'].map(name).sort(),
      );
    } finally {
      await user.end();
      await marker.end().catch(() => {});
      for (const suffix of ['elsewhere', 'untagged', 'marked', 'connected', 'gone']) {
        await adminQuery(adminUrl(), `drop database if exists "${name(suffix)}" with (force)`);
      }
    }
  }, 60_000);
});
