import { execFile } from 'node:child_process';
import { request as httpRequest } from 'node:http';
import { resolve } from 'node:path';
import { Writable } from 'node:stream';
import { promisify } from 'node:util';
import { Client } from 'pg';
import { startRoster } from '../src/app.ts';
import { loadConfig } from '../src/config.ts';
import { hashToken } from '../src/shared/ids.ts';
import { createLogger } from '../src/shared/logger.ts';
import { startTestApp, type TestApp } from './support/app.ts';
import { createTestDatabase, type TestDatabase } from './support/database.ts';
import { type SlackStandin, startSlackStandin } from './support/slack-standin.ts';

const request = (url: string, init?: RequestInit) =>
  fetch(url, init).then(async (res) => ({
    status: res.status,
    headers: res.headers,
    text: await res.text(),
  }));

describe('a running Roster', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp();
  });
  afterAll(() => t.stop());

  it('is ready: database, migrations, job queue and Slack all answer', async () => {
    const res = await request(`${t.url}/readyz`);
    expect(res.status).toBe(200);
    expect(JSON.parse(res.text)).toEqual({
      status: 'ready',
      reasons: [],
      checks: {
        database: expect.stringMatching(/^up \(\d+ ms\)$/),
        migrations: 'applied',
        queue: 'running',
        bulkJobs: 'inline',
        slack: 'ok',
      },
    });
  });

  it('is not ready while a migration is missing, and says which', async () => {
    const conn = t.em().getConnection();
    const [latest] = await conn.execute<{ name: string }[]>(
      'select name from mikro_orm_migrations order by name desc limit 1',
    );
    await conn.execute('delete from mikro_orm_migrations where name = ?', [latest?.name]);
    try {
      const res = await request(`${t.url}/readyz`);
      expect(res.status).toBe(503);
      expect(JSON.parse(res.text)).toMatchObject({
        status: 'not ready',
        reasons: [`migrations not applied: ${latest?.name}`],
        checks: { migrations: '1 pending' },
      });
    } finally {
      await conn.execute('insert into mikro_orm_migrations (name) values (?)', [latest?.name]);
    }
  });

  it('is not ready, saying so within seconds, while the database does not answer', async () => {
    // A server that takes the query and says nothing (a partition, a stuck server) is held here by a lock
    // that the readiness check's read of the migrations waits behind.
    const holder = new Client({ connectionString: t.db.url });
    await holder.connect();
    try {
      await holder.query('begin');
      await holder.query('lock table mikro_orm_migrations in access exclusive mode');
      const began = Date.now();
      const [first, second] = await Promise.all([request(`${t.url}/readyz`), request(`${t.url}/readyz`)]);
      expect(Date.now() - began).toBeLessThan(15_000);
      for (const res of [first, second]) {
        expect(res.status).toBe(503);
        expect(JSON.parse(res.text)).toMatchObject({
          status: 'not ready',
          reasons: ['the database did not answer within 5 s'],
          checks: { database: 'not answering' },
        });
      }
    } finally {
      await holder.query('rollback');
      await holder.end();
    }
    expect((await request(`${t.url}/readyz`)).status).toBe(200);
  });

  it('answers anything but a POST to /slack/events with 405, and unknown methods elsewhere without a stack trace', async () => {
    for (const method of ['GET', 'PUT', 'DELETE', 'PATCH']) {
      const res = await request(`${t.url}/slack/events`, { method });
      expect({ method, status: res.status, allow: res.headers.get('allow') }).toEqual({
        method,
        status: 405,
        allow: 'POST',
      });
      expect(res.text).not.toMatch(/\bat .*:\d+:\d+/);
    }
    expect((await request(`${t.url}/healthz`, { method: 'POST' })).status).toBe(405);
    expect((await request(`${t.url}/readyz`, { method: 'DELETE' })).status).toBe(405);
    const unknown = await request(`${t.url}/no/such/thing`, { method: 'PATCH' });
    expect([404, 405]).toContain(unknown.status);
    expect(unknown.text).not.toMatch(/\bat .*:\d+:\d+/);
  });
});

describe('a Slack that refuses the token or cannot be reached at start', () => {
  let db: TestDatabase;
  let standin: SlackStandin;
  beforeAll(async () => {
    db = await createTestDatabase();
    standin = await startSlackStandin({ teamId: 'T0001', botToken: 'xoxb-the-right-one' });
  });
  afterAll(async () => {
    await standin.close();
    await db.drop();
  });

  async function startWith(slackApiUrl: string, env: Record<string, string> = {}) {
    const lines: Record<string, any>[] = [];
    const sink = new Writable({
      write(chunk, _encoding, done) {
        for (const line of String(chunk).split('\n').filter(Boolean)) lines.push(JSON.parse(line));
        done();
      },
    });
    const config = loadConfig({
      SLACK_SIGNING_SECRET: 'secret',
      SLACK_BOT_TOKEN: 'xoxb-a-revoked-one',
      SLACK_API_URL: slackApiUrl,
      DATABASE_URL: db.url,
      PORT: '0',
      PUBLIC_URL: 'http://localhost',
      ...env,
    });
    const startedAt = Date.now();
    const roster = await startRoster({ config, logger: createLogger('info', sink), host: '127.0.0.1' });
    return { roster, lines, tookMs: Date.now() - startedAt };
  }

  it('says so in one line, opens the port anyway, and /readyz says why', async () => {
    const { roster, lines, tookMs } = await startWith(standin.apiUrl);
    try {
      expect(tookMs).toBeLessThan(10_000);
      const errors = lines.filter((l) => l.level >= 50).map((l) => l.msg);
      expect(errors).toEqual([
        expect.stringMatching(/^Slack did not accept SLACK_BOT_TOKEN \(invalid_auth\)\. Check/),
      ]);
      expect((await request(`${roster.url}/healthz`)).status).toBe(200);
      const ready = await request(`${roster.url}/readyz`);
      expect(ready.status).toBe(503);
      expect(JSON.parse(ready.text)).toMatchObject({
        status: 'not ready',
        reasons: [errors[0]],
        checks: { slack: 'not connected', database: expect.stringMatching(/^up/) },
      });
      // Slack's requests are turned away with the reason rather than failing inside Bolt.
      const event = await request(`${roster.url}/slack/events`, { method: 'POST', body: '{}' });
      expect(event.status).toBe(503);
      expect(JSON.parse(event.text).error).toBe(errors[0]);

      // A request for another host name while PUBLIC_URL is local: said once, with what to do.
      for (let i = 0; i < 2; i++) {
        await new Promise((ok, fail) =>
          httpRequest(`${roster.url}/healthz`, { headers: { host: 'roster.example.com' } }, (res) => {
            res.resume();
            res.on('end', ok);
          })
            .on('error', fail)
            .end(),
        );
      }
      const warnings = lines.filter((l) => l.level === 40 && /PUBLIC_URL/.test(l.msg)).map((l) => l.msg);
      expect(warnings).toEqual([
        'Roster is reached at roster.example.com but PUBLIC_URL is http://localhost: links in invitations and join links will not open for others. Set PUBLIC_URL to the address people reach Roster at.',
      ]);
    } finally {
      await roster.stop();
    }
  });

  it('stops a token API_TOKEN no longer sets before the API answers, though Slack cannot say the workspace', async () => {
    // A deployment token stored by an earlier start, when Slack answered.
    const kept = `roster_${'k3pt'.repeat(10)}`;
    const dropped = `roster_${'dr0p'.repeat(10)}`;
    const first = await startWith(standin.apiUrl);
    await first.roster.stop();
    const pg = new Client({ connectionString: db.url });
    await pg.connect();
    try {
      const [account] = (
        await pg.query(
          `insert into account (id, team_id, name, seat_limit, created_at, updated_at)
           values (gen_random_uuid(), 'T0001', 'Acme', 10, now(), now()) returning id`,
        )
      ).rows;
      for (const token of [kept, dropped]) {
        await pg.query(
          `insert into api_token (id, account_id, name, token_hash, hint, managed, created_by, scope, created_at, updated_at)
           values (gen_random_uuid(), $1, 'API_TOKEN', $2, $3, true, 'deployment', 'read', now(), now())`,
          [account.id, hashToken(token), token.slice(0, 12)],
        );
      }
    } finally {
      await pg.end();
    }
    // Started again with API_TOKEN set to one of them, while Slack refuses the bot token.
    for (const slackApiUrl of [standin.apiUrl, 'http://127.0.0.1:9/api/']) {
      const { roster } = await startWith(slackApiUrl, { API_TOKEN: kept });
      try {
        const people = (token: string) =>
          request(`${roster.url}/api/v1/people`, { headers: { authorization: `Bearer ${token}` } });
        expect((await people(dropped)).status).toBe(401);
        expect((await people(kept)).status).toBe(200);
      } finally {
        await roster.stop();
      }
    }
    const { roster } = await startWith(standin.apiUrl);
    try {
      const res = await request(`${roster.url}/api/v1/people`, {
        headers: { authorization: `Bearer ${kept}` },
      });
      expect(res.status).toBe(401);
    } finally {
      await roster.stop();
    }
  });

  it('names why Slack cannot be reached: the address not found, the connection refused', async () => {
    // In a process of its own: the test runner's realms hide the cause fetch gives its error.
    const script = `
      import { slackProblem } from './src/app.ts';
      import { loadConfig } from './src/config.ts';
      import { createLogger } from './src/shared/logger.ts';
      for (const url of ['http://127.0.0.1:39/api/', 'http://no-such-host.invalid/api/']) {
        const config = loadConfig({ SLACK_SIGNING_SECRET: 's', SLACK_BOT_TOKEN: 'xoxb-1', SLACK_API_URL: url });
        console.log((await slackProblem(config, createLogger('silent')))?.message);
      }`;
    const { stdout } = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', script], {
      cwd: resolve(import.meta.dirname, '..'),
      env: { PATH: process.env.PATH },
    });
    expect(stdout.trim().split('\n')).toEqual([
      expect.stringMatching(
        /^Slack cannot be reached at http:\/\/127\.0\.0\.1:39\/api\/ \(.*fetch failed: ECONNREFUSED\)\. Check/,
      ),
      expect.stringMatching(
        /^Slack cannot be reached at http:\/\/no-such-host\.invalid\/api\/ \(.*fetch failed: ENOTFOUND\)\. Check/,
      ),
    ]);
  });

  it('says when Slack cannot be reached at all, within 10 seconds', async () => {
    const { roster, lines, tookMs } = await startWith('http://127.0.0.1:9/api/');
    try {
      expect(tookMs).toBeLessThan(10_000);
      const errors = lines.filter((l) => l.level >= 50).map((l) => l.msg);
      expect(errors).toEqual([
        expect.stringMatching(
          /^Slack cannot be reached at http:\/\/127\.0\.0\.1:9\/api\/ \(.+\)\. Check .* tries again every 30 s\.$/,
        ),
      ]);
      const ready = await request(`${roster.url}/readyz`);
      expect(ready.status).toBe(503);
      expect(JSON.parse(ready.text).reasons).toEqual([errors[0]]);
    } finally {
      await roster.stop();
    }
  });
});
