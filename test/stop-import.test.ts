import { type ChildProcess, spawn } from 'node:child_process';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import pg from 'pg';
import { BATCH_SIZE } from '../src/features/csv-import/csv-import.service.ts';
import { BATCH_LOCK } from '../src/features/csv-import/import-run.ts';
import { DEFAULT_MEMBERS, eventually } from './support/app.ts';
import { SlackDriver } from './support/slack-driver.ts';
import { type SlackStandin, startSlackStandin } from './support/slack-standin.ts';
import { findButton } from './support/views.ts';

// An operator stops Roster (SIGTERM to `npm start`'s process group) in the middle of a 10,000-row CSV
// import, and starts it again: the import finishes with every row once.

const root = resolve(import.meta.dirname, '..');
const BOT_TOKEN = 'xoxb-import-stop';
const SECRET = 'import-stop-secret';
const ROWS = 10_000;

let standin: SlackStandin;
let dataDir: string;

beforeAll(async () => {
  standin = await startSlackStandin({ members: DEFAULT_MEMBERS, teamId: 'T0001', botToken: BOT_TOKEN });
  dataDir = await mkdtemp(join(tmpdir(), 'roster-stop-import-'));
  await chmod(dataDir, 0o755);
});
afterAll(async () => {
  await standin.close();
  await rm(dataDir, { recursive: true, force: true });
});

type Running = {
  child: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
  port: number;
  pgPort: number;
};

async function start(): Promise<Running> {
  const child = spawn('npm', ['start', '--silent'], {
    cwd: root,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      PATH: `${join(root, 'node_modules/.bin')}:${process.env.PATH}`,
      HOME: process.env.HOME,
      SLACK_SIGNING_SECRET: SECRET,
      SLACK_BOT_TOKEN: BOT_TOKEN,
      SLACK_API_URL: `${standin.baseUrl}/api/`,
      DATA_DIR: dataDir,
      PORT: '0',
      PUBLIC_URL: 'http://localhost',
      LOG_LEVEL: 'info',
      // Running jobs are handed back at once, so the import is stopped in its middle.
      STOP_GRACE_SECONDS: '0',
    },
  });
  let output = '';
  child.stdout?.on('data', (c) => (output += c));
  child.stderr?.on('data', (c) => (output += c));
  const exited = new Promise<number | null>((ok) => child.on('exit', (code) => ok(code)));
  const port = await eventually(() => output.match(/Roster is listening on port (\d+)/)?.[1], 60_000).catch(
    () => {
      child.kill('SIGKILL');
      throw new Error(`Roster did not start:\n${output}`);
    },
  );
  const pgPort = output.match(/"port":(\d+),"databaseDir".*embedded PostgreSQL started/)?.[1];
  return { child, output: () => output, exited, port: Number(port), pgPort: Number(pgPort) };
}

/** A session on Roster's database kept open across statements (a lock it takes is held until it ends). */
async function session(pgPort: number): Promise<pg.Client> {
  const client = new pg.Client({
    host: '127.0.0.1',
    port: pgPort,
    user: 'roster',
    password: 'roster',
    database: 'roster',
  });
  // The database stops with Roster, cutting this session.
  client.on('error', () => {});
  await client.connect();
  return client;
}

async function query(pgPort: number, sql: string): Promise<Record<string, any>[]> {
  const client = await session(pgPort);
  try {
    return (await client.query(sql)).rows;
  } finally {
    await client.end().catch(() => {});
  }
}

/** True when a session waits for a lock matching `where` (on `pg_locks w`). */
const waiting = async (pgPort: number, where: string) =>
  (await query(pgPort, `select 1 from pg_locks w where not w.granted and ${where}`)).length > 0;

const imported = async (pgPort: number) =>
  (
    await query(
      pgPort,
      `select count(*)::int as n, count(distinct lower(email))::int as distinct_n from app_user where email like 'bulk%'`,
    )
  )[0] as { n: number; distinct_n: number };

describe('stopping in the middle of an import', () => {
  it('finishes the import after a restart with 0 duplicated and 0 lost rows', async () => {
    const csv = ['type,first_name,last_name,email,role'];
    for (let i = 0; i < ROWS; i++) csv.push(`user,First${i},Last${i},bulk${i}@acme.test,employee`);
    const file = standin.addFile({
      id: 'F000001',
      name: 'bulk.csv',
      content: `${csv.join('\n')}\n`,
      user: 'UADMIN',
    });

    const first = await start();
    const slack = new SlackDriver({
      appUrl: `http://127.0.0.1:${first.port}`,
      signingSecret: SECRET,
      standin,
      teamId: 'T0001',
    });
    await slack.fileShare('UADMIN', file);
    const preview = await eventually(
      () =>
        standin.messages
          .filter((m) => m.channel === 'DUADMIN' && m.text?.startsWith('Preview of bulk.csv'))
          .at(-1),
      60_000,
    );
    const importButton = findButton(preview.blocks, { actionId: undefined }).action;
    expect(importButton.text.text).toMatch(/^Import 10,?000 rows$/);

    // The stop comes between the import's first batch and its second, held there: a table lock holds the
    // first batch in its transaction, a wait for the import's batch lock queues behind that batch, and
    // lifting the table lock lets the batch commit and hands its lock to the wait.
    const [csvImport] = await query(first.pgPort, `select id from csv_import where file_id = 'F000001'`);
    const importId = csvImport?.id as string;
    expect(importId).toBeTruthy();
    const tables = await session(first.pgPort);
    const batches = await session(first.pgPort);
    await tables.query('begin');
    await tables.query('lock table app_user in exclusive mode');
    await slack.clickButton(preview, importButton.text.text, { user: 'UADMIN' });
    await eventually(
      () =>
        waiting(
          first.pgPort,
          `w.relation = 'app_user'::regclass and exists (select 1 from pg_locks a
             where a.pid = w.pid and a.locktype = 'advisory' and a.granted)`,
        ),
      60_000,
    );
    const batchLock = batches.query('select pg_advisory_lock($1, hashtext($2))', [BATCH_LOCK, importId]);
    await eventually(() => waiting(first.pgPort, `w.locktype = 'advisory'`));
    await tables.query('commit');
    await batchLock;
    const atSignal = (await imported(first.pgPort)).n;
    expect(atSignal).toBe(BATCH_SIZE);

    process.kill(-(first.child.pid as number), 'SIGTERM');
    expect(await first.exited).toBe(0);
    await tables.end().catch(() => {});
    await batches.end().catch(() => {});
    // The running import is handed back: not an error, nor a job that failed.
    expect(first.output()).not.toMatch(/"level":(50|60)/);
    expect(first.output()).not.toContain('job failed');
    expect(first.output()).not.toContain('CSV import completed');

    const second = await start();
    try {
      const done = await eventually(async () => {
        const [row] = await query(second.pgPort, `select status from csv_import where file_id = 'F000001'`);
        return row?.status === 'completed' ? row : undefined;
      }, 120_000);
      expect(done.status).toBe('completed');
      await eventually(() => second.output().includes('CSV import completed'));
      expect(await imported(second.pgPort)).toEqual({
        n: ROWS,
        distinct_n: ROWS,
      });
    } finally {
      process.kill(-(second.child.pid as number), 'SIGTERM');
      const code = await second.exited;
      if (code !== 0) console.log(second.output().slice(-3000));
      expect(code).toBe(0);
    }
  }, 240_000);
});
