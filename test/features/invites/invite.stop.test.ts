import type { Roster } from '../../../src/app.ts';
import { Invitation } from '../../../src/features/invites/invitation.entity.ts';
import { startSecondInstance, startTestApp, type TestApp } from '../../support/app.ts';

// An invitation Roster gives up on is recorded, and its inviter's DM queued, in one transaction: Roster
// stopped (or killed) before the DM reached Slack, the next instance still tells the inviter, once.

let t: TestApp;
let second: Roster | undefined;
let release = () => {};
afterAll(async () => {
  release();
  await second?.stop();
  await t.standin.close().catch(() => {});
  await t.smtp.close().catch(() => {});
  await t.db.drop().catch(() => {});
});

it('tells the inviter of an invitation given up on, after a stop between recording it and the DM', async () => {
  t = await startTestApp({ seatLimit: 20, env: { STOP_GRACE_SECONDS: '1' } });
  t.smtp.refusedRecipients.add('typo@example.com');
  const notice = (args: Record<string, unknown>) =>
    args.channel === 'UADMIN' && String(args.text).includes('could not be delivered');
  let reached = () => {};
  const dmOnItsWay = new Promise<void>((ok) => (reached = ok));
  const held = new Promise<void>((ok) => (release = ok));
  let first = true;
  // The first try of the DM never gets an answer: the process stops while it is on its way.
  t.standin.whileAnswering('chat.postMessage', async (args) => {
    if (first && notice(args)) {
      first = false;
      reached();
      await held;
      throw new Error('never answered');
    }
  });
  await t.slack.command('/invite', '', { user: 'UADMIN' });
  await t.slack.submitView(t.standin.lastOpenedView(), { emails: 'typo@example.com' }, { user: 'UADMIN' });
  await dmOnItsWay;
  const invitation = await t.em().findOneOrFail(Invitation, { user: { email: 'typo@example.com' } });
  expect(invitation.deliveryFailedAt).not.toBeNull();

  await t.roster.stop();
  second = await startSecondInstance(t);
  const told = await t.standin.waitForMessage(
    (m) => m.channel === 'DUADMIN' && String(m.text).includes('could not be delivered'),
    30_000,
  );
  expect(String(told.text)).toContain('typo@example.com');
  await new Promise((r) => setTimeout(r, 1500));
  expect(
    t.standin.messagesTo('DUADMIN').filter((m) => String(m.text).includes('could not be delivered')),
  ).toHaveLength(1);
}, 60_000);
