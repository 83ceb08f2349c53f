import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import pg from 'pg';
import { createTestDatabase, type TestDatabase, testDatabasePrefix } from './support/database.ts';
import { adminQuery, withDatabase } from './support/postgres.ts';
import { type SlackStandin, startSlackStandin } from './support/slack-standin.ts';

// `node src/main.ts` started as an operator starts it, with a setting that cannot work: one line saying
// which setting and why, no stack trace, and a quick non-zero exit.

const root = resolve(import.meta.dirname, '..');
const BOT_TOKEN = 'xoxb-main-test';

let standin: SlackStandin;
let db: TestDatabase;
beforeAll(async () => {
  standin = await startSlackStandin({ teamId: 'T0001', botToken: BOT_TOKEN });
  db = await createTestDatabase();
});
afterAll(async () => {
  await standin.close();
  await db.drop();
});

type Run = {
  child: ChildProcess;
  output: () => string;
  exited: Promise<{ code: number | null; ms: number }>;
};

function start(env: Record<string, string>, cwd = root): Run {
  const began = Date.now();
  const child = spawn(process.execPath, [join(root, 'src/main.ts')], {
    cwd,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      PATH: `${join(root, 'node_modules/.bin')}:${process.env.PATH}`,
      HOME: process.env.HOME,
      SLACK_SIGNING_SECRET: 'main-test-secret',
      SLACK_BOT_TOKEN: BOT_TOKEN,
      SLACK_API_URL: standin.apiUrl,
      DATABASE_URL: db.url,
      PORT: '0',
      PUBLIC_URL: 'http://localhost',
      LOG_LEVEL: 'info',
      BULK_JOBS: 'inline',
      ...env,
    },
  });
  let output = '';
  child.stdout?.on('data', (chunk) => (output += chunk));
  child.stderr?.on('data', (chunk) => (output += chunk));
  const exited = new Promise<{ code: number | null; ms: number }>((ok) =>
    child.on('exit', (code) => ok({ code, ms: Date.now() - began })),
  );
  return { child, output: () => output, exited };
}

async function waitFor(run: Run, text: string | RegExp, ms = 60_000): Promise<void> {
  const until = Date.now() + ms;
  while (!run.output().match(text)) {
    if (run.child.exitCode !== null || Date.now() > until) {
      throw new Error(`never said ${text}:\n${run.output()}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The fatal line of a start that failed, as the operator reads it. */
function fatal(output: string): string {
  const lines = output.split('\n').filter((l) => l.includes('"level":60'));
  expect(lines).toHaveLength(1);
  const line = lines[0] ?? '';
  expect(line).not.toContain('"stack"');
  expect(line).not.toContain('"err"');
  return (JSON.parse(line) as { msg: string }).msg;
}

/** A TCP port with nothing listening on it. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  const { port } = server.address() as { port: number };
  await new Promise((ok) => server.close(ok));
  return port;
}

describe('a database Roster cannot use', () => {
  it('names DATABASE_URL and the reason when nothing answers at its address, without the password', async () => {
    const port = await closedPort();
    const run = start({ DATABASE_URL: `postgres://roster:s3cret-pw@127.0.0.1:${port}/roster` });
    const { code, ms } = await run.exited;
    expect(code).toBe(1);
    expect(ms).toBeLessThan(10_000);
    const msg = fatal(run.output());
    expect(msg).toContain('DATABASE_URL');
    expect(msg).toContain(`127.0.0.1:${port}`);
    expect(msg).toMatch(/nothing answers|refused/);
    expect(run.output()).not.toContain('s3cret-pw');
  });

  it('names a socket directory where no PostgreSQL listens, showing the URL without its password', async () => {
    const run = start({
      DATABASE_URL: 'postgres://roster:s3cret-pw@/roster?host=/nonexistent-roster-socket',
    });
    expect((await run.exited).code).toBe(1);
    expect(fatal(run.output())).toBe(
      'Roster cannot use the database in DATABASE_URL (postgres://roster@/roster): no PostgreSQL socket is there (connect ENOENT /nonexistent-roster-socket/.s.PGSQL.5432). Check that PostgreSQL runs on this machine, and the socket directory in the URL.',
    );
    expect(run.output()).not.toContain('s3cret-pw');
  });

  it('names a certificate file the URL gives that cannot be read, rather than a stack trace', async () => {
    const url = new URL(db.url);
    url.password = 's3cret-pw';
    url.search = '?sslmode=verify-full&sslrootcert=/nonexistent-roster-ca/ca.pem';
    const run = start({ DATABASE_URL: url.toString() });
    expect((await run.exited).code).toBe(1);
    expect(fatal(run.output())).toBe(
      `Roster cannot use the database in DATABASE_URL (postgres://${url.username}@${url.host}${url.pathname}): /nonexistent-roster-ca/ca.pem cannot be read (ENOENT). Check the paths the URL gives in sslrootcert, sslcert and sslkey.`,
    );
    expect(run.output()).not.toContain('s3cret-pw');
  });

  it('says the database does not exist', async () => {
    const url = new URL(db.url);
    url.pathname = '/roster_main_test_no_such_database';
    const run = start({ DATABASE_URL: url.toString() });
    expect((await run.exited).code).toBe(1);
    const msg = fatal(run.output());
    expect(msg).toContain('DATABASE_URL');
    expect(msg).toContain('"roster_main_test_no_such_database" does not exist');
  });

  it("says a server's refusal that mentions a timeout as the server said it, not as a silent server", async () => {
    const url = new URL(db.url);
    url.search = '?options=-c%20statement_timeout%3Dsoon';
    const run = start({ DATABASE_URL: url.toString() });
    expect((await run.exited).code).toBe(1);
    const msg = fatal(run.output());
    expect(msg).toContain('invalid value for parameter "statement_timeout"');
    expect(msg).not.toContain('did not answer');
  });

  /** A server that takes connections and never says a word, as a firewall or a wrong port can. */
  async function silentServer(): Promise<{ port: number; connected: () => boolean; close: () => void }> {
    const sockets: Socket[] = [];
    const silent: Server = createServer((s) => sockets.push(s));
    await new Promise<void>((ok) => silent.listen(0, '127.0.0.1', ok));
    const { port } = silent.address() as { port: number };
    return {
      port,
      connected: () => sockets.length > 0,
      close: () => {
        for (const s of sockets) s.destroy();
        silent.close();
      },
    };
  }

  it('gives up on a server that never answers within seconds', async () => {
    const silent = await silentServer();
    try {
      const run = start({ DATABASE_URL: `postgres://roster@127.0.0.1:${silent.port}/roster` });
      const { code, ms } = await run.exited;
      expect(code).toBe(1);
      expect(ms).toBeLessThan(20_000);
      expect(fatal(run.output())).toContain(`127.0.0.1:${silent.port} did not answer within 10 s`);
    } finally {
      silent.close();
    }
  }, 30_000);

  it('stops at once on SIGTERM while it waits for the database', async () => {
    const silent = await silentServer();
    try {
      const run = start({ DATABASE_URL: `postgres://roster@127.0.0.1:${silent.port}/roster` });
      while (!silent.connected() && run.child.exitCode === null) await new Promise((r) => setTimeout(r, 20));
      const signalled = Date.now();
      run.child.kill('SIGTERM');
      const { code } = await run.exited;
      expect(Date.now() - signalled).toBeLessThan(3000);
      expect(code).toBe(0);
      expect(run.output()).toContain('stopped before Roster had started');
      expect(run.output()).not.toContain('"stack"');
      expect(run.output()).not.toMatch(/"level":(50|60)/);
    } finally {
      silent.close();
    }
  });
});

describe('a stop while another instance applies the migrations', () => {
  it('waits for them however long they take, as it says, then stops without applying any', async () => {
    const name = `${testDatabasePrefix()}main_stop_migrations`;
    const adminUrl = process.env.ROSTER_TEST_ADMIN_URL as string;
    await adminQuery(adminUrl, `create database "${name}"`);
    const empty = {
      url: withDatabase(adminUrl, name),
      drop: () => adminQuery(adminUrl, `drop database if exists "${name}" with (force)`),
    };
    const other = new pg.Client({ connectionString: empty.url });
    await other.connect();
    try {
      await other.query(`select pg_advisory_lock(hashtext('roster:migrations'))`);
      // The stop's deadline is 4 s with no grace: the other instance holds the migrations longer.
      const run = start({ DATABASE_URL: empty.url, STOP_GRACE_SECONDS: '0', STOP_DRAIN_SECONDS: '0' });
      await waitFor(run, 'another instance is applying migrations');
      run.child.kill('SIGTERM');
      await waitFor(run, 'stopping once the other instance has applied the migrations');
      await new Promise((r) => setTimeout(r, 6_000));
      expect(run.child.exitCode).toBeNull();
      await other.query(`select pg_advisory_unlock(hashtext('roster:migrations'))`);
      const { code } = await run.exited;
      expect(code).toBe(0);
      expect(run.output()).toContain('stopped before Roster had started');
      expect(run.output()).not.toContain('did not stop within');
    } finally {
      await other.end();
      await empty.drop();
    }
  }, 60_000);
});

describe('a stop while the modules load', () => {
  it('Ctrl-C in the first moments is not lost: it is said, and Roster exits 0 without starting', async () => {
    const run = start({});
    const pid = run.child.pid as number;
    // Sent as soon as main.ts handles signals (SIGHUP is the first bit of the caught ones; Node itself
    // catches SIGINT and SIGTERM from the start): the rest of Roster (about a second or more) is still
    // loading then. Waited for however slow the machine, since a signal before it would end Node at once.
    const caughtHup = () => {
      try {
        const mask = /SigCgt:\s*([0-9a-f]+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
        return mask !== undefined && (BigInt(`0x${mask}`) & 1n) === 1n;
      } catch {
        return false;
      }
    };
    const until = Date.now() + 30_000;
    while (!caughtHup() && Date.now() < until) await new Promise((r) => setTimeout(r, 2));
    expect(caughtHup()).toBe(true);
    expect(run.output()).toBe('');
    run.child.kill('SIGINT');
    const { code } = await run.exited;
    const said = run
      .output()
      .split('\n')
      .filter(Boolean)
      .map((l) => (JSON.parse(l) as { msg: string }).msg);
    // Said by main.ts while loading, or (the loading holds the event loop, so the signal is seen only
    // after it) by the start it stops at once.
    expect(said.at(-1)).toMatch(
      /^(stopped \(SIGINT\) while Roster was loading, before it had started|stopped before Roster had started)$/,
    );
    expect(said.some((m) => m.startsWith('Roster is listening'))).toBe(false);
    expect(code).toBe(0);
  });
});

describe('a port Roster cannot take', () => {
  it('names PORT when another program listens on it', async () => {
    const busy = createServer();
    await new Promise<void>((ok) => busy.listen(0, ok));
    const { port } = busy.address() as { port: number };
    try {
      const run = start({ PORT: String(port) });
      expect((await run.exited).code).toBe(1);
      const msg = fatal(run.output());
      expect(msg).toContain(`PORT ${port} is already in use`);
    } finally {
      busy.close();
    }
  });
});

describe('once started', () => {
  it("says where to point Slack's Request URL and where the pages are", async () => {
    const run = start({ PUBLIC_URL: 'https://roster.example.com/' });
    try {
      await waitFor(run, 'Roster is listening');
      const line =
        run
          .output()
          .split('\n')
          .find((l) => l.includes('Roster is listening')) ?? '';
      const { msg } = JSON.parse(line) as { msg: string };
      expect(msg).toContain('https://roster.example.com/slack/events');
      expect(msg).toContain('Request URL');
      expect(msg).toMatch(/pages at https:\/\/roster\.example\.com\//);
    } finally {
      run.child.kill('SIGTERM');
      expect((await run.exited).code).toBe(0);
    }
  });

  it('says Slack cannot call a local address, and what to do', async () => {
    const run = start({});
    try {
      await waitFor(run, 'Roster is listening');
      const line =
        run
          .output()
          .split('\n')
          .find((l) => l.includes('Roster is listening')) ?? '';
      const { msg } = JSON.parse(line) as { msg: string };
      expect(msg).toContain('http://localhost/slack/events');
      expect(msg).toContain('PUBLIC_URL');
      expect(msg).toContain('SLACK_APP_TOKEN');
    } finally {
      run.child.kill('SIGTERM');
      expect((await run.exited).code).toBe(0);
    }
  });
});

describe("the deployment's own webhook and SCIM service on this machine", () => {
  const webhook = {
    WEBHOOK_URL: 'http://127.0.0.1:9/hooks?token=s3cret-query',
    WEBHOOK_SECRET: `whsec_${Buffer.alloc(32, 7).toString('base64')}`,
    SCIM_URL: 'http://localhost:9/scim/v2',
    SCIM_TOKEN: 'scim-s3cret',
  };
  const warnings = (output: string) =>
    output
      .split('\n')
      .filter((l) => l.includes('"level":40') && /WEBHOOK_URL|SCIM_URL/.test(l))
      .map((l) => (JSON.parse(l) as { msg: string }).msg)
      .sort();

  it('says at start that neither will be called without ALLOW_PRIVATE_URLS', async () => {
    const run = start(webhook);
    try {
      await waitFor(run, 'Roster is listening');
      await waitFor(run, 'WEBHOOK_URL will not be called', 20_000);
      await waitFor(run, 'SCIM_URL will not be called', 20_000);
    } finally {
      run.child.kill('SIGTERM');
      expect((await run.exited).code).toBe(0);
    }
    expect(warnings(run.output())).toEqual([
      'SCIM_URL will not be called: localhost is on this machine or a private network, which Roster does not call (an operator can allow it with ALLOW_PRIVATE_URLS=true).',
      'WEBHOOK_URL will not be called: 127.0.0.1 is on this machine or a private network, which Roster does not call (an operator can allow it with ALLOW_PRIVATE_URLS=true).',
    ]);
    expect(run.output()).not.toMatch(/s3cret/);
  });

  it('says nothing of them with ALLOW_PRIVATE_URLS=true', async () => {
    const run = start({ ...webhook, ALLOW_PRIVATE_URLS: 'true' });
    try {
      await waitFor(run, 'Roster is listening');
      // Without ALLOW_PRIVATE_URLS the warnings come within moments of the start (above): this is ample.
      await new Promise((r) => setTimeout(r, 500));
    } finally {
      run.child.kill('SIGTERM');
      expect((await run.exited).code).toBe(0);
    }
    expect(warnings(run.output())).toEqual([]);
  });
});

describe('npm run migration:up on a database Roster cannot use', () => {
  it('names DATABASE_URL and the reason, and gives up on a server that never answers', async () => {
    const sockets: Socket[] = [];
    const silent: Server = createServer((s) => sockets.push(s));
    await new Promise<void>((ok) => silent.listen(0, '127.0.0.1', ok));
    const { port } = silent.address() as { port: number };
    try {
      const began = Date.now();
      const child = spawn(process.execPath, ['src/db/migrate.ts', 'up'], {
        cwd: root,
        stdio: ['ignore', 'pipe', 'pipe'],
        env: {
          PATH: process.env.PATH,
          HOME: process.env.HOME,
          DATABASE_URL: `postgres://roster:s3cret-pw@127.0.0.1:${port}/roster`,
        },
      });
      let output = '';
      child.stdout?.on('data', (chunk) => (output += chunk));
      child.stderr?.on('data', (chunk) => (output += chunk));
      const code = await new Promise((ok) => child.on('exit', ok));
      expect(code).toBe(1);
      expect(Date.now() - began).toBeLessThan(20_000);
      expect(output).toContain(
        `Roster cannot use the database in DATABASE_URL (postgres://roster@127.0.0.1:${port}/roster): 127.0.0.1:${port} did not answer within 10 s`,
      );
      expect(output).not.toContain('s3cret-pw');
    } finally {
      for (const s of sockets) s.destroy();
      silent.close();
    }
  }, 30_000);
});

describe('a connection URL that cannot be read as a URL', () => {
  const unreadable =
    'cannot be read as one: check that its port is a number up to 65535, and write a #, / or ? in the user name or password percent-encoded (%23, %2F, %3F)';

  it('is named among the settings, with what to check, before anything starts: no stack trace, no password', async () => {
    const run = start({
      // A port out of range, and a password with a bare # (which ends the URL's authority there).
      DATABASE_URL: 'postgres://roster:s3cret-pw@127.0.0.1:99999/roster',
      SMTP_URL: 'smtp://roster:hunter#2@mail.example.com:587',
    });
    const { code, ms } = await run.exited;
    expect(code).toBe(78);
    expect(ms).toBeLessThan(10_000);
    expect(run.output().trim()).toBe(
      [
        'Roster cannot start because of its settings:',
        `  - DATABASE_URL must be a postgres:// URL like postgres://user:password@host:5432/roster, and this one ${unreadable}`,
        `  - SMTP_URL must be an smtp:// or smtps:// URL like smtp://user:password@mail.example.com:587, and this one ${unreadable}`,
      ].join('\n'),
    );
  });

  it('is named the same by npm run migration:up, which says it is the migrations that cannot run', async () => {
    const child = spawn(process.execPath, ['src/db/migrate.ts', 'up'], {
      cwd: root,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: {
        PATH: process.env.PATH,
        HOME: process.env.HOME,
        DATABASE_URL: 'postgres://roster:s3cret#pw@127.0.0.1/roster',
      },
    });
    let output = '';
    child.stdout?.on('data', (chunk) => (output += chunk));
    child.stderr?.on('data', (chunk) => (output += chunk));
    expect(await new Promise((ok) => child.on('exit', ok))).toBe(1);
    expect(output.trim()).toBe(
      [
        'The migrations cannot run because of the settings:',
        `  - DATABASE_URL must be a postgres:// URL like postgres://user:password@host:5432/roster, and this one ${unreadable}`,
      ].join('\n'),
    );
  });
});

describe('a stop while Roster asks Slack about its token at start', () => {
  it('stops at once rather than waiting for a Slack that does not answer', async () => {
    const sockets: Socket[] = [];
    const silent: Server = createServer((s) => sockets.push(s));
    await new Promise<void>((ok) => silent.listen(0, '127.0.0.1', ok));
    const { port } = silent.address() as { port: number };
    try {
      const run = start({ SLACK_API_URL: `http://127.0.0.1:${port}/api/` });
      while (sockets.length === 0 && run.child.exitCode === null) await new Promise((r) => setTimeout(r, 20));
      const signalled = Date.now();
      run.child.kill('SIGTERM');
      const { code } = await run.exited;
      expect(Date.now() - signalled).toBeLessThan(4000);
      expect(code).toBe(0);
      expect(run.output()).toContain('stopped before Roster had started');
      expect(run.output()).not.toMatch(/"level":(50|60)/);
    } finally {
      for (const s of sockets) s.destroy();
      silent.close();
    }
  });
});

describe('a DATA_DIR another Roster already runs on', () => {
  it('says so, rather than blaming the directory', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'roster-main-'));
    // As root, PostgreSQL runs as the postgres user, which must be able to enter the directory.
    await chmod(dataDir, 0o755);
    const first = start({ DATABASE_URL: '', DATA_DIR: dataDir });
    try {
      await waitFor(first, 'Roster is listening');
      const second = start({ DATABASE_URL: '', DATA_DIR: dataDir });
      expect((await second.exited).code).toBe(1);
      const msg = fatal(second.output());
      expect(msg).toContain(`Another Roster (or PostgreSQL) already runs on DATA_DIR (${dataDir})`);
      expect(msg).not.toContain('may write');
    } finally {
      first.child.kill('SIGTERM');
      await first.exited;
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});

describe('a DATA_DIR the embedded database cannot be created in', () => {
  it('names DATA_DIR and says to set DATABASE_URL otherwise', async () => {
    // A directory under a file: no user may create it.
    const run = start({ DATABASE_URL: '', DATA_DIR: join(root, 'package.json', 'data') });
    expect((await run.exited).code).toBe(1);
    const msg = fatal(run.output());
    expect(msg).toContain('Check that DATA_DIR');
    expect(msg).toContain('or set DATABASE_URL');
  });

  it('says so at once for a path no process may create, such as one under /proc', async () => {
    const run = start({ DATABASE_URL: '', DATA_DIR: '/proc/roster-data' });
    expect((await run.exited).code).toBe(1);
    expect(fatal(run.output())).toContain('Check that DATA_DIR (/proc/roster-data)');
  }, 20_000);
});

describe('LOG_LEVEL=silent', () => {
  it('still says why Roster could not start', async () => {
    const port = await closedPort();
    const run = start({ LOG_LEVEL: 'silent', DATABASE_URL: `postgres://roster@127.0.0.1:${port}/roster` });
    expect((await run.exited).code).toBe(1);
    expect(run.output()).toContain(`Roster cannot use the database in DATABASE_URL`);
  });
});

describe('a .env that cannot be read', () => {
  it('is named in one line with why, and Roster exits as for any other settings problem', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'roster-env-'));
    try {
      // A directory where the file should be: what a volume mounted at .env for a missing file leaves.
      await mkdir(join(dir, '.env'));
      const run = start({}, dir);
      const { code, ms } = await run.exited;
      expect(code).toBe(78);
      expect(ms).toBeLessThan(10_000);
      expect(run.output().trim()).toBe(
        `Roster cannot read its settings file .env (${join(dir, '.env')}): it is a directory, not a file (EISDIR). Make it a readable file of NAME=value lines, or remove it and set the variables in the environment.`,
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
