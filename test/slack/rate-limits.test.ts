import { initORM, type ORM } from '../../src/db/orm.ts';
import { query, sql } from '../../src/db/sql.ts';
import { Invitation } from '../../src/features/invites/invitation.entity.ts';
import { User } from '../../src/features/people/user.entity.ts';
import { createLogger } from '../../src/shared/logger.ts';
import { SLACK_CALL_JOB } from '../../src/slack/later.ts';
import { bucketsFor, isSlackBusy, PacedWebClient, SlackBusy, SlackPacer } from '../../src/slack/pacing.ts';
import {
  BOT_TOKEN,
  DEFAULT_MEMBERS,
  eventually,
  jobsDrained,
  startTestApp,
  type TestApp,
} from '../support/app.ts';
import type { Member } from '../support/slack-standin.ts';

const crowd = (prefix: string, n: number): Member[] =>
  Array.from({ length: n }, (_, i) => ({
    id: `U${prefix}${String(i).padStart(3, '0')}`,
    name: `${prefix.toLowerCase()}${i}`,
    email: `${prefix.toLowerCase()}${i}@acme.test`,
  }));
const FIRST = crowd('FIRST', 50);
const BURST = crowd('BURST', 100);
const OTHERS = crowd('OTHER', 20);

let t: TestApp;

beforeAll(async () => {
  // Slack's documented tiers, as the stand-in enforces them by default for every test.
  t = await startTestApp({ seatLimit: 500, members: [...DEFAULT_MEMBERS, ...FIRST, ...BURST, ...OTHERS] });
  await eventually(async () => (await t.roster.deps.directory.syncedAt(t.em(), await t.account())) !== null);
});
afterAll(() => t.stop());

const invite = async (user: string, members: Member[]) => {
  await t.slack.command('/invite', '', { user });
  await t.slack.submitView(
    t.standin.lastOpenedView(),
    { emails: members.map((m) => m.email).join(' '), role: 'client' },
    { user },
  );
};
const dmsTo = (m: Member) =>
  t.standin.messages.filter(
    (msg) =>
      msg.method === 'chat.postMessage' && msg.channel === `D${m.id}` && /invited you/.test(String(msg.text)),
  );
const summaries = (user: string) =>
  t.standin.messages.filter(
    (m) =>
      m.method === 'chat.postMessage' && m.channel === `D${user}` && /^Invitations:/.test(String(m.text)),
  );
const delivered = (members: Member[]) =>
  t.em().count(Invitation, {
    user: { email: { $in: members.map((m) => m.email ?? '') } },
    deliveredAt: { $ne: null },
  });
const lastVersion = (ts: string) => t.standin.messages.filter((m) => m.ts === ts).at(-1);

/** A paced client that gives Slack 300 ms a try, two tries: a Slack that does not answer, in a test's time. */
const impatientClient = () =>
  new PacedWebClient(BOT_TOKEN, {
    pacer: new SlackPacer(() => t.em()),
    logger: createLogger('silent'),
    client: {
      slackApiUrl: t.standin.apiUrl,
      timeout: 300,
      retryConfig: { retries: 1, factor: 1, minTimeout: 10, maxTimeout: 10 },
    },
  });

describe("Slack's rate limits", () => {
  it('opens a form within 3 s of its trigger while invitation DMs wait out a 20 s Retry-After, then delivers each DM and the summary once', async () => {
    // Slack refuses chat.postMessage for a while, as it does when a workspace posts too much.
    t.standin.limitRate('chat.postMessage', { max: 3, windowMs: 60_000, retryAfter: 20 });
    await invite('UADMIN', FIRST);
    await eventually(() => t.standin.rateLimited.some((c) => c.method === 'chat.postMessage'), 15_000);

    // Someone types /invite meanwhile: the form opens before the trigger expires.
    const asked = Date.now();
    await t.slack.command('/invite', '', { user: 'UMANAGER' });
    const opened = await t.standin.waitForCall('views.open', (c) => c.at >= asked, 5000);
    expect(opened.at - asked).toBeLessThan(3000);
    expect(t.standin.lastOpenedView().callback_id).toBe('invite_modal');

    // One 429 holds chat.postMessage for every worker and instance: the queued DMs do not hammer Slack.
    const [held] = await query<{ held: boolean }>(
      t.em(),
      sql`select held_until > now() as held from slack_pace where key = 'method:chat.postMessage'`,
    );
    expect(held?.held).toBe(true);

    t.standin.clearRateLimit('chat.postMessage');
    await eventually(async () => (await delivered(FIRST)) === FIRST.length, 90_000);
    for (const m of FIRST) expect(dmsTo(m)).toHaveLength(1);
    expect(t.standin.rateLimited.filter((c) => c.method === 'chat.postMessage').length).toBeLessThan(10);
    // The summary was refused at first; it is posted once, when Slack allows, and ends with the count.
    await eventually(() => summaries('UADMIN').length === 1, 30_000);
    const ts = summaries('UADMIN')[0]!.ts;
    await eventually(
      () => /All 50 invitations delivered/.test(JSON.stringify(lastVersion(ts)?.blocks)),
      30_000,
    );
    expect(summaries('UADMIN')).toHaveLength(1);
  }, 150_000);

  it('tells the person at once, without waiting out the Retry-After, when Slack refuses to open their form', async () => {
    t.standin.limitRate('views.open', { max: 0, windowMs: 60_000, retryAfter: 30 });
    const asked = Date.now();
    await t.slack.command('/invite', '', { user: 'UMANAGER' });
    const told = await t.standin.waitForResponse((r) => /slow down for 30 seconds/.test(String(r.body.text)));
    expect(told.at - asked).toBeLessThan(3000);
    t.standin.clearRateLimit('views.open');
  });

  it('takes a 429 without Retry-After as Slack asking to slow down: the person is told how long to wait', async () => {
    t.standin.limitRate('views.open', { max: 0, windowMs: 60_000, withoutRetryAfter: true });
    try {
      const asked = Date.now();
      await t.slack.command('/invite', '', { user: 'UMANAGER' });
      const told = await t.standin.waitForResponse(
        (r) => r.at >= asked && /slow down|went wrong/i.test(String(r.body.text)),
      );
      expect(told.at - asked).toBeLessThan(3000);
      expect(told.body.text).toBe(
        ':hourglass: Slack asked Roster to slow down for 30 seconds. Please try again then.',
      );
    } finally {
      t.standin.clearRateLimit('views.open');
    }
  });

  it('previews a CSV dropped while Slack refuses posts: the preview comes late, never lost', async () => {
    await jobsDrained(t.em(), { timeoutMs: 60_000 });
    t.standin.limitRate('chat.postMessage', { max: 0, windowMs: 60_000, retryAfter: 2 });
    const csv = 'type,first_name,last_name,email,role\nuser,Busy,Day,busy@acme.test,client\n';
    await t.slack.fileShare('UADMIN', t.standin.addFile({ id: 'FBUSY1', name: 'busy.csv', content: csv }));
    // The "Reading…" message was refused; the import is recorded and its preview queued all the same.
    await eventually(() => t.standin.rateLimited.some((c) => c.method === 'chat.postMessage'));
    t.standin.clearRateLimit('chat.postMessage');
    const preview = await eventually(
      () =>
        t.standin.messages.find(
          (m) => m.channel === 'DUADMIN' && /Preview of busy\.csv/.test(String(m.text)),
        ),
      30_000,
    );
    await t.slack.clickButton(preview, 'Import 1 row', { user: 'UADMIN' });
    await eventually(() => t.em().findOne(User, { email: 'busy@acme.test' }), 30_000);
  }, 90_000);

  it("delivers a burst of 100 invitations and another of 20 within Slack's limits: every DM and summary once, with progress", async () => {
    await jobsDrained(t.em(), { timeoutMs: 60_000 });
    const limitedBefore = t.standin.rateLimited.length;
    // One round after the other, as fast as two admins can submit: their deliveries run together.
    await invite('UADMIN', BURST);
    await invite('UOWNER', OTHERS);
    const ts = await eventually(() => summaries('UADMIN').find((m) => /100 of 100/.test(String(m.text)))?.ts);
    await eventually(async () => (await delivered([...BURST, ...OTHERS])) === 120, 90_000);
    for (const m of [...BURST, ...OTHERS]) expect(dmsTo(m)).toHaveLength(1);

    // The inviter watched the count go up on their summary, which ends with the total.
    await eventually(
      () => /All 100 invitations delivered: 100 by Slack DM/.test(JSON.stringify(lastVersion(ts)?.blocks)),
      30_000,
    );
    const counts = t.standin.messages
      .filter((m) => m.ts === ts)
      .map((m) => JSON.stringify(m.blocks).match(/Delivering: (\d+) of 100/)?.[1])
      .filter(Boolean);
    expect(counts.length).toBeGreaterThan(0);
    expect(summaries('UADMIN').filter((m) => m.ts === ts)).toHaveLength(1);
    await eventually(() => summaries('UOWNER').length === 1);
    await jobsDrained(t.em(), { timeoutMs: 60_000 });
    expect(summaries('UOWNER')).toHaveLength(1);
    // Paced under Slack's limits: Slack never had to refuse a call.
    expect(t.standin.rateLimited.slice(limitedBefore)).toEqual([]);
  }, 150_000);
});

describe('a call put off while Slack was busy', () => {
  it.each(['chat.update', 'chat.delete'] as const)(
    'ends without retrying when the message is gone by then (%s)',
    async (method) => {
      t.standin.failNext(method, 'message_not_found');
      const id = await t.roster.deps.jobs.send(SLACK_CALL_JOB, {
        method,
        args: {
          channel: 'C0GENERAL',
          ts: '1700000000.000900',
          ...(method === 'chat.update' ? { text: 'x' } : {}),
        },
      });
      await jobsDrained(t.em(), { queues: [SLACK_CALL_JOB] });
      const [job] = await query<{ state: string; retry_count: number }>(
        t.em(),
        sql`select state, retry_count from pgboss.job where id = ${id}`,
      );
      expect(job).toEqual({ state: 'completed', retry_count: 0 });
      expect(t.standin.callsTo(method).filter((c) => c.args.ts === '1700000000.000900')).toHaveLength(1);
    },
  );
});

describe('pacing shared between instances', () => {
  let other: ORM;
  beforeAll(async () => {
    other = await initORM(t.db.url);
  });
  afterAll(() => other.close(true));

  it('takes turns from one bucket in Postgres, and a Retry-After held by one instance holds the other', async () => {
    const one = new SlackPacer(() => t.em());
    const two = new SlackPacer(() => other.em.fork());
    const bucket = { key: 'method:test.shared', perMinute: 60, burst: 2 };
    expect(await one.take(bucket)).toBe(0);
    expect(await two.take(bucket)).toBe(0);
    // Both tokens are spent: the next turn is about a second away, whichever instance asks.
    const wait = await one.take(bucket);
    expect(wait).toBeGreaterThan(500);
    expect(wait).toBeLessThanOrEqual(1000);
    await two.hold(bucket.key, 30_000);
    expect(await one.take(bucket)).toBeGreaterThan(29_000);
  });

  it('holds a method for every instance when Slack answers 429 without Retry-After, and the job waits without spending a retry', async () => {
    const pacer = new SlackPacer(() => t.em());
    const client = new PacedWebClient(BOT_TOKEN, {
      pacer,
      logger: createLogger('silent'),
      client: { slackApiUrl: t.standin.apiUrl },
    });
    t.standin.limitRate('conversations.info', { max: 0, windowMs: 60_000, withoutRetryAfter: true });
    try {
      const err = await client.conversations.info({ channel: 'CGENERAL' }).catch((e: unknown) => e);
      // A wait (the job is queued again, see TryLater), not a failure that spends the job's retries.
      expect(err).toBeInstanceOf(SlackBusy);
      expect(isSlackBusy(err)).toBe(true);
      expect((err as SlackBusy).retryInMs).toBe(30_000);
      // Held for every instance: another one's turn is about 30 s away too.
      const other = new SlackPacer(() => t.em());
      const wait = await other.take(bucketsFor('conversations.info', {})[0]!);
      expect(wait).toBeGreaterThan(25_000);
      expect(wait).toBeLessThanOrEqual(30_000);
      expect(t.standin.rateLimited.filter((c) => c.method === 'conversations.info')).toHaveLength(1);
    } finally {
      t.standin.clearRateLimit('conversations.info');
    }
  });

  it('makes a call Slack never answers a wait of the job (not a failure) once every try has run out of time', async () => {
    const client = impatientClient();
    // The test before holds conversations.info for every instance: this one starts with Slack's turn open.
    await query(t.em(), sql`delete from slack_pace where key = 'method:conversations.info'`);
    t.standin.delayNext('conversations.info', 3_000, 2);
    const started = Date.now();
    const err = await client.conversations.info({ channel: 'CGENERAL' }).catch((e: unknown) => e);
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(err).toBeInstanceOf(SlackBusy);
    expect(isSlackBusy(err)).toBe(true);
    expect((err as SlackBusy).retryInMs).toBe(30_000);
    // Slack answering again, the next call goes through.
    await expect(client.conversations.info({ channel: 'CGENERAL' })).resolves.toMatchObject({ ok: true });
  });

  it('ends a wait for a turn at once when Roster stops, so the job is queued again rather than outliving the stop', async () => {
    const pacer = new SlackPacer(() => t.em());
    const client = new PacedWebClient(BOT_TOKEN, {
      pacer,
      logger: createLogger('silent'),
      client: { slackApiUrl: t.standin.apiUrl },
    });
    // Within the 10 s a job may wait in the process: the call sleeps until its turn.
    await pacer.hold('method:users.info', 6_000);
    const started = Date.now();
    const call = client.users.info({ user: 'UMEMBER' }).then(
      () => 'answered',
      (err: Error) => err.name,
    );
    await new Promise((r) => setTimeout(r, 200));
    client.close();
    expect(await call).toBe('SlackBusy');
    expect(Date.now() - started).toBeLessThan(2_000);
    // And a call made after the stop does not wait at all.
    await expect(client.users.info({ user: 'UMEMBER' })).rejects.toMatchObject({ name: 'SlackBusy' });
  });
});

describe('a DM Slack did not answer in time', () => {
  const TEXT = 'Adam Admin invited you to Acme as a client';
  const invitation = (id: string) => ({
    channel: 'UMEMBER',
    text: TEXT,
    blocks: [
      {
        type: 'actions',
        block_id: `invitation:${id}`,
        elements: [
          {
            type: 'button',
            action_id: 'invite_accept',
            text: { type: 'plain_text', text: 'Accept' },
            value: id,
          },
        ],
      },
    ],
  });
  const dms = () => t.standin.messagesTo('UMEMBER').filter((m) => m.text === TEXT);

  it('is looked for, not posted again, and a DM of the same text with other buttons is a post of its own', async () => {
    const client = impatientClient();
    // Made at once, answered after the client stopped waiting: found in the conversation, not made again.
    t.standin.answerLate('chat.postMessage', 1_000, 1);
    const first = await client.chat.postMessage(invitation('I1'));
    expect(dms()).toHaveLength(1);
    expect(first).toMatchObject({ ok: true, ts: dms()[0]!.ts });

    // Made only once Slack answers: not there yet, so the job waits (and the client does not post it again).
    t.standin.delayNext('chat.postMessage', 1_000, 1);
    await expect(client.chat.postMessage(invitation('I2'))).rejects.toBeInstanceOf(SlackBusy);
    await eventually(() => dms().length === 2 || null);
    expect(dms()).toHaveLength(2);

    // Another invitation to the same person, same text: its own Accept button makes it a post of its own,
    // even while the one before is still looked for.
    const third = await client.chat.postMessage(invitation('I3'));
    expect(dms()).toHaveLength(3);
    expect(third.ts).toBe(dms()[2]!.ts);

    // The job of the second tries again while Slack refuses to let it read the DM: not knowing whether it
    // was posted, it waits rather than posting it blindly.
    t.standin.limitRate('conversations.history', { max: 0, windowMs: 60_000, retryAfter: 30 });
    try {
      await expect(client.chat.postMessage(invitation('I2'))).rejects.toBeInstanceOf(SlackBusy);
      expect(dms()).toHaveLength(3);
    } finally {
      t.standin.clearRateLimit('conversations.history');
      await query(t.em(), sql`delete from slack_pace where key = 'method:conversations.history'`);
    }

    // It tries again once Slack allows: it finds its DM, made meanwhile, and posts nothing.
    const again = await client.chat.postMessage(invitation('I2'));
    expect(dms()).toHaveLength(3);
    expect(again.ts).toBe(dms()[1]!.ts);
  });
});
