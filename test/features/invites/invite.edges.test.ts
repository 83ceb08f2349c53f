import { Account, PermissionSet } from '../../../src/features/accounts/account.entity.ts';
import { AuditEvent } from '../../../src/features/audit/audit-event.entity.ts';
import { Invitation } from '../../../src/features/invites/invitation.entity.ts';
import { DELIVERY_RETRY, deliverInvitation } from '../../../src/features/invites/invite.delivery.ts';
import { createUser } from '../../../src/features/people/people.service.ts';
import { User } from '../../../src/features/people/user.entity.ts';
import { SeatRequest } from '../../../src/features/seats/seat-request.entity.ts';
import { newToken } from '../../../src/shared/ids.ts';
import { eventually, jobsDrained, startTestApp, type TestApp } from '../../support/app.ts';
import { links } from '../../support/smtp-sink.ts';
import { buttonMessage, textOf } from '../../support/views.ts';

let t: TestApp;

beforeAll(async () => {
  t = await startTestApp({ seatLimit: 50 });
});
afterAll(() => t.stop());

const userByEmail = (email: string) => t.em().findOne(User, { email });
const summaries = (user: string) =>
  t.standin.messages.filter((m) => m.channel === `D${user}` && String(m.text).startsWith('Invitations:'));
const inviteLink = async (email: string) => {
  const mail = await t.smtp.waitForMail((m) => m.toText.toLowerCase() === email.toLowerCase());
  const link = links(mail).find((l) => l.includes('/invitations/'));
  if (!link) throw new Error(`no invitation link in the mail to ${email}`);
  return { mail, link };
};
const emailField = (view: any) => view.blocks.find((b: any) => b.block_id === 'emails').element;

async function invite(user: string, text: string, values: Record<string, any> = {}) {
  await t.slack.command('/invite', text, { user });
  const view = t.standin.lastOpenedView();
  expect(view.callback_id).toBe('invite_modal');
  const before = summaries(user).length;
  const result = await t.slack.submitView(view, values, { user });
  const summary = result.json ? null : await eventually(() => summaries(user)[before]);
  return { view, result, summary };
}

/** Waits until the queue has finished the job `id` and says how it ended. */
async function jobEnded(id: string) {
  return eventually(async () => {
    const job = await t.roster.jobs.boss.getJobById('invites.deliver', id);
    return job && ['completed', 'failed'].includes(job.state) ? job.state : null;
  });
}

describe('the ways into the invite form', () => {
  it('opens the form from the Invite people shortcut, with Send invitation now ticked', async () => {
    await t.slack.shortcut({ user: 'UMANAGER', callbackId: 'invite_people' });
    const view = t.standin.lastOpenedView();
    expect(view.callback_id).toBe('invite_modal');
    expect(emailField(view).initial_value).toBeUndefined();
    const sendNow = view.blocks.find((b: any) => b.block_id === 'send_now').element;
    expect(sendNow.initial_options.map((o: any) => o.value)).toEqual(['send_now']);
    const roles = view.blocks.find((b: any) => b.block_id === 'role').element;
    expect(roles.options.map((o: any) => o.text.text)).toEqual([
      'Employee · paid seat',
      'Contractor · paid seat',
      'Client · free',
    ]);
    // A requester is offered every set but the one that would make the person an admin.
    const sets = view.blocks.find((b: any) => b.block_id === 'permission_set').element;
    expect(sets.options.map((o: any) => o.text.text).sort()).toEqual(['Client', 'Manager', 'Member']);
  });

  it('offers an admin every permission set, Admin included', async () => {
    await t.slack.shortcut({ user: 'UADMIN', callbackId: 'invite_people' });
    const view = t.standin.lastOpenedView();
    const sets = view.blocks.find((b: any) => b.block_id === 'permission_set').element;
    expect(sets.options.map((o: any) => o.text.text).sort()).toEqual([
      'Admin',
      'Client',
      'Manager',
      'Member',
    ]);
  });

  it("fills the form with a message author's email from the Invite author shortcut", async () => {
    await t.slack.messageShortcut({
      user: 'UADMIN',
      callbackId: 'invite_author',
      message: { ts: '1700000000.000100', user: 'UMEMBER', text: 'Can I get access?' },
    });
    const view = t.standin.lastOpenedView();
    expect(view.callback_id).toBe('invite_modal');
    expect(emailField(view).initial_value).toBe('max@acme.test');
  });

  it('prefills addresses and role from /invite text, with Slack mailto links unwrapped', async () => {
    await t.slack.command('/invite', 'ana@x.test, bo@y.test Contractor', { user: 'UADMIN' });
    const view = t.standin.lastOpenedView();
    expect(emailField(view).initial_value).toBe('ana@x.test\nbo@y.test');
    const role = view.blocks.find((b: any) => b.block_id === 'role').element;
    expect(role.initial_option.value).toBe('contractor');
  });

  it('answers a pasted list longer than the form takes with the limit, opening no form and inviting nobody', async () => {
    const opened = t.standin.callsTo('views.open').length;
    const pasted = Array.from({ length: 130 }, (_, i) => `pasted.person${i}@example-partner.test`);
    const text = pasted.join(', ');
    expect(text.length).toBeGreaterThan(3000);
    const before = t.standin.responses.length;
    await t.slack.command('/invite', `${text} client`, { user: 'UADMIN' });
    const answer = await eventually(() => t.standin.responses.slice(before).at(-1));
    expect(answer.body.response_type).toBe('ephemeral');
    expect(textOf(answer.body)).toContain('At most 100 addresses at once; you entered 130.');

    // Fewer than 100 addresses can still be more characters than the form shows.
    const long = Array.from({ length: 60 }, (_, i) => `${'l'.repeat(50)}.${i}@example-partner.test`).join(
      ' ',
    );
    await t.slack.command('/invite', long, { user: 'UADMIN' });
    const second = await eventually(() => t.standin.responses.slice(before + 1).at(-1));
    expect(textOf(second.body)).toContain(`Keep the addresses under 3,000 characters at once; you entered`);

    expect(t.standin.callsTo('views.open').length).toBe(opened);
    expect(await userByEmail(pasted[0]!)).toBeNull();
  });

  it('turns away a permission set deleted while the form was open, writing nothing', async () => {
    const em = t.em();
    const set = em.create(PermissionSet, { account: await t.account(), name: 'Temporary' });
    await em.flush();
    await t.slack.command('/invite', 'stale@example.com', { user: 'UADMIN' });
    const view = t.standin.lastOpenedView();
    await t.em().nativeDelete(PermissionSet, { id: set.id });
    const result = await t.slack.submitView(view, { permission_set: 'Temporary' }, { user: 'UADMIN' });
    expect(result.json).toEqual({
      response_action: 'errors',
      errors: { permission_set: 'That permission set no longer exists; choose another.' },
    });
    expect(await userByEmail('stale@example.com')).toBeNull();
  });
});

describe('seats', () => {
  it('reports "no seat" per address and keeps the others when an admin runs out of seats', async () => {
    const account = await t.account();
    const used = await t.roster.deps.seats.usage(t.em(), account);
    await t.setSeatLimit(used.used + 1);
    try {
      const { summary } = await invite('UADMIN', '', {
        emails: 'seat-one@example.com, seat-two@example.com',
      });
      const text = textOf(summary!);
      expect(text).toContain('seat-one@example.com*: invited');
      expect(text).toContain(
        `seat-two@example.com*: No paid seat is free (${used.used + 1} of ${used.used + 1} used), so seat-two@example.com was not added.`,
      );
      expect(text).toContain(
        'To add those no seat was free for, raise the seat limit with `/seats N`, then invite them again.',
      );
      expect(String(summary!.text)).toBe('Invitations: 1 of 2 added as Employee (paid seat)');
      expect(await userByEmail('seat-one@example.com')).toMatchObject({ status: 'invited' });
      expect(await userByEmail('seat-two@example.com')).toBeNull();

      // A client is free, so it goes through even with no seat left.
      const client = await invite('UADMIN', 'free@partner.test client');
      expect(textOf(client.summary)).toContain('free@partner.test*: invited');
    } finally {
      await t.setSeatLimit(50);
    }
  });

  it("delivers a requester's paid invitation, personal message included, once an admin approves it", async () => {
    await invite('UMEMBER', 'approved@example.com contractor', {
      message: 'Welcome aboard, see you Monday.',
    });
    expect(await userByEmail('approved@example.com')).toBeNull();
    const request = await t.em().findOneOrFail(SeatRequest, { email: 'approved@example.com' });
    expect(request).toMatchObject({ kind: 'invite', status: 'pending', requestedBy: 'UMEMBER' });

    const decided = await t.roster.deps.seats.decide(t.em(), await t.account(), {
      requestId: request.id,
      actor: { slackUserId: 'UOWNER', isAdmin: true, surface: 'slack' },
      decision: 'approve',
    });
    expect(decided.outcome).toBe('approved');

    const { mail } = await inviteLink('approved@example.com');
    expect(mail.subject).toBe('Max Member invited you to Acme');
    expect(mail.text).toContain('as a contractor');
    expect(mail.text).toContain('Welcome aboard, see you Monday.');
    expect(await userByEmail('approved@example.com')).toMatchObject({
      role: 'contractor',
      status: 'invited',
      addedBy: 'UMEMBER',
    });
  });

  it('closes, taking no seat, a request for someone an admin has since invited directly', async () => {
    await invite('UMEMBER', 'overtaken@example.com');
    const request = await t.em().findOneOrFail(SeatRequest, { email: 'overtaken@example.com' });
    await invite('UADMIN', 'overtaken@example.com');
    expect(await userByEmail('overtaken@example.com')).toMatchObject({ status: 'invited' });
    const account = await t.account();
    const used = (await t.roster.deps.seats.usage(t.em(), account)).used;
    await t.setSeatLimit(used);
    try {
      // The request's message offers Approve and add a seat, since none is free.
      await t.slack.blockAction({
        user: 'UADMIN',
        actions: [{ type: 'button', action_id: 'seat_approve_add_seat', block_id: 'b', value: request.id }],
      });
      const reply = await t.standin.waitForResponse((r) => textOf(r.body).includes('Not approved'));
      expect(textOf(reply.body)).toContain('overtaken@example.com is already a user');
      expect((await t.em().findOneOrFail(Account, account.id)).seatLimit).toBe(used);
      expect((await t.em().findOneOrFail(SeatRequest, request.id)).status).toBe('rejected');
    } finally {
      await t.setSeatLimit(50);
    }
  });

  it("adds a requester's paid person without an invitation when Send invitation now was unticked", async () => {
    await invite('UMEMBER', 'quiet@example.com', { send_now: [] });
    const request = await t.em().findOneOrFail(SeatRequest, { email: 'quiet@example.com' });
    await t.roster.deps.seats.decide(t.em(), await t.account(), {
      requestId: request.id,
      actor: { slackUserId: 'UADMIN', isAdmin: true, surface: 'slack' },
      decision: 'approve',
    });
    const user = await t.em().findOneOrFail(User, { email: 'quiet@example.com' });
    expect(user.status).toBe('not_invited');
    expect(await t.em().count(Invitation, { user: user.id })).toBe(0);
  });
});

describe('the pending list and its buttons', () => {
  it('shows a requester only the people they added, and an admin everyone', async () => {
    await invite('UMANAGER', 'mine@partner.test client');
    await invite('UADMIN', 'theirs@partner.test client');

    await t.slack.command('/invite', 'pending', { user: 'UMANAGER' });
    const own = await t.standin.waitForResponse((r) => textOf(r.body).includes('mine@partner.test'));
    expect(textOf(own.body)).not.toContain('theirs@partner.test');
    expect(textOf(own.body)).toContain('the ones you sent');

    await t.slack.command('/invite', 'pending', { user: 'UOWNER' });
    const all = await t.standin.waitForResponse(
      (r) => textOf(r.body).includes('theirs@partner.test') && textOf(r.body).includes('mine@partner.test'),
    );
    const mine = await t.em().findOneOrFail(User, { email: 'mine@partner.test' });
    const buttons = JSON.stringify(all.body.blocks);
    expect(buttons).toContain(`"action_id":"invite_resend","value":"${mine.id}"`);
    expect(buttons).toContain(`"action_id":"invite_cancel","value":"${mine.id}"`);
  });

  it('records an audit event for the invitation, its delivery, a resend, a cancellation', async () => {
    await invite('UADMIN', 'audited@example.com');
    await inviteLink('audited@example.com');
    const user = await t.em().findOneOrFail(User, { email: 'audited@example.com' });
    await eventually(async () => (await t.em().findOne(Invitation, { user: user.id }))?.deliveredAt);
    const button = (actionId: string) => buttonMessage(actionId, user.id, 'x', '10');
    await t.slack.clickButton(button('invite_resend'), { actionId: 'invite_resend' }, { user: 'UADMIN' });
    await eventually(() => t.smtp.messagesTo('audited@example.com').length === 2);
    // The delivery is recorded just after the mail leaves.
    await eventually(
      async () => (await t.em().find(Invitation, { user: user.id, deliveredAt: { $ne: null } })).length === 2,
    );
    await t.slack.clickButton(button('invite_cancel'), { actionId: 'invite_cancel' }, { user: 'UADMIN' });
    const cancelled = await t.standin.waitForResponse((r) =>
      String(r.body.text).includes('Cancelled the invitation to audited@example.com'),
    );
    expect(cancelled.body.text).toContain('so their paid seat is free again');
    expect(await userByEmail('audited@example.com')).toMatchObject({ status: 'deactivated' });

    const invitations = await t.em().find(Invitation, { user: user.id }, { orderBy: { createdAt: 'asc' } });
    expect(invitations.map((i) => i.status)).toEqual(['superseded', 'cancelled']);
    const events = await t.em().find(
      AuditEvent,
      {
        $or: [{ subjectId: { $in: invitations.map((i) => i.id) } }, { subjectId: user.id }],
      },
      { orderBy: { createdAt: 'asc' } },
    );
    expect(events.map((e) => e.action)).toEqual(
      expect.arrayContaining([
        'user.added',
        'invitation.created',
        'invitation.delivered',
        'invitation.resent',
        'invitation.cancelled',
      ]),
    );
    expect(events.filter((e) => e.action === 'invitation.delivered')).toHaveLength(2);
  });

  it('tells a person who clicks Send invitation on someone they did not add that they may not', async () => {
    await invite('UADMIN', '', { emails: 'notyours@example.com', send_now: [] });
    const user = await t.em().findOneOrFail(User, { email: 'notyours@example.com' });
    await t.slack.clickButton(
      buttonMessage('invite_send', user.id, 'Send invitation', '11'),
      { actionId: 'invite_send' },
      { user: 'UMANAGER' },
    );
    await t.standin.waitForResponse((r) =>
      String(r.body.text).includes('Only the person who invited them or an admin can do that.'),
    );
    expect((await userByEmail('notyours@example.com'))?.status).toBe('not_invited');
    expect(await t.em().count(Invitation, { user: user.id })).toBe(0);
  });
  it('sends one invitation on a double click of Send invitation, and says the second click sent nothing more', async () => {
    await invite('UADMIN', '', { emails: 'doubleclick@example.com', send_now: [] });
    const user = await t.em().findOneOrFail(User, { email: 'doubleclick@example.com' });
    const message = buttonMessage('invite_send', user.id, 'Send invitation', '12');
    await Promise.all([
      t.slack.clickButton(message, { actionId: 'invite_send' }, { user: 'UADMIN' }),
      t.slack.clickButton(message, { actionId: 'invite_send' }, { user: 'UADMIN' }),
    ]);
    await t.standin.waitForResponse((r) => String(r.body.text).includes('was not sent again'));
    await t.smtp.waitForMail((m) => m.toText === 'doubleclick@example.com');
    await jobsDrained(t.em());
    expect(await t.em().count(Invitation, { user: user.id })).toBe(1);
    expect(t.smtp.messagesTo('doubleclick@example.com')).toHaveLength(1);
  });
});

describe('delivery', () => {
  it('DMs a workspace member, and a double click on its Accept activates once', async () => {
    t.standin.addMember({ id: 'UDORA', name: 'dora', realName: 'Dora Dev', email: 'dora@acme.test' });
    await invite('UADMIN', 'Dora@Acme.test');
    await t.standin.waitForCall('chat.postMessage', (c) => c.args.channel === 'UDORA');
    const dm = await eventually(() =>
      t.standin.messages.find((m) => m.channel === 'DUDORA' && String(m.text).includes('invited you')),
    );
    await Promise.all([
      t.slack.clickButton(dm, { actionId: 'invite_accept' }, { user: 'UDORA' }),
      t.slack.clickButton(dm, { actionId: 'invite_accept' }, { user: 'UDORA' }),
    ]);
    await eventually(
      () =>
        t.standin.responses.filter((r) => String(r.body.text).includes('You accepted the invitation'))
          .length === 2,
    );
    expect(await userByEmail('Dora@Acme.test')).toMatchObject({ status: 'active', slackUserId: 'UDORA' });
    const user = await t.em().findOneOrFail(User, { email: 'Dora@Acme.test' });
    const invitation = await t.em().findOneOrFail(Invitation, { user: user.id });
    expect(invitation).toMatchObject({ status: 'accepted', deliveryMethod: 'slack_dm', deliveryAttempts: 1 });
    expect(await t.em().count(AuditEvent, { action: 'invitation.accepted', subjectId: invitation.id })).toBe(
      1,
    );
    expect(t.smtp.messagesTo('dora@acme.test')).toHaveLength(0);
  });

  it('tells an invitee who clicks Accept again long after accepting that there is nothing more to do', async () => {
    t.standin.addMember({ id: 'UERIN', name: 'erin', realName: 'Erin Early', email: 'erin@acme.test' });
    await invite('UADMIN', 'erin@acme.test');
    const dm = await eventually(() =>
      t.standin.messages.find((m) => m.channel === 'DUERIN' && String(m.text).includes('invited you')),
    );
    await t.slack.clickButton(dm, { actionId: 'invite_accept' }, { user: 'UERIN' });
    await eventually(() =>
      t.standin.responses.find((r) => String(r.body.text).includes('You accepted the invitation')),
    );
    const user = await t.em().findOneOrFail(User, { email: 'erin@acme.test' });
    // An hour later: past the window in which a repeat click is answered as the same acceptance.
    await t
      .em()
      .nativeUpdate(Invitation, { user: user.id }, { acceptedAt: new Date(Date.now() - 3_600_000) });
    const before = t.standin.responses.length;
    await t.slack.clickButton(dm, { actionId: 'invite_accept' }, { user: 'UERIN' });
    const answer = await eventually(() => t.standin.responses.slice(before).find((r) => r.body.text));
    expect(String(answer.body.text)).toContain('You already accepted this invitation');
    expect(String(answer.body.text)).not.toContain('Ask the person who invited you');
    const invitation = await t.em().findOneOrFail(Invitation, { user: user.id });
    expect(await t.em().count(AuditEvent, { action: 'invitation.accepted', subjectId: invitation.id })).toBe(
      1,
    );
    expect(await userByEmail('erin@acme.test')).toMatchObject({ status: 'active', slackUserId: 'UERIN' });
  });

  it('does not tell an invitee deactivated since accepting that they are a member, however soon they click again', async () => {
    t.standin.addMember({ id: 'UFERN', name: 'fern', realName: 'Fern Gone', email: 'fern@acme.test' });
    await invite('UADMIN', 'fern@acme.test');
    const dm = await eventually(() =>
      t.standin.messages.find((m) => m.channel === 'DUFERN' && String(m.text).includes('invited you')),
    );
    await t.slack.clickButton(dm, { actionId: 'invite_accept' }, { user: 'UFERN' });
    await eventually(() =>
      t.standin.responses.find((r) => String(r.body.text).includes('You accepted the invitation')),
    );
    const user = await t.em().findOneOrFail(User, { email: 'fern@acme.test' });
    const admin = { slackUserId: 'UADMIN', isAdmin: true, surface: 'slack' as const };
    await t.roster.deps.person.deactivate(t.em(), await t.account(), admin, user.id);
    for (const acceptedAt of [new Date(), new Date(Date.now() - 3_600_000)]) {
      await t.em().nativeUpdate(Invitation, { user: user.id }, { acceptedAt });
      const before = t.standin.responses.length;
      await t.slack.clickButton(dm, { actionId: 'invite_accept' }, { user: 'UFERN' });
      const answer = await eventually(() => t.standin.responses.slice(before).find((r) => r.body.text));
      expect(String(answer.body.text)).toContain('This invitation is no longer valid');
      expect(String(answer.body.text)).not.toMatch(/member|accepted/);
    }
    expect(await userByEmail('fern@acme.test')).toMatchObject({ status: 'deactivated' });
  });

  it('delivers once: a DM Slack took whose recording fails is not followed by an email', async () => {
    const exec = (q: string) => t.em().getConnection().execute(q);
    // The database refuses to record a DM delivery of Nell's invitation, as when its connection drops.
    t.standin.addMember({ id: 'UNELL', name: 'nell', realName: 'Nell Once', email: 'nell@acme.test' });
    await exec(`create or replace function refuse_nell() returns trigger language plpgsql as $$ begin
      if new.delivery_method = 'slack_dm' and exists (select 1 from app_user u
          where u.id = new.user_id and u.email = 'nell@acme.test') then
        raise exception 'connection lost while recording';
      end if;
      return new; end $$`);
    await exec(
      'create trigger refuse_nell before update on invitation for each row execute function refuse_nell()',
    );
    try {
      await invite('UADMIN', 'nell@acme.test');
      await eventually(() =>
        t.standin.messages.find((m) => m.channel === 'DUNELL' && String(m.text).includes('invited you')),
      );
      // The email the old code sent at once, taking the failure for a failed DM, does not come.
      await new Promise((ok) => setTimeout(ok, 1500));
      expect(t.smtp.messagesTo('nell@acme.test')).toHaveLength(0);
      const user = await t.em().findOneOrFail(User, { email: 'nell@acme.test' });
      const invitation = await t.em().findOneOrFail(Invitation, { user: user.id });
      expect(invitation.deliveryMethod).toBeNull();
      expect(invitation.lastError ?? '').not.toContain('Slack DM failed');
    } finally {
      await exec('drop trigger refuse_nell on invitation');
      await exec('drop function refuse_nell()');
    }
  });

  it('sends nothing, and tells the inviter nothing, for an invitation cancelled while it was being delivered', async () => {
    t.smtp.refusedRecipients.add('gone@acme.test');
    // Slack is slow to say whether the address is a member's: the delivery is under way meanwhile.
    t.standin.delayNext('users.lookupByEmail', 2000);
    await invite('UADMIN', 'gone@acme.test');
    const user = await eventually(() => userByEmail('gone@acme.test'));
    await t.standin.waitForCall('users.lookupByEmail', (c) => JSON.stringify(c).includes('gone@acme.test'));
    const before = t.standin.messagesTo('DUADMIN').length;
    await t.slack.clickButton(buttonMessage('invite_cancel', user.id, 'Cancel'), 'Cancel', {
      user: 'UADMIN',
    });
    await t.standin.waitForResponse((r) =>
      textOf(r.body).includes('Cancelled the invitation to gone@acme.test'),
    );
    await new Promise((ok) => setTimeout(ok, 2500));
    await jobsDrained(t.em());
    expect(t.smtp.messagesTo('gone@acme.test')).toHaveLength(0);
    const told = t.standin.messagesTo('DUADMIN').slice(before).map(textOf);
    expect(told.filter((m) => m.includes('could not be delivered'))).toEqual([]);
    const invitation = await t.em().findOneOrFail(Invitation, { user: user.id });
    expect(invitation).toMatchObject({ status: 'cancelled', deliveredAt: null, lastError: null });
  });

  /** Waits until the invitation's delivery has begun (and is waiting on Slack's slowed lookup). */
  const underWay = (userId: string) =>
    eventually(async () => {
      const invitation = await t.em().findOne(Invitation, { user: userId });
      return invitation && invitation.deliveryAttempts >= 1 && !invitation.deliveredAt ? invitation : null;
    });

  it('sends no DM for an invitation cancelled while Slack was asked who the address is', async () => {
    // Someone Roster's copy of the directory does not know yet: Slack is asked, slowly.
    t.standin.addMember({ id: 'UDMGONE', name: 'dmgone', realName: 'Dee Gone', email: 'dmgone@acme.test' });
    t.standin.delayNext('users.lookupByEmail', 2000, 3);
    await invite('UADMIN', 'dmgone@acme.test');
    const user = await eventually(() => userByEmail('dmgone@acme.test'));
    await underWay(user.id);
    await t.slack.clickButton(buttonMessage('invite_cancel', user.id, 'Cancel'), 'Cancel', {
      user: 'UADMIN',
    });
    await new Promise((ok) => setTimeout(ok, 2500));
    await jobsDrained(t.em());
    expect(t.standin.messagesTo('DUDMGONE').filter((m) => textOf(m).includes('invited you'))).toEqual([]);
    const invitation = await t.em().findOneOrFail(Invitation, { user: user.id });
    expect(invitation).toMatchObject({ status: 'cancelled', deliveredAt: null });
  });

  it('sends nothing to an address the allowed email domains stopped admitting, and tells the inviter', async () => {
    const account = await t.account();
    t.standin.delayNext('users.lookupByEmail', 2000, 3);
    await invite('UADMIN', 'late@other.test');
    const user = await eventually(() => userByEmail('late@other.test'));
    await underWay(user.id);
    const before = t.standin.messagesTo('DUADMIN').length;
    // The domains narrow while the delivery is under way (as they may between two tries, hours apart).
    await t.em().nativeUpdate(Account, { id: account.id }, { allowedEmailDomains: ['acme.test'] });
    try {
      // The invite's own summary may be posted after the delivery began: the notice is the other message.
      const told = await eventually(() =>
        t.standin
          .messagesTo('DUADMIN')
          .slice(before)
          .find((m) => textOf(m).includes('late@other.test') && !textOf(m).startsWith('Invitations:')),
      );
      expect(textOf(told)).toContain('is not at an allowed domain');
      expect(t.smtp.messagesTo('late@other.test')).toHaveLength(0);
      const invitation = await t.em().findOneOrFail(Invitation, { user: user.id });
      expect(invitation.deliveredAt).toBeNull();
      expect(invitation.deliveryFailedAt).not.toBeNull();
    } finally {
      await t.em().nativeUpdate(Account, { id: account.id }, { allowedEmailDomains: [] });
    }
  });

  it('does nothing when the delivery job runs again for an invitation already delivered', async () => {
    await invite('UADMIN', 'once@example.com');
    await inviteLink('once@example.com');
    const user = await t.em().findOneOrFail(User, { email: 'once@example.com' });
    const invitation = await eventually(async () => {
      const i = await t.em().findOne(Invitation, { user: user.id });
      return i?.deliveredAt ? i : null;
    });
    const jobId = await t.roster.deps.jobs.send('invites.deliver', { invitationId: invitation.id });
    expect(await jobEnded(jobId!)).toBe('completed');
    expect(t.smtp.messagesTo('once@example.com')).toHaveLength(1);
    const after = await t.em().findOneOrFail(Invitation, invitation.id);
    expect(after.deliveryAttempts).toBe(1);
    expect(after.deliveredAt?.getTime()).toBe(invitation.deliveredAt?.getTime());
  });

  it('tells the inviter when the last attempt fails; their Resend button delivers a new invitation', async () => {
    // An invitation already on its last attempt, built directly so no queued job races this test.
    const em = t.em();
    const account = await t.account();
    const user = await createUser(em, account, {
      email: 'unlucky@example.com',
      role: 'client',
      status: 'invited',
      addedBy: 'UMANAGER',
    });
    const invitation = em.create(Invitation, {
      account,
      user,
      tokenHash: newToken().hash,
      expiresAt: new Date(Date.now() + 86_400_000),
      invitedBy: 'UMANAGER',
      deliveryAttempts: DELIVERY_RETRY.retryLimit,
    });
    await em.flush();

    await t.smtp.stop();
    try {
      await expect(
        deliverInvitation(t.roster.deps, t.roster.deps.invites, invitation.id, { lastAttempt: true }),
      ).rejects.toThrow();
    } finally {
      await t.smtp.start();
    }

    const told = await eventually(() =>
      t.standin.messages.find(
        (m) =>
          m.channel === 'DUMANAGER' && String(m.text).includes('unlucky@example.com could not be delivered'),
      ),
    );
    expect(textOf(told)).toContain('Email failed');
    const failed = await t.em().findOneOrFail(Invitation, invitation.id);
    expect(failed).toMatchObject({ deliveredAt: null, deliveryAttempts: DELIVERY_RETRY.retryLimit + 1 });
    expect(failed.lastError).toMatch(/^Email failed/);
    expect(
      await t.em().count(AuditEvent, { action: 'invitation.delivery_failed', subjectId: invitation.id }),
    ).toBe(1);

    await t.slack.command('/invite', 'pending', { user: 'UMANAGER' });
    const pending = await t.standin.waitForResponse((r) => textOf(r.body).includes('unlucky@example.com'));
    expect(textOf(pending.body)).toContain('delivery failed');

    await t.slack.clickButton(told, { actionId: 'invite_resend' }, { user: 'UMANAGER' });
    const { mail } = await inviteLink('unlucky@example.com');
    expect(mail.subject).toBe('Mia Manager invited you to Acme');
    expect((await t.em().findOneOrFail(Invitation, invitation.id)).status).toBe('superseded');
  });
});
