import { Account } from '../../../src/features/accounts/account.entity.ts';
import { Invitation } from '../../../src/features/invites/invitation.entity.ts';
import { type IUser, type Role, User } from '../../../src/features/people/user.entity.ts';
import { SeatRequest } from '../../../src/features/seats/seat-request.entity.ts';
import { eventually, jobsDrained, startTestApp, TEAM_ID, type TestApp } from '../../support/app.ts';
import { findButton, textOf } from '../../support/views.ts';

let t: TestApp;

beforeAll(async () => {
  t = await startTestApp({ seatLimit: 50 });
});
afterAll(() => t.stop());

let n = 0;
/** Someone whose invitation expired: their seat went back, as the expiry job leaves them. */
async function expired(role: Role = 'employee', extra: Partial<IUser> = {}) {
  const em = t.em();
  const user = em.create(User, {
    account: await t.account(),
    email: `late${++n}@acme.test`,
    firstName: 'Lee',
    lastName: `Late${n}`,
    role,
    status: 'expired',
    addedBy: 'UADMIN',
    ...extra,
  });
  await em.flush();
  return user;
}

const fresh = (id: string) => t.em().findOneOrFail(User, id);

/** Opens the Home tab as `user` and returns the view published. */
async function openHome(user: string) {
  await t.slack.event({ type: 'app_home_opened', user, tab: 'home', channel: `D${user}` });
  const view = t.standin.homeView(user);
  if (!view) throw new Error(`no Home tab for ${user}`);
  return view;
}

/** The actions block the Home tab shows for `user`, found by its block id. */
function rowOf(home: any, user: IUser) {
  const block = home.blocks.find((b: any) => b.block_id === `home_expired:${user.id}`);
  if (!block) throw new Error(`no row for ${user.email} in ${textOf(home)}`);
  return { blocks: [block], type: 'home', id: home.id };
}

/** Presses a Home button in `user`'s row and returns the form it opened. */
async function press(home: any, who: string, person: IUser, text: string) {
  const opened = t.standin.callsTo('views.open').length;
  await t.slack.clickButton({ ...home, blocks: rowOf(home, person).blocks }, text, { user: who });
  await eventually(() => t.standin.callsTo('views.open').length > opened);
  return t.standin.lastOpenedView();
}

describe('expired invitations on an admin’s Home tab', () => {
  it('lists them with Invite again, which takes a seat, sends a new link and redraws the tab once', async () => {
    const user = await expired();
    const home = await openHome('UADMIN');
    expect(textOf(home)).toContain(
      `Lee Late${n} (${user.email}), Employee (paid seat): the invitation expired`,
    );
    const form = await press(home, 'UADMIN', user, 'Invite again');
    expect(form.callback_id).toBe('person_change_modal');

    const published = t.standin.callsTo('views.publish').length;
    const res = await t.slack.submitView(form, {}, { user: 'UADMIN' });
    expect(res.json?.errors).toBeUndefined();
    await eventually(async () => (await fresh(user.id)).status === 'invited');
    await jobsDrained(t.em());
    expect(await t.em().count(Invitation, { user: user.id, status: 'pending' })).toBe(1);
    // The tab is drawn again without them, without the admin having to open it.
    await eventually(() => t.standin.callsTo('views.publish').length > published);
    const after = await eventually(() => t.standin.homeView('UADMIN'));
    expect(after.blocks.some((b: any) => b.block_id === `home_expired:${user.id}`)).toBe(false);

    // The same form sent again (a double click, Slack retrying) changes nothing more.
    await t.slack.submitView(form, {}, { user: 'UADMIN' });
    await jobsDrained(t.em());
    expect(await t.em().count(Invitation, { user: user.id })).toBe(1);
  });

  it('refuses a second form opened by a double click, saying the person is invited now', async () => {
    const user = await expired();
    const home = await openHome('UADMIN');
    const first = await press(home, 'UADMIN', user, 'Invite again');
    const second = await press(home, 'UADMIN', user, 'Invite again');
    await t.slack.submitView(first, {}, { user: 'UADMIN' });
    await eventually(async () => (await fresh(user.id)).status === 'invited');
    const res = await t.slack.submitView(second, {}, { user: 'UADMIN' });
    expect(JSON.stringify(res.json?.errors)).toContain('is invited, not deactivated or expired');
    await jobsDrained(t.em());
    expect(await t.em().count(Invitation, { user: user.id })).toBe(1);
  });
});

describe('Invite again for someone deactivated after the form opened', () => {
  it('refuses by DM, saying what happened, and leaves them deactivated', async () => {
    const user = await expired();
    const home = await openHome('UADMIN');
    const form = await press(home, 'UADMIN', user, 'Invite again');
    // Meanwhile Slack (or another admin) deactivates them.
    await t.em().nativeUpdate(User, { id: user.id }, { status: 'deactivated' });

    const res = await t.slack.submitView(form, {}, { user: 'UADMIN' });
    expect(res.json?.errors).toBeUndefined();
    const dm = await t.standin.waitForMessage(
      (m) =>
        m.channel === 'DUADMIN' &&
        textOf(m).includes(user.email) &&
        textOf(m).includes('Nothing was changed'),
    );
    expect(textOf(dm)).toContain(
      `Lee Late${n} was deactivated after the Invite again form was opened (in Slack or by an admin), so they were not invited again.`,
    );
    await jobsDrained(t.em());
    expect((await fresh(user.id)).status).toBe('deactivated');
    expect(await t.em().count(Invitation, { user: user.id })).toBe(0);
  });
});

describe('Invite again with every seat taken', () => {
  it('says so on the form and offers to add a seat, which brings them back with one seat more', async () => {
    const user = await expired();
    const account = await t.account();
    const used = (await t.roster.deps.seats.usage(t.em(), account)).used;
    await t.setSeatLimit(used);
    try {
      const form = await press(await openHome('UADMIN'), 'UADMIN', user, 'Invite again');
      const refused = await t.slack.submitView(form, {}, { user: 'UADMIN' });
      expect(JSON.stringify(refused.json?.errors)).toContain('Add a seat if none is free');
      expect((await fresh(user.id)).status).toBe('expired');
      const again = await press(await openHome('UADMIN'), 'UADMIN', user, 'Invite again');
      const res = await t.slack.submitView(again, { add_seat: ['add_seat'] }, { user: 'UADMIN' });
      expect(res.json?.errors).toBeUndefined();
      await eventually(async () => (await fresh(user.id)).status === 'invited');
      expect((await t.em().findOneOrFail(Account, account.id)).seatLimit).toBe(used + 1);
    } finally {
      await t.setSeatLimit(50);
    }
  });
});

describe('expired invitations on a non-admin’s Home tab', () => {
  it('shows the ones they sent, asks an admin for the seat, and redraws the tab', async () => {
    const mine = await expired('employee', { addedBy: 'UMANAGER' });
    const others = await expired('employee', { addedBy: 'UADMIN' });
    const home = await openHome('UMANAGER');
    const text = textOf(home);
    expect(text).toContain('*Your invitations that expired* (1)');
    expect(text).toContain(mine.email);
    expect(text).not.toContain(others.email);
    expect(() => findButton(rowOf(home, mine).blocks, 'Invite again')).toThrow();

    const form = await press(home, 'UMANAGER', mine, 'Ask an admin to invite again');
    const published = t.standin.callsTo('views.publish').length;
    await t.slack.submitView(form, {}, { user: 'UMANAGER' });
    const request = await eventually(() =>
      t.em().findOne(SeatRequest, { email: mine.email, status: 'pending', kind: 'reactivate' }),
    );
    expect(request.requestedBy).toBe('UMANAGER');
    expect((await fresh(mine.id)).status).toBe('expired');
    await eventually(() => t.standin.callsTo('views.publish').length > published);
    // Drawn again: the request is said, and not offered a second time.
    const after = await eventually(() => t.standin.homeView('UMANAGER'));
    expect(textOf(after)).toContain('An admin has been asked to approve a seat (asked by <@UMANAGER>).');
    expect(() => findButton(rowOf(after, mine).blocks, { actionId: 'person_change_reactivate' })).toThrow();
    // An admin sees it asked for, and may still invite them again.
    const admins = await openHome('UADMIN');
    expect(textOf(admins)).toContain('An admin has been asked to approve a seat (asked by <@UMANAGER>).');
    findButton(rowOf(admins, mine).blocks, 'Invite again');
  });

  it('files one seat request when two forms are opened by a double click and both sent', async () => {
    const mine = await expired('contractor', { addedBy: 'UMANAGER' });
    const home = await openHome('UMANAGER');
    const first = await press(home, 'UMANAGER', mine, 'Ask an admin to invite again');
    const second = await press(home, 'UMANAGER', mine, 'Ask an admin to invite again');
    await t.slack.submitView(first, {}, { user: 'UMANAGER' });
    await eventually(() => t.em().findOne(SeatRequest, { email: mine.email, status: 'pending' }));
    const res = await t.slack.submitView(second, {}, { user: 'UMANAGER' });
    expect(JSON.stringify(res.json?.errors)).toContain('is already waiting for an admin');
    await jobsDrained(t.em());
    expect(await t.em().count(SeatRequest, { email: mine.email })).toBe(1);
  });

  it('does not bring back someone deactivated after an admin was asked to invite them again', async () => {
    const mine = await expired('employee', { addedBy: 'UMANAGER' });
    const form = await press(await openHome('UMANAGER'), 'UMANAGER', mine, 'Ask an admin to invite again');
    await t.slack.submitView(form, {}, { user: 'UMANAGER' });
    const request = await eventually(() =>
      t.em().findOne(SeatRequest, { email: mine.email, status: 'pending', kind: 'reactivate' }),
    );
    // Deactivated meanwhile (Slack deleted them, say), then an admin approves the old request.
    await t.em().nativeUpdate(User, { id: mine.id }, { status: 'deactivated' });
    const decision = await t.roster.deps.seats.decide(t.em(), await t.account(), {
      requestId: request.id,
      actor: { slackUserId: 'UADMIN', isAdmin: true, surface: 'slack' },
      decision: 'approve',
    });
    expect(decision.outcome).toBe('refused');
    expect(decision.outcome === 'refused' && decision.reason).toContain(
      'is deactivated now, no longer expired as when the request was made',
    );
    expect((await fresh(mine.id)).status).toBe('deactivated');
  });

  it('offers nothing to bring back a client: that is an admin’s', async () => {
    const client = await expired('client', { addedBy: 'UMEMBER' });
    const home = await openHome('UMEMBER');
    expect(textOf(home)).toContain('Ask an admin to send it again.');
    expect(() => findButton(rowOf(home, client).blocks, { actionId: 'person_change_reactivate' })).toThrow();
  });

  it('shows nothing of expired invitations to someone who sent none', async () => {
    expect(textOf(await openHome('UNOBODY'))).not.toContain('expired');
  });
});

describe('forged Home buttons', () => {
  const forged = (user: string, value: unknown, actionId = 'person_change_reactivate') =>
    t.slack.blockAction({
      user,
      actions: [{ type: 'button', action_id: actionId, block_id: 'b', value: JSON.stringify(value) }],
      view: { id: 'VHOME', type: 'home' },
    });

  it('refuses a non-admin an admin-only change, by DM, and opens no form', async () => {
    const user = await expired('employee', { addedBy: 'UMANAGER' });
    const opened = t.standin.callsTo('views.open').length;
    await forged('UMANAGER', { u: user.id, c: 'email', h: 1 }, 'person_change_email');
    await t.standin.waitForMessage(
      (m) => m.channel === 'DUMANAGER' && textOf(m).includes('Only admins can change that.'),
    );
    expect(t.standin.callsTo('views.open').length).toBe(opened);
  });

  it('refuses a person of another account, saying they are not in Roster', async () => {
    const em = t.em();
    const other = em.create(Account, { teamId: 'T0ELSE', name: 'Else' });
    const stranger = em.create(User, {
      account: other,
      email: 'stranger@else.test',
      role: 'employee',
      status: 'expired',
    });
    await em.flush();
    const opened = t.standin.callsTo('views.open').length;
    await forged('UADMIN', { u: stranger.id, c: 'reactivate', h: 1 });
    await t.standin.waitForMessage(
      (m) => m.channel === 'DUADMIN' && textOf(m).includes('That person is no longer in Roster.'),
    );
    expect(t.standin.callsTo('views.open').length).toBe(opened);
    expect((await fresh(stranger.id)).status).toBe('expired');
    expect(await t.em().count(Account, { teamId: TEAM_ID })).toBe(1);
  });
});

describe('a long list of expired invitations', () => {
  it('shows ten with their buttons within Slack’s limits, long names and addresses cut, and counts the rest', async () => {
    const em = t.em();
    const account = await t.account();
    for (let i = 0; i < 40; i++) {
      em.create(User, {
        account,
        email: `${`very.long.address.${i}.`.padEnd(200, 'x')}@example.com`,
        firstName: 'Bartholomew-Maximilian '.repeat(10),
        lastName: `${'Featherstonehaugh '.repeat(10)}${i}`,
        role: 'contractor',
        status: 'expired',
        addedBy: 'UADMIN',
      });
    }
    // Every other list full too: the tab holds them all within Slack's 100 blocks.
    const inAWeek = new Date(Date.now() + 7 * 86_400_000);
    for (let i = 0; i < 12; i++) {
      em.create(Invitation, {
        account,
        user: em.create(User, { account, email: `waiting${i}@acme.test`, role: 'client', status: 'invited' }),
        expiresAt: inAWeek,
      });
      em.create(SeatRequest, {
        account,
        kind: 'invite',
        status: 'pending',
        email: `queued${i}@acme.test`,
        role: 'employee',
        requestedBy: 'UMANAGER',
        expiresAt: inAWeek,
      });
    }
    await em.flush();
    const total = await t.em().count(User, { account, status: 'expired' });
    const refused = t.standin.refusedBlocks.length;
    const home = await openHome('UOWNER');
    expect(t.standin.refusedBlocks.slice(refused)).toEqual([]);
    expect(home.blocks.length).toBeLessThanOrEqual(100);
    expect(home.blocks.filter((b: any) => b.accessory?.text?.text === 'Person card')).toHaveLength(10);
    const text = textOf(home);
    expect(text).toContain(`*Expired invitations* (${total})`);
    expect(text).toContain(`…and ${total - 10} more (\`/invite pending\` lists them).`);
    expect(home.blocks.filter((b: any) => b.block_id?.startsWith('home_expired:'))).toHaveLength(10);
  });
});

describe('a non-admin’s forged ask, refused before any form opens', () => {
  const press = (user: string, value: unknown, actionId: string) =>
    t.slack.blockAction({
      user,
      actions: [{ type: 'button', action_id: actionId, block_id: 'b', value: JSON.stringify(value) }],
      view: { id: 'VHOME', type: 'home' },
    });

  it('for a client, whom only an admin invites again', async () => {
    const client = await expired('client', { addedBy: 'UMANAGER' });
    const opened = t.standin.callsTo('views.open').length;
    await press('UMANAGER', { u: client.id, c: 'reactivate', h: 1 }, 'person_change_reactivate');
    await t.standin.waitForMessage(
      (m) =>
        m.channel === 'DUMANAGER' &&
        textOf(m).includes('as a client they take no seat, so there is nothing to ask'),
    );
    expect(t.standin.callsTo('views.open').length).toBe(opened);
  });

  it('for someone no longer expired or locked', async () => {
    const em = t.em();
    const active = em.create(User, {
      account: await t.account(),
      email: `active${++n}@acme.test`,
      role: 'employee',
      status: 'active',
      addedBy: 'UMANAGER',
    });
    await em.flush();
    const opened = t.standin.callsTo('views.open').length;
    await press('UMANAGER', { u: active.id, c: 'unlock' }, 'person_change_unlock');
    await t.standin.waitForMessage(
      (m) => m.channel === 'DUMANAGER' && textOf(m).includes('is active, not locked'),
    );
    expect(t.standin.callsTo('views.open').length).toBe(opened);
    expect(await t.em().count(SeatRequest, { email: active.email })).toBe(0);
  });
});
