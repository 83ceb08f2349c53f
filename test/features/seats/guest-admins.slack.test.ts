import { query, sql } from '../../../src/db/sql.ts';
import { PermissionSet } from '../../../src/features/accounts/account.entity.ts';
import { AuditEvent } from '../../../src/features/audit/audit-event.entity.ts';
import { Contact } from '../../../src/features/contacts/contact.entity.ts';
import { memberOf } from '../../../src/features/directory/directory.service.ts';
import { User } from '../../../src/features/people/user.entity.ts';
import { SeatRequest } from '../../../src/features/seats/seat-request.entity.ts';
import { DEFAULT_MEMBERS, eventually, startTestApp, type TestApp } from '../../support/app.ts';
import { buttonMessage, textOf } from '../../support/views.ts';

let t: TestApp;

// Two guests and a full member of the workspace, each given Roster's Admin permission set (by an old
// version, or by hand in the database), and a guest Roster does not know yet.
beforeAll(async () => {
  t = await startTestApp({
    seatLimit: 10,
    members: [
      ...DEFAULT_MEMBERS,
      { id: 'UGUESTM', name: 'gus', realName: 'Gus Guest', email: 'gus@acme.test', guest: 'multi_channel' },
      { id: 'UGUESTS', name: 'sue', realName: 'Sue Guest', email: 'sue@acme.test', guest: 'single_channel' },
      { id: 'UFULL', name: 'fay', realName: 'Fay Full', email: 'fay@acme.test' },
      { id: 'UGUEST3', name: 'gil', realName: 'Gil Guest', email: 'gil@acme.test', guest: 'multi_channel' },
      // Met through Slack Connect: a member of another organisation.
      { id: 'UEXTADM', name: 'eve', realName: 'Eve Partner', email: 'eve@partner.test', teamId: 'TPARTNER' },
    ],
  });
  const em = t.em();
  const account = await t.account();
  const admin = await em.findOneOrFail(PermissionSet, { account, isAdmin: true });
  for (const [id, email] of [
    ['UGUESTM', 'gus@acme.test'],
    ['UGUESTS', 'sue@acme.test'],
    ['UFULL', 'fay@acme.test'],
    ['UEXTADM', 'eve@partner.test'],
  ] as const) {
    em.create(User, {
      account,
      email,
      role: 'employee',
      status: 'active',
      slackUserId: id,
      permissionSet: admin,
    });
  }
  await em.flush();
  await t.roster.deps.directory.upsert(
    t.em(),
    account,
    ['UGUESTM', 'UGUESTS', 'UFULL', 'UGUEST3', 'UEXTADM'].map((id) => memberOf(t.standin.userOf(id))!),
  );
  // Recorded before the mirror kept guest flags: it cannot say whether these two are guests.
  await query(
    t.em(),
    sql`update slack_member set is_restricted = null, is_ultra_restricted = null
        where slack_user_id in ('UGUESTS', 'UFULL')`,
  );
});
afterAll(() => t.stop());

const requester = { slackUserId: 'UMANAGER', isAdmin: false, surface: 'slack' as const };

async function pendingRequest(email: string) {
  const em = t.em();
  const account = await t.account();
  const user = em.create(User, { account, email, role: 'employee', status: 'locked' });
  await em.flush();
  const result = await t.roster.deps.people.unlock(t.em(), account, requester, user.id);
  if (result.status !== 'requested') throw new Error('expected a seat request');
  return result.request.id;
}

/** A click on Approve, forged by `user`: Roster never sent them the request. */
async function approveAs(user: string, requestId: string) {
  const before = t.standin.responses.length;
  await t.slack.blockAction({
    user,
    actions: [
      { type: 'button', action_id: 'seat_approve', block_id: `seat_request:${requestId}`, value: requestId },
    ],
    message: { ts: '1700000000.000100', channel: `D${user}`, text: 'Seat request', blocks: [] },
  });
  return eventually(() => t.standin.responses.slice(before).at(-1));
}

describe('a Slack guest given the Admin permission set', () => {
  it('cannot approve a seat request, and is not sent the requests to approve', async () => {
    const id = await pendingRequest('hire1@example.com');
    const reply = await approveAs('UGUESTM', id);
    expect(reply.body.text).toBe('Only admins can approve seat requests.');
    expect((await t.em().findOneOrFail(SeatRequest, id)).status).toBe('pending');
    expect(
      await t
        .em()
        .count(AuditEvent, { action: 'seat_request.decision_refused', actor: 'UGUESTM', subjectId: id }),
    ).toBe(1);
    const admins = await eventually(
      async () => t.roster.deps.admins.adminIds(t.em(), await t.account()).catch(() => null),
      30_000,
    );
    expect(admins).toContain('UADMIN');
    expect(admins).not.toContain('UGUESTM');
  });
});

describe('someone of another organisation given the Admin permission set', () => {
  it('is not sent the seat requests to approve, nor can approve one', async () => {
    const id = await pendingRequest('hire3@example.com');
    const admins = await eventually(
      async () => t.roster.deps.admins.adminIds(t.em(), await t.account()).catch(() => null),
      30_000,
    );
    expect(admins).toContain('UADMIN');
    expect(admins).not.toContain('UEXTADM');
    const reply = await approveAs('UEXTADM', id);
    expect(reply.body.text).toBe('Only admins can approve seat requests.');
    expect((await t.em().findOneOrFail(SeatRequest, id)).status).toBe('pending');
  });

  it('cannot import people or give anyone the Admin permission set', async () => {
    const opened = t.standin.callsTo('views.open').length;
    await t.slack.shortcut({ user: 'UGUESTM', callbackId: 'import_csv' });
    expect(t.standin.callsTo('views.open').length).toBe(opened);

    const em = t.em();
    const target = em.create(User, {
      account: await t.account(),
      email: 'tia@acme.test',
      role: 'employee',
      status: 'active',
    });
    await em.flush();
    const admin = await t
      .em()
      .findOneOrFail(PermissionSet, { account: (await t.account()).id, isAdmin: true });
    // The person card's form, submitted by hand: Roster never showed the guest its admin buttons.
    const result = await t.slack.viewSubmission({
      user: 'UGUESTM',
      view: {
        id: 'VFORGED1',
        hash: 'h1',
        callback_id: 'person_change_modal',
        private_metadata: JSON.stringify({ u: target.id, c: 'permission_set' }),
        state: {
          values: {
            permission_set: {
              permission_set: { type: 'static_select', selected_option: { value: admin.id } },
            },
          },
        },
      },
    });
    expect(result.status).toBe(200);
    expect(
      (await t.em().findOneOrFail(User, target.id, { populate: ['permissionSet'] })).permissionSet,
    ).toBeNull();
  });

  it('cannot post a join link', async () => {
    const opened = t.standin.callsTo('views.open').length;
    await t.slack.command('/joinlink', '', { user: 'UGUESTM' });
    const reply = await t.standin.waitForResponse((r) => r.body.text === 'Only admins can post join links.');
    expect(reply.body.response_type).toBe('ephemeral');
    expect(t.standin.callsTo('views.open').length).toBe(opened);
  });

  it('whom the mirror cannot place is asked of Slack: a guest is refused, a full member is not', async () => {
    const id = await pendingRequest('hire2@example.com');
    const reply = await approveAs('UGUESTS', id);
    expect(reply.body.text).toBe('Only admins can approve seat requests.');
    expect((await t.em().findOneOrFail(SeatRequest, id)).status).toBe('pending');
    // Slack's answer is kept.
    const [row] = await query<{ is_ultra_restricted: boolean | null }>(
      t.em(),
      sql`select is_ultra_restricted from slack_member where slack_user_id = 'UGUESTS'`,
    );
    expect(row?.is_ultra_restricted).toBe(true);

    const approved = await approveAs('UFULL', id);
    expect(approved.body.text).toContain(':white_check_mark: Approved: hire2@example.com has a seat');
    expect((await t.em().findOneOrFail(SeatRequest, id)).status).toBe('approved');
  });
});

/** An active user behind a Slack account, and the person card's permission set form an admin opened for them. */
async function permissionSetForm(email: string, slackUserId: string) {
  const em = t.em();
  const user = em.create(User, {
    account: await t.account(),
    email,
    role: 'employee',
    status: 'active',
    slackUserId,
  });
  await em.flush();
  const before = t.standin.responses.length;
  await t.slack.command('/people', email, { user: 'UADMIN' });
  const card = await eventually(() => t.standin.responses.slice(before).at(-1));
  await t.slack.clickButton(card.body, 'Permission set', { user: 'UADMIN' });
  return { user, view: t.standin.lastOpenedView() };
}

describe('giving the Admin permission set', () => {
  it('is refused for a guest on the person card, with the reason on the field', async () => {
    const { user, view } = await permissionSetForm('gil@acme.test', 'UGUEST3');
    const result = await t.slack.submitView(view, { permission_set: 'Admin' }, { user: 'UADMIN' });
    expect(result.json).toEqual({
      response_action: 'errors',
      errors: {
        permission_set:
          'gil@acme.test is a multi-channel guest in Slack, and a guest cannot be a Roster admin, so “Admin” was not given. Choose another set, or make them a full member in Slack first.',
      },
    });
    expect(
      (await t.em().findOneOrFail(User, user.id, { populate: ['permissionSet'] })).permissionSet,
    ).toBeNull();
    expect(
      await t.em().count(AuditEvent, { action: 'permission_set.grant_refused', actor: 'UADMIN' }),
    ).toBeGreaterThan(0);
  });

  it('is answered on the person card without waiting for Slack, and refused by DM when Slack then says guest', async () => {
    t.standin.addMember({ id: 'UGUEST5', name: 'ivy', email: 'ivy@acme.test', guest: 'multi_channel' });
    const account = await t.account();
    await t.roster.deps.directory.upsert(t.em(), account, [memberOf(t.standin.userOf('UGUEST5'))!]);
    // Recorded before the mirror kept guest flags: only Slack can say.
    await query(
      t.em(),
      sql`update slack_member set is_restricted = null, is_ultra_restricted = null where slack_user_id = 'UGUEST5'`,
    );
    const { user, view } = await permissionSetForm('ivy@acme.test', 'UGUEST5');
    // Slack is slow to answer about her: the form's answer must not wait for it (the driver fails a
    // submission not answered within 3 s).
    t.standin.delayNext('users.info', 2500);
    const result = await t.slack.submitView(view, { permission_set: 'Admin' }, { user: 'UADMIN' });
    expect(result.status).toBe(200);
    expect(result.json?.response_action).toBeUndefined();
    const told = await t.standin.waitForMessage(
      (m) => m.channel === 'DUADMIN' && String(m.text).includes('ivy@acme.test is a multi-channel guest'),
      10_000,
    );
    expect(String(told.text)).toContain('Nothing was changed');
    expect(
      (await t.em().findOneOrFail(User, user.id, { populate: ['permissionSet'] })).permissionSet,
    ).toBeNull();
    expect(
      await t.em().count(AuditEvent, {
        action: 'permission_set.grant_refused',
        actor: 'UADMIN',
        data: { for: 'ivy@acme.test' },
      }),
    ).toBe(1);
  });

  it('is refused for a guest’s address in /invite, which adds nobody', async () => {
    t.standin.addMember({ id: 'UGUEST4', name: 'hal', email: 'hal@acme.test', guest: 'single_channel' });
    await t.roster.deps.directory.upsert(t.em(), await t.account(), [memberOf(t.standin.userOf('UGUEST4'))!]);
    await t.slack.command('/invite', 'hal@acme.test', { user: 'UADMIN' });
    await t.slack.submitView(t.standin.lastOpenedView(), { permission_set: 'Admin' }, { user: 'UADMIN' });
    const dm = await eventually(() =>
      t.standin.messagesTo('UADMIN').find((m) => textOf(m).includes('hal@acme.test')),
    );
    expect(textOf(dm)).toContain(
      'hal@acme.test is a single-channel guest in Slack, and a guest cannot be a Roster admin',
    );
    expect(await t.em().count(User, { email: 'hal@acme.test' })).toBe(0);
  });

  /** A new guest of the workspace, known to the directory mirror, whom Roster does not know yet. */
  async function newGuest(id: string, name: string) {
    t.standin.addMember({ id, name, email: `${name}@acme.test`, guest: 'multi_channel' });
    await t.roster.deps.directory.upsert(t.em(), await t.account(), [memberOf(t.standin.userOf(id))!]);
    return `${name}@acme.test`;
  }

  it('is refused for a guest when an admin converts a contact, with the reason on the form', async () => {
    const email = await newGuest('UGUEST6', 'jan');
    const em = t.em();
    const contact = em.create(Contact, { account: await t.account(), name: 'Jan Guest', email });
    await em.flush();
    await t.slack.clickButton(
      buttonMessage('contact_convert', contact.id, 'Convert to user'),
      'Convert to user',
      {
        user: 'UADMIN',
      },
    );
    const result = await t.slack.submitView(
      t.standin.lastOpenedView(),
      { role: 'employee', permission_set: 'Admin' },
      { user: 'UADMIN' },
    );
    expect(result.json?.errors).toEqual({
      permission_set: `${email} is a multi-channel guest in Slack, and a guest cannot be a Roster admin, so “Admin” was not given. Choose another set, or make them a full member in Slack first.`,
    });
    expect(await t.em().findOne(User, { email })).toBeNull();
  });

  it('is refused for a guest in a CSV import: the row is in error and nobody is made', async () => {
    const email = await newGuest('UGUEST7', 'kim');
    const file = t.standin.addFile({
      id: 'FGUESTADMIN',
      name: 'guest-admins.csv',
      content: `type,email,first_name,permission_set\nuser,${email},Kim,Admin\nuser,lou@acme.test,Lou,Admin\n`,
    });
    await t.slack.fileShare('UADMIN', file);
    const preview = await eventually(
      () =>
        t.standin.messages
          .filter((m) => m.channel === 'DUADMIN' && /Preview of guest-admins\.csv/.test(textOf(m)))
          .at(-1),
      10_000,
    );
    expect(textOf(preview)).toContain('*1* in error');
    expect(textOf(preview)).toContain(
      `email ${email} is a guest in Slack, and a guest cannot be a Roster admin, so the permission set Admin was not given`,
    );
    await t.slack.clickButton(preview, { actionId: 'csv_import_start' }, { user: 'UADMIN' });
    await eventually(async () => (await t.em().findOne(User, { email: 'lou@acme.test' })) !== null, 10_000);
    expect(await t.em().findOne(User, { email })).toBeNull();
  });
});

describe('a Roster Admin whose Slack account is deleted', () => {
  it('is not among the admins seat requests are sent to, nor an admin anywhere', async () => {
    const em = t.em();
    const account = await t.account();
    const adminSet = await em.findOneOrFail(PermissionSet, { account, isAdmin: true });
    em.create(User, {
      account,
      email: 'flo@acme.test',
      role: 'employee',
      status: 'active',
      slackUserId: 'UFLO',
      permissionSet: adminSet,
    });
    await em.flush();
    const flo = { id: 'UFLO', name: 'flo', team_id: account.teamId, profile: { email: 'flo@acme.test' } };
    const admins = () => t.roster.deps.admins.adminIds(t.em(), account);
    await t.roster.deps.directory.upsert(t.em(), account, [memberOf({ ...flo, deleted: false })!]);
    expect(await eventually(admins, 30_000)).toContain('UFLO');
    // Slack deleted Flo; Roster keeps her active (an admin reactivated her since, say).
    await t.roster.deps.directory.upsert(t.em(), account, [memberOf({ ...flo, deleted: true })!]);
    expect(await admins()).not.toContain('UFLO');
    expect(await t.roster.deps.admins.isAdmin(t.em(), account, 'UFLO')).toBe(false);
  });
});
