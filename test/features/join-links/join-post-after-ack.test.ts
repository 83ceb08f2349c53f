import pg from 'pg';
import { AuditEvent } from '../../../src/features/audit/audit-event.entity.ts';
import { JoinLink } from '../../../src/features/join-links/join-link.entity.ts';
import { eventually, startTestApp, type TestApp } from '../../support/app.ts';
import type { PostedMessage } from '../../support/slack-standin.ts';
import { findButton, textOf } from '../../support/views.ts';

// Slack's request is answered at the ack, as in production: the form's answer is timed as Slack times it,
// and what Roster does after it (posting the link, telling the admin) is awaited through its effects.

let t: TestApp;

beforeAll(async () => {
  t = await startTestApp({ seatLimit: 1000, processBeforeResponse: false });
});
afterAll(async () => {
  await t.stop();
});

/** Opens the form as the admin and submits it for `channel`; returns Slack's answer and how long it took. */
async function submit(channel: string) {
  const opened = t.standin.callsTo('views.open').length;
  await t.slack.command('/joinlink', '', { user: 'UADMIN', channel });
  // The command opens the form after its own ack.
  await eventually(() => t.standin.callsTo('views.open').length > opened);
  const view = t.standin.lastOpenedView();
  const sentAt = performance.now();
  const res = await t.slack.submitView(view, { channel }, { user: 'UADMIN' });
  return { res, tookMs: performance.now() - sentAt };
}

/** The next DM to the admin that mentions `channel`, after the `since`th message. */
const dmAbout = (channel: string, since: number, timeoutMs = 10_000) =>
  t.standin.waitForMessage(
    (m) => t.standin.messages.indexOf(m) >= since && m.channel === 'DUADMIN' && textOf(m).includes(channel),
    timeoutMs,
  );
const postsIn = (channel: string, since: number): PostedMessage[] =>
  t.standin.messages.slice(since).filter((m) => m.method === 'chat.postMessage' && m.channel === channel);
const linkCount = () => t.em().count(JoinLink, {});

describe('the join link form is answered before Slack takes the post', () => {
  it('closes at once while Slack takes 4 s to post, then keeps the link and tells the admin it was posted', async () => {
    const since = t.standin.messages.length;
    t.standin.delayNext('chat.postMessage', 4000);
    const { res, tookMs } = await submit('C0GENERAL');
    // The form closed (no errors), and long before the post was taken.
    expect(res.status).toBe(200);
    expect(res.json?.errors).toBeUndefined();
    expect(tookMs).toBeLessThan(1500);
    expect(postsIn('C0GENERAL', since)).toHaveLength(0);

    const dm = await dmAbout('C0GENERAL', since);
    expect(dm.text).toMatch(
      /^:white_check_mark: Posted a join link in <#C0GENERAL>: people join as Employee/,
    );
    const [message] = postsIn('C0GENERAL', since);
    const linkId = findButton(message!.blocks, 'Join').action.value as string;
    const link = await t.em().findOneOrFail(JoinLink, linkId);
    expect(link).toMatchObject({ channelId: 'C0GENERAL', messageTs: message!.ts, revokedAt: null });
    expect(await t.em().count(AuditEvent, { action: 'join_link.created', subjectId: linkId })).toBe(1);
    // Nothing is taken down: the message and its link stand.
    expect(t.standin.callsTo('chat.delete')).toHaveLength(0);
  });

  it('closes at once while another change holds the account, then posts once it is free', async () => {
    const since = t.standin.messages.length;
    const other = new pg.Client({ connectionString: t.db.url });
    await other.connect();
    await other.query('begin');
    await other.query('select id from account for update');
    try {
      t.standin.delayNext('chat.postMessage', 2000);
      const { res, tookMs } = await submit('C0GENERAL');
      expect(res.json?.errors).toBeUndefined();
      expect(tookMs).toBeLessThan(1500);
    } finally {
      await new Promise((r) => setTimeout(r, 1000));
      await other.query('commit');
      await other.end();
    }
    expect((await dmAbout('C0GENERAL', since)).text).toContain('Posted a join link in <#C0GENERAL>');
    expect(postsIn('C0GENERAL', since)).toHaveLength(1);
  });

  it.each([
    ['not_in_channel', 'CPRIVATE', /Roster cannot post in <#CPRIVATE>: .*Add Roster to it/],
    ['channel_not_found', 'CGONE', /Roster cannot post in <#CGONE>: .*no longer exists/],
    ['is_archived', 'COLD', /<#COLD> is archived\. Choose another channel/],
  ])(
    'closes at once when Slack answers %s, tells the admin why by DM, and keeps no link',
    async (error, channel, why) => {
      const before = await linkCount();
      const since = t.standin.messages.length;
      t.standin.failNext('chat.postMessage', error, 1, (a) => a.channel === channel);
      const { res, tookMs } = await submit(channel);
      expect(res.json?.errors).toBeUndefined();
      expect(tookMs).toBeLessThan(1500);
      const dm = await dmAbout(channel, since);
      expect(dm.text).toMatch(/^:no_entry: No join link was made\. /);
      expect(dm.text).toMatch(why);
      expect(await linkCount()).toBe(before);
      expect(await t.em().count(AuditEvent, { action: 'join_link.created' })).toBe(before);
    },
  );

  it('posts once when Slack sends the same submission again while the first is still posting', async () => {
    const before = await linkCount();
    const since = t.standin.messages.length;
    t.standin.delayNext('chat.postMessage', 1500);
    const { res } = await submit('C0GENERAL');
    const again = await res.resend();
    expect(again.json?.errors).toBeUndefined();
    await dmAbout('C0GENERAL', since);
    // Whatever else was to come has had time to.
    await new Promise((r) => setTimeout(r, 1500));
    expect(postsIn('C0GENERAL', since)).toHaveLength(1);
    const told = t.standin.messages
      .slice(since)
      .filter((m) => m.channel === 'DUADMIN' && textOf(m).includes('Posted a join link'));
    expect(told).toHaveLength(1);
    expect(await linkCount()).toBe(before + 1);
  });

  it('answers a Join click at once while Slack takes 4 s to say who clicked, then tells them they joined', async () => {
    const since = t.standin.messages.length;
    await submit('C0GENERAL');
    await dmAbout('C0GENERAL', since);
    const [message] = postsIn('C0GENERAL', since);
    // Someone the directory mirror has not seen yet: Roster asks Slack who they are, after the ack.
    t.standin.addMember({ id: 'UNEWCOMER', name: 'nia', realName: 'Nia Newcomer', email: 'nia@acme.test' });
    t.standin.delayNext('users.info', 4000);
    const responses = t.standin.responses.length;
    const sentAt = performance.now();
    const res = await t.slack.clickButton(message!, 'Join', { user: 'UNEWCOMER' });
    expect(res.status).toBe(200);
    expect(performance.now() - sentAt).toBeLessThan(1500);
    const answer = await t.standin.waitForResponse(
      (r) => t.standin.responses.indexOf(r) >= responses,
      10_000,
    );
    expect(textOf(answer.body)).toBe(':tada: You joined Acme as an employee. Welcome!');
  });
});
