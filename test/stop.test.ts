import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { type SlackStandin, startSlackStandin } from './support/slack-standin.ts';

// Roster run as an operator runs it (`npm start`, or `node src/main.ts`), with the embedded PostgreSQL,
// stopped by a signal sent to the process or to its whole process group (what Ctrl-C in a terminal does).

const root = resolve(import.meta.dirname, '..');
const BOT_TOKEN = 'xoxb-stop-test';
const RUNS = Number(process.env.STOP_RUNS ?? 10);

let standin: SlackStandin;
let dataDir: string;

beforeAll(async () => {
  standin = await startSlackStandin({ teamId: 'T0001', botToken: BOT_TOKEN });
  dataDir = await mkdtemp(join(tmpdir(), 'roster-stop-'));
  // As root, PostgreSQL runs as the postgres user, which must be able to enter the directory.
  await chmod(dataDir, 0o755);
});
afterAll(async () => {
  await standin.close();
  await rm(dataDir, { recursive: true, force: true });
});

type Running = {
  child: ChildProcess;
  output: () => string;
  exited: Promise<{ code: number | null; signal: string | null }>;
};

async function start(how: 'npm' | 'node'): Promise<Running> {
  const [command, args] =
    how === 'npm' ? ['npm', ['start', '--silent']] : [process.execPath, ['src/main.ts']];
  const child = spawn(command, args as string[], {
    cwd: root,
    // Its own process group, as a shell gives a job, so the group can be signalled as Ctrl-C does.
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      PATH: `${join(root, 'node_modules/.bin')}:${process.env.PATH}`,
      HOME: process.env.HOME,
      SLACK_SIGNING_SECRET: 'stop-test-secret',
      SLACK_BOT_TOKEN: BOT_TOKEN,
      SLACK_API_URL: standin.apiUrl,
      DATA_DIR: dataDir,
      PORT: '0',
      PUBLIC_URL: 'http://localhost',
      LOG_LEVEL: 'info',
    },
  });
  let output = '';
  child.stdout?.on('data', (chunk) => (output += chunk));
  child.stderr?.on('data', (chunk) => (output += chunk));
  const exited = new Promise<{ code: number | null; signal: string | null }>((ok) =>
    child.on('exit', (code, signal) => ok({ code, signal })),
  );
  let gone = false;
  void exited.then(() => (gone = true));
  const started = Date.now();
  while (!output.includes('Roster is listening') && !gone && Date.now() - started < 60_000) {
    await new Promise((r) => setTimeout(r, 50));
  }
  const ready = output.includes('Roster is listening');
  if (!ready) {
    if (child.pid) kill(-child.pid, 'SIGKILL');
    throw new Error(`Roster did not start:\n${output}`);
  }
  return { child, output: () => output, exited };
}

function kill(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch {}
}

/** Processes left in the run's process group, or serving its data directory. */
function leftovers(pgid: number): string[] {
  const ps = execFileSync('ps', ['-eo', 'pid=,pgid=,args='], { encoding: 'utf8' });
  return ps
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => {
      const [, group] = line.split(/\s+/);
      return line !== '' && (Number(group) === pgid || line.includes(dataDir));
    });
}

async function stopOnce(how: 'npm' | 'node', signal: NodeJS.Signals, target: 'group' | 'process') {
  const run = await start(how);
  const pid = run.child.pid as number;
  const sentAt = Date.now();
  kill(target === 'group' ? -pid : pid, signal);
  let timer: NodeJS.Timeout | undefined;
  const result = await Promise.race([
    run.exited,
    new Promise<'timeout'>((r) => {
      timer = setTimeout(() => r('timeout'), 15_000);
    }),
  ]);
  clearTimeout(timer);
  const tookMs = Date.now() - sentAt;
  const left = leftovers(pid);
  if (result === 'timeout' || left.length > 0) kill(-pid, 'SIGKILL');
  for (const line of left) kill(Number(line.split(/\s+/)[0]), 'SIGKILL');
  return { result, tookMs, left, output: run.output() };
}

function expectCleanStop(stop: Awaited<ReturnType<typeof stopOnce>>) {
  const problems = {
    exit: stop.result,
    tookMs: stop.tookMs < 10_000 ? 'under 10 s' : stop.tookMs,
    leftovers: stop.left,
    stackTraces: stop.output
      .split('\n')
      .filter((l) => /^\s+at .+:\d+:\d+\)?$/.test(l) || l.includes('"stack"')),
    errors: stop.output.split('\n').filter((l) => /"level":(50|60)/.test(l)),
  };
  expect(problems).toEqual({
    exit: { code: 0, signal: null },
    tookMs: 'under 10 s',
    leftovers: [],
    stackTraces: [],
    errors: [],
  });
  expect(stop.output).toContain('"msg":"stopped"');
}

describe('stopping Roster', () => {
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    it(`${signal} to the process group of npm start, ${RUNS} times in a row: exit 0, nothing left running`, async () => {
      for (let i = 0; i < RUNS; i++) expectCleanStop(await stopOnce('npm', signal, 'group'));
    }, 300_000);
  }

  it('SIGTERM to the npm process alone stops Roster and its database too', async () => {
    expectCleanStop(await stopOnce('npm', 'SIGTERM', 'process'));
  }, 60_000);

  it('SIGINT to node src/main.ts alone stops it cleanly', async () => {
    expectCleanStop(await stopOnce('node', 'SIGINT', 'process'));
  }, 60_000);

  it('answers a request that is in flight when the signal comes, then exits 0', async () => {
    const run = await start('node');
    const port = Number(run.output().match(/Roster is listening on port (\d+)/)?.[1]);
    const body = 'csrf=x&name=Late&email=late%40example.com';
    const answer = new Promise<number>((ok, fail) => {
      const req = request(
        { host: '127.0.0.1', port, method: 'POST', path: `/join/${'A'.repeat(43)}` },
        (res) => {
          res.resume();
          res.on('end', () => ok(res.statusCode ?? 0));
        },
      );
      req.setHeader('content-type', 'application/x-www-form-urlencoded');
      req.setHeader('content-length', String(Buffer.byteLength(body)));
      req.on('error', fail);
      // Half the body now; the rest only after the stop has begun.
      req.write(body.slice(0, 10));
      setTimeout(() => {
        kill(run.child.pid as number, 'SIGTERM');
        setTimeout(() => req.end(body.slice(10)), 500);
      }, 300);
    });
    // The link is unknown, so the page says so; what matters is that an answer came.
    expect(await answer).toBe(404);
    expect(await run.exited).toEqual({ code: 0, signal: null });
    expect(leftovers(run.child.pid as number)).toEqual([]);
  }, 60_000);
});
