/**
 * Requests signed with Roster's secret but from a Slack workspace that has not installed Roster (a shared
 * channel, an org-wide app, a forged team id): refused before anything is looked up or written.
 */
import { Writable } from 'node:stream';
import { User } from '../../src/features/people/user.entity.ts';
import { SeatRequest } from '../../src/features/seats/seat-request.entity.ts';
import { createLogger } from '../../src/shared/logger.ts';
import { NOT_INSTALLED } from '../../src/slack/app.ts';
import { BOT_TOKEN, eventually, SIGNING_SECRET, startTestApp, type TestApp } from '../support/app.ts';
import { SlackDriver } from '../support/slack-driver.ts';
import { textOf } from '../support/views.ts';

const STRANGER_TEAM = 'T0STRANGER';
let t: TestApp;
let stranger: SlackDriver;
const logLines: string[] = [];

beforeAll(async () => {
  const sink = new Writable({
    write(chunk, _enc, done) {
      logLines.push(String(chunk));
      done();
    },
  });
  t = await startTestApp({ seatLimit: 5, logger: createLogger('info', sink) });
  stranger = new SlackDriver({
    appUrl: t.url,
    signingSecret: SIGNING_SECRET,
    standin: t.standin,
    teamId: STRANGER_TEAM,
  });
});
afterAll(() => t.stop());

/** Rows in every table Roster writes: its own and the job queue's. */
async function rowCounts(): Promise<Record<string, number>> {
  const conn = t.em().getConnection();
  const tables = await conn.execute<{ name: string }[]>(
    `select table_schema || '.' || table_name as name from information_schema.tables
      where table_schema in ('public', 'pgboss') and table_type = 'BASE TABLE' order by 1`,
  );
  const counts: Record<string, number> = {};
  for (const { name } of tables) {
    const [schema, table] = name.split('.');
    const [row] = await conn.execute<{ n: number }[]>(
      `select count(*)::int as n from "${schema}"."${table}"`,
    );
    counts[name] = row!.n;
  }
  return counts;
}

/** A member's paid seat request in the installed workspace, and its message in the admin's DM. */
async function pendingRequest() {
  const em = t.em();
  const account = await t.account();
  const user = em.create(User, { account, email: 'locked@example.com', role: 'employee', status: 'locked' });
  await em.flush();
  const requester = { slackUserId: 'UMANAGER', isAdmin: false, surface: 'slack' as const };
  const result = await t.roster.deps.people.unlock(t.em(), account, requester, user.id);
  if (result.status !== 'requested') throw new Error('expected a seat request');
  const message = await eventually(() =>
    t.standin.messages.find(
      (m) => m.channel === 'DUADMIN' && JSON.stringify(m.blocks ?? []).includes(result.request.id),
    ),
  );
  return { requestId: result.request.id, userId: user.id, message };
}

describe('a workspace that has not installed Roster', () => {
  it('is refused on every surface: no rows anywhere, no Slack calls, a plain ack, a log line', async () => {
    const { requestId, userId, message } = await pendingRequest();
    await t.slack.command('/invite', 'ana@example.com', { user: 'UADMIN' });
    const inviteView = t.standin.lastOpenedView();
    const rowsBefore = await rowCounts();
    const accountsBefore = rowsBefore['public.account'];
    const callsBefore = t.standin.calls.length;
    const repliesBefore = t.standin.responses.length;
    logLines.length = 0;

    const seats = await stranger.command('/seats', '99', { user: 'UADMIN' });
    const replies = [
      seats,
      await stranger.command('/invite', 'eve@example.com', { user: 'UADMIN' }),
      await stranger.command('/joinlink', '', { user: 'UADMIN' }),
      await stranger.command('/contact', 'find max', { user: 'UADMIN' }),
      await stranger.clickButton(message, { text: 'Approve' }, { user: 'UADMIN' }),
      await stranger.submitView(inviteView, { emails: 'eve@example.com' }, { user: 'UADMIN' }),
      await stranger.shortcut({ user: 'UADMIN', callbackId: 'invite_people' }),
      await stranger.event({ type: 'app_home_opened', user: 'UADMIN', tab: 'home', channel: 'DUADMIN' }),
      await stranger.event({
        type: 'user_change',
        user: { id: 'UMANAGER', deleted: true, profile: { email: 'locked@example.com' } },
      }),
      await stranger.event({
        type: 'message',
        subtype: 'file_share',
        channel: 'DUADMIN',
        channel_type: 'im',
        user: 'UADMIN',
        files: [{ id: 'F0STRANGER', name: 'people.csv' }],
      }),
    ];

    for (const res of replies) expect(res.status).toBe(200);
    expect(seats.json).toMatchObject({ response_type: 'ephemeral', text: NOT_INSTALLED });
    for (const res of replies.slice(1)) expect(res.body).not.toContain('response_action');
    expect(await rowCounts()).toEqual(rowsBefore);
    expect(accountsBefore).toBe(1);
    expect(t.standin.calls.slice(callsBefore).map((c) => c.method)).toEqual([]);
    expect(t.standin.responses.length).toBe(repliesBefore);
    expect((await t.em().findOneOrFail(SeatRequest, requestId)).status).toBe('pending');
    expect((await t.em().findOneOrFail(User, userId)).status).toBe('locked');
    expect((await t.account()).seatLimit).toBe(5);

    const refusals = logLines.map((l) => JSON.parse(l)).filter((l) => l.msg.includes('not installed'));
    expect(refusals).toHaveLength(replies.length);
    expect(refusals[0]).toMatchObject({ level: 40, team: STRANGER_TEAM, surface: 'command:/seats' });
    const logs = logLines.join('');
    expect(logs).not.toContain(SIGNING_SECRET);
    expect(logs).not.toContain(BOT_TOKEN);
  });

  it('leaves the installed workspace working as before', async () => {
    const res = await t.slack.command('/seats', '', { user: 'UMEMBER' });
    expect(res.status).toBe(200);
    const reply = await t.standin.waitForResponse((r) => textOf(r.body).includes('Paid seats'));
    expect(textOf(reply.body)).toMatch(/Paid seats:\* 0 of 5 used/);
    await t.slack.command('/seats', '7', { user: 'UADMIN' });
    await t.standin.waitForResponse((r) => JSON.stringify(r.body).includes('limit is now 7'));
    expect((await t.account()).seatLimit).toBe(7);
  });

  it('reads the account settings as another Roster instance left them, on the next request', async () => {
    const conn = t.em().getConnection();
    await conn.execute(
      `update account set allowed_email_domains = '{acme.test}', approval_channel_id = 'CAPPROVALS'
        where team_id = 'T0001'`,
    );
    // A command: the settings are read right after its ack.
    await t.slack.command('/joinlink', '', { user: 'UADMIN' });
    const domains = findInput(t.standin.lastOpenedView(), 'domains');
    expect(domains?.initial_value).toBe('acme.test');
    // An event: Slack has its ack before Roster looks at anything.
    await t.slack.event({ type: 'app_home_opened', user: 'UADMIN', tab: 'home', channel: 'DUADMIN' });
    const home = await t.standin.waitForCall('views.publish', (c) => c.args.user_id === 'UADMIN');
    expect(textOf(home.args.view)).toContain('Requests go to <#CAPPROVALS>');

    await conn.execute(`update account set allowed_email_domains = '{}' where team_id = 'T0001'`);
    await t.slack.command('/joinlink', '', { user: 'UADMIN' });
    expect(findInput(t.standin.lastOpenedView(), 'domains')?.initial_value).toBeUndefined();
  });
});

/** The element of a view's input block, by block id. */
function findInput(
  view: { blocks?: { block_id?: string; element?: Record<string, unknown> }[] },
  blockId: string,
) {
  return view.blocks?.find((b) => b.block_id === blockId)?.element;
}
