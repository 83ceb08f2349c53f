import { Invitation } from '../../src/features/invites/invitation.entity.ts';
import { INVITE_JOBS } from '../../src/features/invites/invitation.service.ts';
import { createUser } from '../../src/features/people/people.service.ts';
import { DEFAULT_MEMBERS, eventually, startTestApp, type TestApp } from '../support/app.ts';
import type { Member } from '../support/slack-standin.ts';

// Slack takes a call and does not answer (a stalled connection, an outage): the bulk client gives each try
// 10 s, so the invitation workers are not all held by calls that never end, and a DM that was slow is
// sent as a DM, not turned into an email.

const SLOW: Member[] = Array.from({ length: 4 }, (_, i) => ({
  id: `USLOW${i}`,
  name: `slow${i}`,
  email: `slow${i}@acme.test`,
}));

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp({ seatLimit: 20, members: [...DEFAULT_MEMBERS, ...SLOW] });
  await eventually(
    async () => (await t.roster.deps.directory.syncedAt(t.em(), await t.account())) !== null,
    20_000,
  );
});
afterAll(() => t.stop(), 60_000);

async function pendingInvitation(email: string) {
  const em = t.em();
  const account = await t.account();
  const user = await createUser(em, account, { email, role: 'client', status: 'invited', addedBy: 'UADMIN' });
  const invitation = em.create(Invitation, {
    account,
    user,
    expiresAt: new Date(Date.now() + 86_400_000),
    invitedBy: 'UADMIN',
  });
  await em.flush();
  return invitation;
}

it('a Slack that does not answer holds no worker for long: other invitations go out, and the slow DMs go as DMs', async () => {
  // The next four DMs are answered only after 25 s: each of the four invitation workers is in one of them.
  t.standin.delayNext('chat.postMessage', 25_000, 4);
  const sent = Date.now();
  const slow: string[] = [];
  for (const m of SLOW) {
    const invitation = await pendingInvitation(m.email!);
    slow.push(invitation.id);
    await t.roster.deps.jobs.send(INVITE_JOBS.deliver, { invitationId: invitation.id });
  }
  await eventually(
    () =>
      t.standin.callsTo('chat.postMessage').filter((c) => /^USLOW/.test(String(c.args.channel))).length >= 4,
    20_000,
  );
  const started = Date.now();
  const other = await pendingInvitation('outside.slow@example.test');
  await t.roster.deps.jobs.send(INVITE_JOBS.deliver, { invitationId: other.id });
  await t.smtp.waitForMail((m) => m.toText.includes('outside.slow@example.test'), 20_000);
  // Within the first try's 10 s and the retry, well before the 25 s answers.
  expect(Date.now() - started).toBeLessThan(20_000);
  // Each job tries again 30 s after its 10 s try went unanswered (about 40 s on, later on a busy machine).
  for (const id of slow) {
    const invitation = await eventually(async () => {
      const row = await t.em().findOne(Invitation, id, { refresh: true });
      return row?.deliveredAt ? row : null;
    }, 80_000);
    expect(invitation.deliveryMethod).toBe('slack_dm');
  }
  for (const m of SLOW) expect(t.smtp.messagesTo(m.email!)).toHaveLength(0);
  // Each was posted when Slack got to it (25 s on), after Roster had stopped waiting: it was found in the
  // conversation when the job tried again, not posted a second time.
  await new Promise((r) => setTimeout(r, Math.max(0, sent + 27_000 - Date.now())));
  for (const m of SLOW) expect(t.standin.messagesTo(m.id)).toHaveLength(1);
}, 150_000);

it('a DM Slack posted but answered late is found in the conversation, not posted again', async () => {
  const member: Member = { id: 'ULATE', name: 'late', email: 'late@acme.test' };
  t.standin.addMember(member);
  const invitation = await pendingInvitation(member.email!);
  // Posted at once; the answer comes after the bulk client's 10 s.
  t.standin.answerLate('chat.postMessage', 12_000, 1);
  await t.roster.deps.jobs.send(INVITE_JOBS.deliver, { invitationId: invitation.id });
  const delivered = await eventually(async () => {
    const row = await t.em().findOne(Invitation, invitation.id, { refresh: true });
    return row?.deliveredAt ? row : null;
  }, 20_000);
  expect(delivered.deliveryMethod).toBe('slack_dm');
  expect(t.standin.messagesTo('ULATE')).toHaveLength(1);
  expect(t.standin.callsTo('chat.postMessage').filter((c) => c.args.channel === 'ULATE')).toHaveLength(1);
  expect(t.smtp.messagesTo(member.email!)).toHaveLength(0);
}, 60_000);
