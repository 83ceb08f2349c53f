import { Writable } from 'node:stream';
import { type Roster, startRoster } from '../../src/app.ts';
import { loadConfig } from '../../src/config.ts';
import { query, sql } from '../../src/db/sql.ts';
import { Account } from '../../src/features/accounts/account.entity.ts';
import { DIRECTORY_JOBS } from '../../src/features/directory/index.ts';
import { Invitation } from '../../src/features/invites/invitation.entity.ts';
import { User } from '../../src/features/people/user.entity.ts';
import { createLogger } from '../../src/shared/logger.ts';
import {
  BOT_TOKEN,
  DEFAULT_MEMBERS,
  eventually,
  jobsDrained,
  startTestApp,
  type TestApp,
} from '../support/app.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { type SlackStandin, startSlackStandin } from '../support/slack-standin.ts';

const TOKEN = 'xoxb-installed-token';

/** Slack stops taking the bot token, as when the app is uninstalled or its token revoked. */
const revoke = (standin: SlackStandin, token: string) => Object.assign(standin, { botToken: token });

/** How many directory sync jobs have had their try (done, or queued again to wait for the token). */
async function syncsDone(t: TestApp): Promise<number> {
  const [row] = await query<{ n: number }>(
    t.em(),
    sql`select count(*)::int as n from pgboss.job where name = ${DIRECTORY_JOBS.sync} and state = 'completed'`,
  );
  return row!.n;
}

/** Roster with its bulk jobs in their own thread (the default), once its first directory sync is done. */
async function startWithBulkThread(): Promise<TestApp> {
  const t = await startTestApp({ env: { BULK_JOBS: 'thread' } });
  await eventually(
    async () => (await t.roster.deps.directory.syncedAt(t.em(), await t.account())) !== null,
    20_000,
  );
  return t;
}

describe('a bot token Slack stops accepting while Roster runs', () => {
  let db: TestDatabase;
  let standin: SlackStandin;
  let roster: Roster;
  const lines: Record<string, any>[] = [];

  beforeAll(async () => {
    db = await createTestDatabase();
    standin = await startSlackStandin({ teamId: 'T0001', botToken: TOKEN, members: DEFAULT_MEMBERS });
    const sink = new Writable({
      write(chunk, _encoding, done) {
        for (const line of String(chunk).split('\n').filter(Boolean)) lines.push(JSON.parse(line));
        done();
      },
    });
    const config = loadConfig({
      SLACK_SIGNING_SECRET: 'secret',
      SLACK_BOT_TOKEN: TOKEN,
      SLACK_API_URL: standin.apiUrl,
      DATABASE_URL: db.url,
      PORT: '0',
      PUBLIC_URL: 'http://localhost',
      BULK_JOBS: 'inline',
    });
    roster = await startRoster({
      config,
      logger: createLogger('info', sink),
      host: '127.0.0.1',
    });
    // The first sync, queued at start, is done.
    await eventually(
      async () => (await roster.deps.directory.syncedAt(roster.orm.em.fork(), await account())) !== null,
    );
  });
  afterAll(async () => {
    await roster.stop();
    await standin.close();
    await db.drop();
  });

  const account = () => roster.orm.em.fork().findOneOrFail(Account, { teamId: 'T0001' });
  const ready = async () => {
    const res = await fetch(`${roster.url}/readyz`);
    return { status: res.status, body: (await res.json()) as Record<string, any> };
  };

  it('makes /readyz say so, logs it once, and holds bulk work back instead of calling Slack again and again', async () => {
    expect((await ready()).status).toBe(200);
    revoke(standin, 'xoxb-the-reinstalled-one');
    const before = standin.calls.length;
    const sync = async () => roster.jobs.send(DIRECTORY_JOBS.sync, { force: true });
    // Syncs that had their try and were queued again to wait (their copies start a minute later).
    const tried = async () => {
      const [row] = await query<{ n: number }>(
        roster.orm.em.fork(),
        sql`select count(*)::int as n from pgboss.job where name = ${DIRECTORY_JOBS.sync} and state = 'created'
              and start_after > now() + interval '30 seconds'`,
      );
      return row!.n;
    };
    await sync();

    const said = await eventually(async () => {
      const r = await ready();
      return r.body.checks.slack === 'token refused' ? r : undefined;
    });
    // Still in the load balancer: the web pages and the API work without Slack.
    expect(said.status).toBe(200);
    expect(said.body.reasons).toEqual([]);
    expect(said.body.warnings).toEqual([
      expect.stringMatching(
        /^Slack no longer accepts SLACK_BOT_TOKEN \(invalid_auth\) since .*reinstalls Roster/,
      ),
    ]);

    // More bulk work meanwhile waits for the token to be taken again, without asking Slack.
    await eventually(async () => (await tried()) >= 1 || undefined);
    await sync();
    await sync();
    await eventually(async () => (await tried()) >= 3 || undefined);
    // Logged once for the queue, saying why; the rest are counted in one line a minute.
    expect(
      lines.filter((l) => l.level === 30 && /Slack no longer accepts the bot token/.test(l.msg)),
    ).toEqual([
      expect.objectContaining({
        queue: DIRECTORY_JOBS.sync,
        waiting: 1,
        msg: expect.stringMatching(
          /^1 job of slack\.directory-sync waits: Slack no longer accepts the bot token \(invalid_auth\)/,
        ),
      }),
    ]);
    // Only the first sync's first call reached Slack.
    expect(standin.calls.slice(before).map((c) => c.method)).toEqual(['auth.test']);
    // Said once, as an error, whatever the number of calls refused.
    const errors = lines.filter((l) => l.level >= 50).map((l) => l.msg);
    expect(errors).toEqual([said.body.warnings[0]]);
    // Nothing of the token in the logs.
    expect(JSON.stringify(lines)).not.toContain(TOKEN);

    // Slack takes the token again (the app's install restored): the next check (one a minute) finds it, and
    // Roster is ready, and the waiting sync is done.
    revoke(standin, TOKEN);
    await roster.tokenWatch.recheck();
    const again = await ready();
    expect(again.body.checks.slack).toBe('ok');
    expect(again.body.warnings).toBeUndefined();
    expect(lines.some((l) => l.level === 30 && /Slack accepts SLACK_BOT_TOKEN again/.test(l.msg))).toBe(true);
    // The syncs that met the refusal wait in the queue for their next try, not failed.
    const [row] = await query<{ n: number }>(
      roster.orm.em.fork(),
      sql`select count(*)::int as n from pgboss.job where name = ${DIRECTORY_JOBS.sync} and state = 'created'`,
    );
    expect(row!.n).toBeGreaterThanOrEqual(1);
    const [failed] = await query<{ n: number }>(
      roster.orm.em.fork(),
      sql`select count(*)::int as n from pgboss.job where name = ${DIRECTORY_JOBS.sync} and state in ('failed', 'retry')`,
    );
    expect(failed!.n).toBe(0);
  });
});

describe('Slack telling Roster it was uninstalled, or its bot token revoked', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp({ seatLimit: 10 });
    await eventually(
      async () =>
        (await jobsDrained(t.em()).then(() => true)) &&
        (await t.roster.deps.directory.syncedAt(t.em(), await t.account())) !== null,
    );
  });
  afterAll(() => t.stop());

  const readyz = async () => {
    const res = await fetch(`${t.url}/readyz`);
    return { status: res.status, body: (await res.json()) as Record<string, any> };
  };

  it('says so on /readyz from that moment, and bulk work waits without calling Slack', async () => {
    // A user's token revoked is not Roster's bot token.
    await t.slack.event({ type: 'tokens_revoked', tokens: { oauth: ['UADMIN'] } });
    expect((await readyz()).body.checks.slack).toBe('ok');

    await t.slack.event({ type: 'app_uninstalled' });
    const r = await readyz();
    expect(r.status).toBe(200);
    expect(r.body.checks.slack).toBe('token refused');
    expect(r.body.reasons).toEqual([]);
    expect(r.body.warnings).toEqual([expect.stringMatching(/\(app_uninstalled\).*reinstalls Roster/)]);
    // The invitation and join pages stay up for the emails' links.
    expect((await fetch(`${t.url}/join/unknown-token`)).status).toBe(404);

    const before = t.standin.callsTo('users.list').length;
    const done = await syncsDone(t);
    await t.roster.jobs.send(DIRECTORY_JOBS.sync, { force: true });
    // The sync's job has had its try: queued again, for when Slack takes the token.
    await eventually(async () => (await syncsDone(t)) > done || undefined);
    expect(t.standin.callsTo('users.list').length).toBe(before);
  });

  it('still invites a workspace member meanwhile, by email since no DM can be sent', async () => {
    expect((await readyz()).body.checks.slack).toBe('token refused');
    await t.slack.command('/invite', 'mia@acme.test', { user: 'UADMIN' });
    await t.slack.submitView(t.standin.lastOpenedView(), {}, { user: 'UADMIN' });
    await t.smtp.waitForMail((m) => m.toText === 'mia@acme.test');
    const user = await t.em().findOneOrFail(User, { email: 'mia@acme.test' });
    const invitation = await eventually(() =>
      t.em().findOne(Invitation, { user: user.id, deliveryMethod: 'email' }),
    );
    expect(invitation.deliveredAt).not.toBeNull();
    // No DM was tried with the token Slack refuses.
    expect(t.standin.callsTo('chat.postMessage').filter((c) => c.args.channel === 'UMANAGER')).toEqual([]);
  });
});

describe('a bot token refused to the bulk jobs thread (BULK_JOBS=thread, the default)', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startWithBulkThread();
  });
  afterAll(async () => {
    revoke(t.standin, BOT_TOKEN);
    await t.stop();
  });

  it('makes /readyz say so, though the thread that answers Slack made no call', async () => {
    revoke(t.standin, 'xoxb-the-reinstalled-one');
    await t.roster.jobs.send(DIRECTORY_JOBS.sync, { force: true });
    const res = await eventually(async () => {
      const r = await fetch(`${t.url}/readyz`);
      const body = (await r.json()) as Record<string, any>;
      return body.checks.slack === 'token refused' ? { status: r.status, body } : undefined;
    }, 20_000);
    expect(res.status).toBe(200);
    expect(res.body.warnings).toEqual([expect.stringMatching(/\(invalid_auth\)/)]);
  });
});

describe('Slack telling Roster it was uninstalled, with bulk work in its own thread', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startWithBulkThread();
  });
  afterAll(() => t.stop());

  it("holds the thread's bulk work back at once, before any of its own calls is refused", async () => {
    await t.slack.event({ type: 'app_uninstalled' });
    const done = await syncsDone(t);
    const before = t.standin.calls.length;
    await t.roster.jobs.send(DIRECTORY_JOBS.sync, { force: true });
    // The thread works the sync: it has had its try (queued again for when Slack takes the token)...
    await eventually(async () => (await syncsDone(t)) > done || undefined, 20_000);
    // ...without a single call to Slack, though nothing Slack answered had refused the token yet.
    expect(t.standin.calls.slice(before).map((c) => c.method)).toEqual([]);
  });
});
