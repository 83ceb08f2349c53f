import { AuditEvent } from '../../../src/features/audit/audit-event.entity.ts';
import { User } from '../../../src/features/people/user.entity.ts';
import { SeatRequest } from '../../../src/features/seats/seat-request.entity.ts';
import { DEFAULT_MEMBERS, eventually, jobsDrained, startTestApp, type TestApp } from '../../support/app.ts';
import type { Member, PostedMessage } from '../../support/slack-standin.ts';
import { textOf } from '../../support/views.ts';

// Fourteen admins: the owner, Adam and twelve more. Posting a request to each takes a while at Slack's pace.
const MORE_ADMINS: Member[] = Array.from({ length: 12 }, (_, i) => ({
  id: `UADM${String(i).padStart(2, '0')}`,
  name: `admin${i}`,
  email: `admin${i}@acme.test`,
  isAdmin: true,
}));
const ADMINS = ['UOWNER', 'UADMIN', ...MORE_ADMINS.map((m) => m.id)];

let t: TestApp;

beforeAll(async () => {
  t = await startTestApp({ seatLimit: 10, members: [...DEFAULT_MEMBERS, ...MORE_ADMINS] });
});
afterAll(() => t.stop());

/** A locked employee whose unlocking by a manager files a seat request. */
async function pendingRequest(email: string) {
  const em = t.em();
  const account = await t.account();
  const user = em.create(User, { account, email, role: 'employee', status: 'locked' });
  await em.flush();
  const requester = { slackUserId: 'UMANAGER', isAdmin: false, surface: 'slack' as const };
  const result = await t.roster.deps.people.unlock(t.em(), account, requester, user.id);
  if (result.status !== 'requested') throw new Error('expected a seat request');
  return result.request.id;
}

const copiesOf = (requestId: string) =>
  t.standin.messages.filter(
    (m) =>
      m.method === 'chat.postMessage' &&
      ADMINS.some((a) => m.channel === `D${a}`) &&
      JSON.stringify(m.blocks ?? []).includes(requestId),
  );

/** A copy as the admin now sees it: the last redraw of it, or as it was posted. */
const asSeen = (copy: PostedMessage) =>
  t.standin.messages.findLast((m) => m.method === 'chat.update' && m.ts === copy.ts) ?? copy;

const hasButtons = (m: PostedMessage) =>
  JSON.stringify(m.blocks ?? []).includes('"seat_approve') ||
  JSON.stringify(m.blocks ?? []).includes('"seat_reject"');

describe('a request decided while its copies are still being posted to the admins', () => {
  it('leaves no admin a copy with live buttons, and a stale button only says it was decided', async () => {
    // Each post takes 0.4 s, as when Slack paces Roster's posts to dozens of admins.
    t.standin.delayNext('chat.postMessage', 400, ADMINS.length);
    const requestId = await pendingRequest('late@example.com');

    const first = await eventually(() => copiesOf(requestId)[0], 30_000);
    const admin = first.channel.slice(1);
    const click = await t.slack.clickButton(first, { actionId: 'seat_approve' }, { user: admin });
    expect(click.status).toBe(200);
    expect((await t.em().findOneOrFail(SeatRequest, requestId)).status).toBe('approved');

    await jobsDrained(t.em(), { timeoutMs: 30_000 });
    const copies = copiesOf(requestId);
    // Admins not yet asked when the request was decided are not sent it.
    expect(copies.length).toBeLessThan(ADMINS.length);
    for (const copy of copies) {
      const seen = asSeen(copy);
      expect(hasButtons(seen)).toBe(false);
      expect(textOf(seen)).toContain(`Approved by <@${admin}>`);
    }

    // Another admin clicking the buttons of the copy as it was before the redraw changes nothing and is told so.
    const other = admin === 'UOWNER' ? 'UADMIN' : 'UOWNER';
    const before = t.standin.responses.length;
    const opened = t.standin.callsTo('views.open').length;
    await t.slack.clickButton(first, { actionId: 'seat_approve' }, { user: other });
    await t.slack.clickButton(first, { actionId: 'seat_reject' }, { user: other });
    const answers = t.standin.responses.slice(before);
    expect(answers).toHaveLength(2);
    for (const answer of answers) {
      expect(answer.body.response_type).toBe('ephemeral');
      expect(answer.body.text).toContain('The request for late@example.com was already decided.');
    }
    expect(t.standin.callsTo('views.open').length).toBe(opened);
    const request = await t.em().findOneOrFail(SeatRequest, requestId);
    expect(request).toMatchObject({ status: 'approved', decidedBy: admin });
    expect(await t.em().count(AuditEvent, { action: 'seat_request.approved', subjectId: requestId })).toBe(1);
  }, 60_000);

  for (const where of ['the admins’ DMs', 'the approval channel'] as const) {
    it(`redraws a copy to ${where} whose post was under way when an admin decided`, async () => {
      const account = await t.account();
      await t
        .em()
        .getConnection()
        .execute('update account set approval_channel_id = ? where id = ?', [
          where === 'the approval channel' ? 'C0GENERAL' : null,
          account.id,
        ]);
      const email = where === 'the approval channel' ? 'mid-channel@example.com' : 'mid-dm@example.com';
      let decided = false;
      // While Slack takes the first copy, another admin approves; the approval's redraw
      // of the copies saved so far runs before that copy is saved.
      t.standin.whileAnswering('chat.postMessage', async (args) => {
        if (decided || !JSON.stringify(args.blocks ?? []).includes('seat_request:')) return;
        decided = true;
        const [row] = await t
          .em()
          .getConnection()
          .execute<{ id: string }[]>('select id from seat_request where email = ?', [email]);
        const result = await t.roster.deps.seats.decide(t.em(), await t.account(), {
          requestId: row!.id,
          actor: { slackUserId: 'UOWNER', isAdmin: true, surface: 'slack' },
          decision: 'approve',
        });
        expect(result.outcome).toBe('approved');
        await jobsDrained(t.em(), { queues: ['seats.request-decided'] });
      });
      try {
        const requestId = await pendingRequest(email);
        await eventually(() => decided);
        await jobsDrained(t.em(), { timeoutMs: 30_000 });
        const copies = t.standin.messages.filter(
          (m) => m.method === 'chat.postMessage' && JSON.stringify(m.blocks ?? []).includes(requestId),
        );
        expect(copies).toHaveLength(1);
        const seen = asSeen(copies[0]!);
        expect(hasButtons(seen)).toBe(false);
        expect(textOf(seen)).toContain('Approved by <@UOWNER>');
      } finally {
        t.standin.whileAnswering('chat.postMessage', null);
      }
    }, 60_000);
  }
});
