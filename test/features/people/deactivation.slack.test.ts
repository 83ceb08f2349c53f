import { AuditEvent } from '../../../src/features/audit/audit-event.entity.ts';
import { Invitation } from '../../../src/features/invites/invitation.entity.ts';
import { type IUser, User } from '../../../src/features/people/user.entity.ts';
import { SeatRequest } from '../../../src/features/seats/seat-request.entity.ts';
import { eventually, jobsDrained, startTestApp, type TestApp } from '../../support/app.ts';
import { links } from '../../support/smtp-sink.ts';
import { buttonMessage, textOf } from '../../support/views.ts';
import { personMaker } from './support.ts';

// Deactivating a person has the same effects whether an admin does it on the card or Slack deactivates
// the member: no invitation link keeps working, no seat request about them waits for an admin.

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp({ seatLimit: 20 });
});
afterAll(() => t.stop());

const person = personMaker(() => t, { first: 'Gail', last: 'Gone', domain: 'partner.test' });

const deletedInSlack = (id: string, email: string, eventId: string) =>
  t.slack.event({ type: 'user_change', user: { id, deleted: true, profile: { email } } }, { eventId });

async function adminHome(): Promise<string> {
  const before = t.standin.calls.filter((c) => c.method === 'views.publish').length;
  await t.slack.event({ type: 'app_home_opened', user: 'UADMIN', tab: 'home' });
  await eventually(() => t.standin.calls.filter((c) => c.method === 'views.publish').length > before);
  return textOf(t.standin.homeView('UADMIN'));
}

/** A member asks for a paid role for `user` from their card; returns the pending request once posted. */
async function paidRoleAsked(user: IUser) {
  const before = t.standin.responses.length;
  await t.slack.command('/people', user.email, { user: 'UMEMBER' });
  const card = await eventually(() => t.standin.responses.slice(before).at(-1));
  await t.slack.clickButton(card.body, 'Ask for a paid role', { user: 'UMEMBER' });
  await t.slack.submitView(t.standin.lastOpenedView(), { role: 'employee' }, { user: 'UMEMBER' });
  const request = await t.em().findOneOrFail(SeatRequest, { user: user.id, status: 'pending' });
  await eventually(async () => {
    const fresh = await t.em().findOneOrFail(SeatRequest, request.id);
    return fresh.messages.length > 0 ? fresh : undefined;
  });
  return request;
}

describe('a person deactivated in Slack', () => {
  it('loses their pending invitation: the link no longer works and the Home tab no longer counts it', async () => {
    const email = 'leaving@partner.test';
    await t.slack.command('/invite', '', { user: 'UADMIN' });
    await t.slack.submitView(
      t.standin.lastOpenedView(),
      { emails: email, role: 'client' },
      { user: 'UADMIN' },
    );
    const mail = await t.smtp.waitForMail((m) => m.toText === email);
    const link = links(mail).find((l) => l.includes('/invitations/'))!;
    expect(await (await fetch(link)).text()).toContain('Accept invitation');
    expect(await adminHome()).toContain(email);

    const res = await deletedInSlack('ULEAVING', email, 'Ev_LEAVE_1');
    expect(res.status).toBe(200);
    const user = await t.em().findOneOrFail(User, { email });
    expect(user.status).toBe('deactivated');
    expect((await t.em().findOneOrFail(Invitation, { user: user.id })).status).toBe('cancelled');
    const page = await (await fetch(link)).text();
    expect(page).toContain('no longer valid');
    expect(page).not.toContain('Accept invitation');
    expect(await adminHome()).not.toContain(email);
    const audit = await t.em().findOneOrFail(AuditEvent, { action: 'user.deactivated', subjectId: user.id });
    expect(audit.data).toMatchObject({
      reason: 'deactivated in Slack',
      invitationsCancelled: 1,
      before: 'invited',
    });
  });

  it("closes the seat requests about them: the admins' copies say why and the requester is told", async () => {
    const client = await person('active', 'client', { slackUserId: 'UGAIL' });
    const request = await paidRoleAsked(client);

    await deletedInSlack('UGAIL', client.email, 'Ev_LEAVE_2');
    expect((await t.em().findOneOrFail(User, client.id)).status).toBe('deactivated');
    const closed = await t.em().findOneOrFail(SeatRequest, request.id);
    expect(closed.status).toBe('expired');
    expect(closed.payload.closedBecause).toBe('deactivated');

    const told = await t.standin.waitForCall(
      'chat.postMessage',
      (c) => c.args.channel === 'UMEMBER' && String(c.args.text).includes(`${client.email} was deactivated`),
    );
    expect(told.args.text).toContain(`was closed: ${client.email} was deactivated in Slack`);
    const copy = closed.messages[0]!;
    const redrawn = await eventually(() =>
      t.standin.messages.findLast(
        (m) => m.method === 'chat.update' && m.channel === copy.channel && m.ts === copy.ts,
      ),
    );
    expect(textOf(redrawn)).toContain(
      `${client.email} was deactivated in Slack, so there is nothing to approve`,
    );
    expect((redrawn.blocks ?? []).some((b: any) => b.type === 'actions')).toBe(false);

    // An Approve pressed on a copy not yet redrawn gives no seat to someone who is gone.
    const decision = await t.roster.deps.seats.decide(t.em(), await t.account(), {
      requestId: request.id,
      actor: { slackUserId: 'UADMIN', isAdmin: true, surface: 'slack' },
      decision: 'approve',
    });
    expect(decision.outcome).toBe('already_decided');
    expect((await t.em().findOneOrFail(User, client.id)).role).toBe('client');
  });
});

describe('a person deactivated by an admin', () => {
  it('closes the seat requests about them too', async () => {
    const client = await person('active', 'client');
    const request = await paidRoleAsked(client);
    const before = t.standin.responses.length;
    await t.slack.command('/people', client.email, { user: 'UADMIN' });
    const card = await eventually(() => t.standin.responses.slice(before).at(-1));
    await t.slack.clickButton(card.body, 'Deactivate', { user: 'UADMIN' });
    expect((await t.em().findOneOrFail(User, client.id)).status).toBe('deactivated');
    expect(await t.em().findOneOrFail(SeatRequest, request.id)).toMatchObject({ status: 'expired' });
    const told = await t.standin.waitForCall(
      'chat.postMessage',
      (c) => c.args.channel === 'UMEMBER' && String(c.args.text).includes(`${client.email} was deactivated`),
    );
    expect(told.args.text).toContain('was deactivated by <@UADMIN>');
    await jobsDrained(t.em());
  });
});

describe('an invitation cancelled from /invite pending', () => {
  it('closes the seat requests about the person it deactivates', async () => {
    const client = await person('invited', 'client');
    const request = await paidRoleAsked(client);
    await t.slack.clickButton(buttonMessage('invite_cancel', client.id, 'Cancel'), 'Cancel', {
      user: 'UADMIN',
    });
    expect((await t.em().findOneOrFail(User, client.id)).status).toBe('deactivated');
    expect(await t.em().findOneOrFail(SeatRequest, request.id)).toMatchObject({ status: 'expired' });
    await t.standin.waitForCall(
      'chat.postMessage',
      (c) =>
        c.args.channel === 'UMEMBER' &&
        String(c.args.text).includes(`${client.email} was deactivated by <@UADMIN>`),
    );
  });
});
