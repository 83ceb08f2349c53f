import { ref } from '@mikro-orm/core';
import { Account, PermissionSet } from '../../../src/features/accounts/account.entity.ts';
import { AuditEvent } from '../../../src/features/audit/audit-event.entity.ts';
import { Contact } from '../../../src/features/contacts/contact.entity.ts';
import { Invitation } from '../../../src/features/invites/invitation.entity.ts';
import { User } from '../../../src/features/people/user.entity.ts';
import { SeatRequest } from '../../../src/features/seats/seat-request.entity.ts';
import { eventually, jobsDrained, startTestApp, type TestApp } from '../../support/app.ts';
import { fillView, textOf } from '../../support/views.ts';
import { openCard, personMaker } from './support.ts';

let t: TestApp;

beforeAll(async () => {
  t = await startTestApp({ seatLimit: 10 });
});
afterAll(() => t.stop());

const person = personMaker(() => t, { first: 'Pat', last: 'Person', domain: 'acme.test' });

const fresh = (id: string) => t.em().findOneOrFail(User, id, { populate: ['permissionSet'] });
const usedSeats = async () => (await t.roster.deps.seats.usage(t.em(), await t.account())).used;

const card = (user: string, text: string) => openCard(t, user, text);

/** Presses a card button and submits the form it opened with `values`. */
async function change(user: string, cardBody: any, buttonText: string, values: Record<string, any> = {}) {
  await t.slack.clickButton(cardBody, buttonText, { user });
  const view = t.standin.lastOpenedView();
  expect(view.callback_id).toBe('person_change_modal');
  return { view, result: await t.slack.submitView(view, values, { user }) };
}

describe('/people', () => {
  it('shows an admin the card with status, seat, details and history, and the actions that fit', async () => {
    const user = await person('locked', 'employee', { title: 'Engineer', phone: '+1 555 0101' });
    const em = t.em();
    em.create(Contact, {
      account: await t.account(),
      name: 'Pat',
      email: null,
      company: 'Acme Ltd',
      notes: 'Met at the fair',
      user,
    });
    await em.flush();
    const res = await card('UADMIN', user.email);
    const text = textOf(res.body);
    expect(text).toContain(user.email);
    expect(text).toContain('locked: imported, cannot log in until an admin unlocks them');
    expect(text).toContain('holds no paid seat');
    expect(text).toMatch(/Engineer[\s\S]*Acme Ltd[\s\S]*Met at the fair/);
    expect(text).toContain('History');
    const buttons = res.body.blocks.flatMap((b: any) => b.elements ?? []).map((e: any) => e.text?.text);
    expect(buttons).toEqual([
      'Unlock',
      'Change role',
      'Permission set',
      'Edit details',
      'Change email',
      'Deactivate',
    ]);
  });

  it("shows the card of a person with long names, shortening them in Deactivate's confirmation", async () => {
    const user = await person('active', 'employee', {
      firstName: 'F'.repeat(255),
      lastName: 'L'.repeat(255),
    });
    const res = await card('UADMIN', user.email);
    const deactivate = res.body.blocks
      .flatMap((b: any) => b.elements ?? [])
      .find((e: any) => e.action_id === 'person_deactivate');
    const text = deactivate.confirm.text.text;
    expect(text.length).toBeLessThanOrEqual(300);
    expect(text).toMatch(/^F{100}.*… will no longer be able to log in, and their paid seat is freed\./);
  });

  it('finds a person by @mention, as Slack escapes it', async () => {
    const user = await person('active', 'client', { slackUserId: 'UMEMBER' });
    const res = await card('UADMIN', '@max');
    expect(textOf(res.body)).toContain(user.email);
  });

  it('says who is not in Roster and how to invite them; help for anything else', async () => {
    const missing = await card('UMANAGER', 'nobody@acme.test');
    expect(textOf(missing.body)).toContain('is not a user in Roster');
    expect(textOf(missing.body)).toContain('/invite nobody@acme.test');
    const help = await card('UMANAGER', 'what is this');
    expect(textOf(help.body)).toContain('could not read');
    expect(textOf(help.body)).toContain('/people ana@example.com');
  });

  it('opens from the Person card button in /contact find results', async () => {
    const user = await person('invited', 'employee', { lastName: 'Findable' });
    await t.slack.command('/contact', 'find findable', { user: 'UMANAGER' });
    const results = await t.standin.waitForResponse((r) => textOf(r.body).includes(user.email));
    await t.slack.clickButton(results.body, 'Person card', { user: 'UMANAGER' });
    const opened = await t.standin.waitForResponse((r) => textOf(r.body).includes('History'));
    expect(textOf(opened.body)).toContain('invited, not yet accepted');
  });

  it('opens from the App Home list of pending invitations, as a DM', async () => {
    const user = await person('invited', 'employee', { lastName: 'Homebound' });
    const em = t.em();
    em.create(Invitation, {
      account: await t.account(),
      user,
      tokenHash: 'b'.repeat(64),
      status: 'pending',
      expiresAt: new Date(Date.now() + 86_400_000),
    });
    await em.flush();
    await t.slack.event({ type: 'app_home_opened', user: 'UADMIN', tab: 'home' });
    const home = await eventually(() => {
      const view = t.standin.homeView('UADMIN');
      return view && textOf(view).includes(user.email) ? view : undefined;
    });
    await t.slack.clickButton(home, { actionId: 'person_open', value: user.id }, { user: 'UADMIN' });
    const dm = await t.standin.waitForMessage(
      (m) => m.channel === 'DUADMIN' && textOf(m).includes('Pat Homebound'),
    );
    expect(textOf(dm)).toContain('History');
  });

  it('sends the App Home card, the deactivation and the notice to the person once Slack allows, when it refuses posts', async () => {
    const user = await person('active', 'employee', { lastName: 'Latecard', slackUserId: 'ULATE' });
    await t.slack.event({ type: 'app_home_opened', user: 'UADMIN', tab: 'home' });
    const home = await eventually(() => t.standin.homeView('UADMIN'));
    const posted = (channel: string, pattern: RegExp) =>
      t.standin.messages.filter(
        (m) => m.method === 'chat.postMessage' && m.channel === channel && pattern.test(textOf(m)),
      );
    const limitedBefore = t.standin.rateLimited.length;
    t.standin.limitRate('chat.postMessage', { max: 0, windowMs: 60_000, retryAfter: 3 });
    // The App Home has no reply address: the card goes by DM, which Slack refuses for now.
    await t.slack.blockAction({
      user: 'UADMIN',
      actions: [{ type: 'button', action_id: 'person_open', block_id: 'b', value: user.id }],
      view: home,
    });
    await t.slack.blockAction({
      user: 'UADMIN',
      actions: [{ type: 'button', action_id: 'person_deactivate', block_id: 'b', value: user.id }],
      view: home,
    });
    expect((await fresh(user.id)).status).toBe('deactivated');
    expect(
      t.standin.rateLimited.slice(limitedBefore).filter((c) => c.method === 'chat.postMessage'),
    ).toHaveLength(3);
    t.standin.clearRateLimit('chat.postMessage');
    // Each comes once Slack allows, once.
    await eventually(() => posted('DUADMIN', /Pat Latecard/).length === 2, 20_000);
    await eventually(() => posted('DULATE', /deactivated your access/).length === 1, 20_000);
    await jobsDrained(t.em(), { timeoutMs: 30_000 });
    expect(posted('DUADMIN', /Pat Latecard/)).toHaveLength(2);
    expect(posted('DUADMIN', /Deactivated Pat Latecard/)).toHaveLength(1);
    expect(posted('DULATE', /deactivated your access/)).toHaveLength(1);
  }, 60_000);

  it('shows a requester the card read-only, with a way to ask for a seat-taking change', async () => {
    const user = await person('locked');
    const res = await card('UMANAGER', user.email);
    const buttons = res.body.blocks.flatMap((b: any) => b.elements ?? []).map((e: any) => e.text?.text);
    expect(buttons).toEqual(['Ask an admin to unlock']);
    const { result } = await change('UMANAGER', res.body, 'Ask an admin to unlock');
    expect(result.status).toBe(200);
    const request = await eventually(() =>
      t.em().findOne(SeatRequest, { email: user.email, status: 'pending' }),
    );
    expect(request.kind).toBe('unlock');
    expect((await fresh(user.id)).status).toBe('locked');

    // Asking again, from a card opened before: the form says a request is already waiting.
    const again = await change('UMANAGER', res.body, 'Ask an admin to unlock');
    expect(again.result.json.errors.send_now).toBe(
      `A seat request for ${user.email} is already waiting for an admin.`,
    );
    expect(await t.em().count(SeatRequest, { email: user.email })).toBe(1);
  });
});

describe('lifecycle changes from the card', () => {
  it('unlocks an imported user into invited, taking a seat and sending the invitation', async () => {
    const user = await person('locked');
    const before = await usedSeats();
    const res = await card('UADMIN', user.email);
    await change('UADMIN', res.body, 'Unlock', { send_now: ['send_now'] });
    expect((await fresh(user.id)).status).toBe('invited');
    expect(await usedSeats()).toBe(before + 1);
    await t.smtp.waitForMail((m) => m.toText === user.email);
    await t.standin.waitForMessage((m) => m.channel === 'DUADMIN' && textOf(m).includes('Unlocked'));
  });

  it('offers to add a seat when none is free, and adds one only when asked', async () => {
    const user = await person('locked');
    const used = await usedSeats();
    await t.setSeatLimit(used);
    const res = await card('UADMIN', user.email);
    const { view, result } = await change('UADMIN', res.body, 'Unlock', { send_now: [] });
    expect(result.json.errors.add_seat).toMatch(/No paid seat is free[\s\S]*Add a seat if none is free/);
    expect((await fresh(user.id)).status).toBe('locked');
    const again = await t.slack.submitView(
      view,
      { send_now: [], add_seat: ['add_seat'] },
      { user: 'UADMIN' },
    );
    expect(again.status).toBe(200);
    expect((await fresh(user.id)).status).toBe('not_invited');
    expect((await t.em().findOneOrFail(Account, (await t.account()).id)).seatLimit).toBe(used + 1);
    await t.setSeatLimit(50);
  });

  it('deactivates: frees the seat, cancels the pending invitation, tells an active person', async () => {
    const invited = await person('invited');
    const em = t.em();
    em.create(Invitation, {
      account: await t.account(),
      user: invited,
      tokenHash: 'a'.repeat(64),
      status: 'pending',
      expiresAt: new Date(Date.now() + 86_400_000),
    });
    await em.flush();
    const before = await usedSeats();
    const res = await card('UADMIN', invited.email);
    await t.slack.clickButton(res.body, 'Deactivate', { user: 'UADMIN' });
    expect((await fresh(invited.id)).status).toBe('deactivated');
    expect(await usedSeats()).toBe(before - 1);
    expect((await t.em().findOneOrFail(Invitation, { user: invited.id })).status).toBe('cancelled');

    const active = await person('active', 'employee', { slackUserId: 'UMANAGER' });
    const activeCard = await card('UADMIN', active.email);
    await t.slack.clickButton(activeCard.body, 'Deactivate', { user: 'UADMIN' });
    await t.standin.waitForMessage(
      (m) => m.channel === 'DUMANAGER' && textOf(m).includes('deactivated your access'),
    );
    expect(await t.em().count(AuditEvent, { action: 'user.deactivated', subjectId: active.id })).toBe(1);
  });

  it('reactivates a deactivated person through the seat rules', async () => {
    const user = await person('deactivated');
    const res = await card('UADMIN', user.email);
    await change('UADMIN', res.body, 'Reactivate', { send_now: [] });
    expect((await fresh(user.id)).status).toBe('not_invited');
  });

  it("changes a client's role to a paid one, and a paid one back, freeing the seat", async () => {
    const user = await person('active', 'client');
    const before = await usedSeats();
    await change('UADMIN', (await card('UADMIN', user.email)).body, 'Change role', { role: 'contractor' });
    expect((await fresh(user.id)).role).toBe('contractor');
    expect(await usedSeats()).toBe(before + 1);
    await change('UADMIN', (await card('UADMIN', user.email)).body, 'Change role', { role: 'client' });
    expect(await usedSeats()).toBe(before);
  });

  it('changes the permission set; a requester cannot, even with a forged button', async () => {
    const user = await person('active');
    await change('UADMIN', (await card('UADMIN', user.email)).body, 'Permission set', {
      permission_set: 'Manager',
    });
    expect((await fresh(user.id)).permissionSet?.getEntity().name).toBe('Manager');

    const adminCard = (await card('UADMIN', user.email)).body;
    await t.slack.clickButton(adminCard, 'Permission set', { user: 'UMANAGER' });
    await t.standin.waitForResponse((r) => textOf(r.body).includes('Only admins can change that.'));
    const admin = await t
      .em()
      .findOneOrFail(PermissionSet, { account: (await t.account()).id, isAdmin: true });
    const service = t.roster.deps.person;
    await expect(
      service.changePermissionSet(
        t.em(),
        await t.account(),
        { slackUserId: 'UMANAGER', isAdmin: false, surface: 'slack' },
        user.id,
        admin.id,
      ),
    ).rejects.toMatchObject({ code: 'not_admin' });
    expect((await fresh(user.id)).permissionSet?.getEntity().name).toBe('Manager');
  });

  it('edits details, keeping company and notes on the linked contact details', async () => {
    const user = await person('active');
    const res = await card('UADMIN', user.email);
    const { view } = await change('UADMIN', res.body, 'Edit details', {
      first_name: 'Patricia',
      company: 'Globex',
      notes: 'Prefers email',
    });
    const saved = await fresh(user.id);
    expect(saved.firstName).toBe('Patricia');
    const contact = await t.em().findOneOrFail(Contact, { user: user.id });
    expect(contact).toMatchObject({ company: 'Globex', notes: 'Prefers email' });

    const filled = fillView(view, {});
    filled.state.values.notes = { notes: { type: 'plain_text_input', value: 'n'.repeat(3001) } };
    const tooLong = await t.slack.viewSubmission({ user: 'UADMIN', view: filled });
    expect(tooLong.json.errors.notes).toMatch(/under 3000 characters/);
  });

  it('saves a detail of zero-width characters alone as empty, not as a blank that looks filled in', async () => {
    const user = await person('active');
    await change('UADMIN', (await card('UADMIN', user.email)).body, 'Edit details', {
      first_name: '\u200B\u200D',
      last_name: 'Visible',
      title: ' \u2060\uFEFF ',
    });
    expect(await fresh(user.id)).toMatchObject({ firstName: null, lastName: 'Visible', title: null });
  });

  it('keeps what another admin changed while the Edit details form was open, saving only what was typed', async () => {
    const user = await person('active', 'employee', { title: 'Engineer', phone: '+1 555 0001' });
    const res = await card('UADMIN', user.email);
    await t.slack.clickButton(res.body, 'Edit details', { user: 'UADMIN' });
    const view = t.standin.lastOpenedView();
    // Another admin changes the phone and adds a company while this form is open.
    await t.roster.deps.person.editDetails(
      t.em(),
      await t.account(),
      { slackUserId: 'UOWNER', isAdmin: true, surface: 'slack' },
      user.id,
      {
        firstName: 'Pat',
        lastName: user.lastName,
        title: 'Engineer',
        phone: '+1 555 0002',
        company: 'Initech',
      },
    );
    const before = t.standin.messages.length;
    await t.slack.submitView(view, { title: 'Lead engineer' }, { user: 'UADMIN' });
    const saved = await fresh(user.id);
    expect(saved).toMatchObject({ title: 'Lead engineer', phone: '+1 555 0002', firstName: 'Pat' });
    expect((await t.em().findOneOrFail(Contact, { user: user.id })).company).toBe('Initech');
    const dm = await eventually(() =>
      t.standin.messages.slice(before).find((m) => String(m.text).includes('details')),
    );
    expect(dm.text).toContain('(1 changed)');
  });

  it('shows every detail a CSV import may hold whole, and keeps notes too long for the form unless replaced', async () => {
    const title = `Head of ${'T'.repeat(247)}`;
    const user = await person('active', 'employee', { title, lastName: 'L'.repeat(255) });
    const notes = `${'Imported before the limits agreed. '.repeat(114)}end`;
    expect(notes.length).toBeGreaterThan(3000);
    const e = t.em();
    e.create(Contact, { account: await t.account(), user, name: 'Pat', notes, company: 'C'.repeat(255) });
    await e.flush();
    const saves = () =>
      t.standin.messages.filter(
        (m) => m.channel === 'DUADMIN' && textOf(m).includes(`Saved Pat ${'L'.repeat(255)}'s details`),
      );

    const res = await card('UADMIN', user.email);
    const { view } = await change('UADMIN', res.body, 'Edit details', { title: 'Director' });
    const input = (id: string) => view.blocks.find((b: any) => b.block_id === id);
    expect(input('last_name').element.initial_value).toBe('L'.repeat(255));
    expect(input('company').element.initial_value).toBe('C'.repeat(255));
    expect(input('notes').element.initial_value).toBeUndefined();
    expect(input('notes').hint.text).toContain(`holds ${notes.length.toLocaleString('en-US')} characters`);

    expect(textOf(await eventually(() => saves()[0]))).toContain('(1 changed)');
    expect(await fresh(user.id)).toMatchObject({ title: 'Director', lastName: 'L'.repeat(255) });
    const contact = await t.em().findOneOrFail(Contact, { user: user.id });
    expect(contact).toMatchObject({ notes, company: 'C'.repeat(255) });

    // Typing in the field replaces the long notes.
    await change('UADMIN', (await card('UADMIN', user.email)).body, 'Edit details', { notes: 'Short now' });
    expect(textOf(await eventually(() => saves()[1]))).toContain('(1 changed)');
    expect((await t.em().findOneOrFail(Contact, { user: user.id })).notes).toBe('Short now');
  });

  it('refuses a role, permission set or email form left open while another admin changed the same thing', async () => {
    const admin = { slackUserId: 'UOWNER', isAdmin: true, surface: 'slack' as const };
    const account = await t.account();
    const em = t.em();
    const manager = await em.findOneOrFail(PermissionSet, { account, name: 'Manager' });
    const user = await person('active', 'employee');
    const opened = async (button: string) => {
      const res = await card('UADMIN', user.email);
      await t.slack.clickButton(res.body, button, { user: 'UADMIN' });
      return t.standin.lastOpenedView();
    };
    const roleForm = await opened('Change role');
    const setForm = await opened('Permission set');
    const emailForm = await opened('Change email');
    const seatsBefore = await usedSeats();
    // Meanwhile another admin makes them a client (freeing the seat), gives them Manager and a new address.
    await t.roster.deps.people.changeRole(t.em(), account, admin, user.id, 'client');
    await t.roster.deps.person.changePermissionSet(t.em(), account, admin, user.id, manager.id);
    await t.roster.deps.person.changeEmail(t.em(), account, admin, user.id, 'moved@acme.test');
    // Contractor from the form opened for an employee would now take a new seat nobody meant to.
    const role = await t.slack.submitView(roleForm, { role: 'contractor' }, { user: 'UADMIN' });
    expect(role.json?.errors?.role).toContain(
      'role was changed after this form was opened (it is Client (free) now), so nothing was changed',
    );
    const set = await t.slack.submitView(setForm, {}, { user: 'UADMIN' });
    expect(set.json?.errors?.permission_set).toContain(
      'permission set was changed after this form was opened',
    );
    const email = await t.slack.submitView(emailForm, { email: 'other@acme.test' }, { user: 'UADMIN' });
    expect(email.json?.errors?.email).toContain(
      'login email was changed after this form was opened (it is moved@acme.test now)',
    );
    const now = await fresh(user.id);
    expect(now).toMatchObject({ role: 'client', email: 'moved@acme.test' });
    expect(now.permissionSet?.id).toBe(manager.id);
    expect(await usedSeats()).toBe(seatsBefore - 1);
    // The same change made under the lock refuses too: the form's check and the change's are the same rule.
    await expect(
      t.roster.deps.people.changeRole(t.em(), account, admin, user.id, 'contractor', {
        shownRole: 'employee',
      }),
    ).rejects.toThrow('role was changed after this form was opened');
  });

  it("refuses as a login email the address of a contact, also one who is nobody's", async () => {
    const user = await person('active');
    const em = t.em();
    em.create(Contact, { account: await t.account(), name: 'Carla Contact', email: 'carla@acme.test' });
    await em.flush();
    const res = await card('UADMIN', user.email);
    const { result } = await change('UADMIN', res.body, 'Change email', { email: ' CARLA@acme.test ' });
    expect(result.json.errors.email).toContain('belongs to the contact Carla Contact');
    expect((await fresh(user.id)).email).toBe(user.email);
  });

  it('changes the login email, refusing one that another person has, and cancels the old invitation', async () => {
    const user = await person('not_invited');
    const other = await person('active');
    const res = await card('UADMIN', user.email);
    const { view, result } = await change('UADMIN', res.body, 'Change email', {
      email: other.email.toUpperCase(),
    });
    expect(result.json.errors.email).toContain('is already the login of');
    const ok = await t.slack.submitView(view, { email: 'new.address@acme.test' }, { user: 'UADMIN' });
    expect(ok.status).toBe(200);
    expect((await fresh(user.id)).email).toBe('new.address@acme.test');
    expect(await t.em().count(AuditEvent, { action: 'user.email_changed', subjectId: user.id })).toBe(1);
  });

  it('moves a waiting seat request about the person to their new address, freeing the old one', async () => {
    const user = await person('locked');
    const old = user.email;
    const asked = await card('UMANAGER', old);
    await change('UMANAGER', asked.body, 'Ask an admin to unlock');
    const request = await eventually(() => t.em().findOne(SeatRequest, { email: old, status: 'pending' }));
    await eventually(async () => (await t.em().findOneOrFail(SeatRequest, request.id)).messages.length > 0);
    const updates = t.standin.callsTo('chat.update').length;
    const res = await card('UADMIN', old);
    const { result } = await change('UADMIN', res.body, 'Change email', { email: 'moved.request@acme.test' });
    expect(result.json?.errors).toBeUndefined();
    await eventually(async () => (await fresh(user.id)).email === 'moved.request@acme.test');
    expect(await t.em().findOneOrFail(SeatRequest, request.id)).toMatchObject({
      email: 'moved.request@acme.test',
      status: 'pending',
    });
    // The admins' copies name the new address.
    await eventually(() =>
      t.standin
        .callsTo('chat.update')
        .slice(updates)
        .some((c) => textOf(c.args).includes('moved.request@acme.test')),
    );
    expect(await t.em().count(SeatRequest, { email: old, status: 'pending' })).toBe(0);

    // While a request for the address it would move to waits (a member asked to invite someone there),
    // the change is refused, saying why.
    const other = await person('locked');
    const otherCard = await card('UMANAGER', other.email);
    await change('UMANAGER', otherCard.body, 'Ask an admin to unlock');
    await eventually(() => t.em().findOne(SeatRequest, { email: other.email, status: 'pending' }));
    await t.slack.command('/invite', 'spare@acme.test', { user: 'UMEMBER' });
    await t.slack.submitView(t.standin.lastOpenedView(), {}, { user: 'UMEMBER' });
    await eventually(() => t.em().findOne(SeatRequest, { email: 'spare@acme.test', status: 'pending' }));
    const clash = await change('UADMIN', (await card('UADMIN', other.email)).body, 'Change email', {
      email: 'spare@acme.test',
    });
    expect(clash.result.json?.errors?.email).toBe(
      'A seat request for spare@acme.test is already waiting for an admin. Approve or reject it first, then change the email.',
    );
    expect((await fresh(other.id)).email).toBe(other.email);
  });

  it('names a person without a name by their new address on the moved request', async () => {
    const account = await t.account();
    const em = t.em();
    const user = em.create(User, {
      account,
      email: 'nameless.old@acme.test',
      role: 'employee',
      status: 'locked',
    });
    await em.flush();
    const manager = { slackUserId: 'UMANAGER', isAdmin: false, surface: 'slack' } as const;
    expect((await t.roster.deps.people.unlock(t.em(), account, manager, user.id)).status).toBe('requested');
    const request = await eventually(() =>
      t.em().findOne(SeatRequest, { email: 'nameless.old@acme.test', status: 'pending' }),
    );
    await eventually(async () => (await t.em().findOneOrFail(SeatRequest, request.id)).messages.length > 0);
    const updates = t.standin.callsTo('chat.update').length;
    const admin = { slackUserId: 'UADMIN', isAdmin: true, surface: 'slack' } as const;
    await t.roster.deps.person.changeEmail(t.em(), account, admin, user.id, 'nameless.new@acme.test');
    expect(await t.em().findOneOrFail(SeatRequest, request.id)).toMatchObject({
      email: 'nameless.new@acme.test',
      name: 'nameless.new@acme.test',
    });
    const redrawn = await eventually(() =>
      t.standin
        .callsTo('chat.update')
        .slice(updates)
        .find((c) => textOf(c.args).includes('nameless.new')),
    );
    expect(textOf(redrawn.args)).not.toContain('nameless.old');
  });

  it('takes a change of letter case only as the same mailbox: rewritten as typed, the invitation kept', async () => {
    const user = await person('invited');
    const e = t.em();
    e.create(Invitation, {
      account: await t.account(),
      user,
      tokenHash: 'c'.repeat(64),
      status: 'pending',
      expiresAt: new Date(Date.now() + 86_400_000),
    });
    await e.flush();
    const res = await card('UADMIN', user.email);
    const { view, result } = await change('UADMIN', res.body, 'Change email', { email: user.email });
    expect(result.json.errors.email).toBe(`${user.email} is already their login email.`);
    const cased = user.email.replace(/^person/, 'Person').replace('@acme.test', '@Acme.Test');
    const before = t.standin.responses.length;
    const ok = await t.slack.submitView(view, { email: cased }, { user: 'UADMIN' });
    expect(ok.json?.errors).toBeUndefined();
    await eventually(async () => (await fresh(user.id)).email === cased);
    const after = await fresh(user.id);
    expect(after.status).toBe('invited');
    expect((await t.em().findOneOrFail(Invitation, { user: user.id })).status).toBe('pending');
    const said = await eventually(() =>
      t.standin.calls
        .filter((c) => c.method === 'chat.postMessage' || c.method === 'chat.postEphemeral')
        .map((c) => textOf(c.args))
        .concat(t.standin.responses.slice(before).map((r) => textOf(r.body)))
        .find((text) => text.includes(`now logs in with ${cased}`)),
    );
    expect(said).not.toContain('cancelled');
  });

  it('moves the contact a person was converted from to their new login email', async () => {
    const user = await person('active', 'client');
    const e = t.em();
    const contact = e.create(Contact, {
      account: await t.account(),
      user,
      name: 'Pat Converted',
      email: user.email,
    });
    await e.flush();
    const res = await card('UADMIN', user.email);
    await change('UADMIN', res.body, 'Change email', { email: 'pat.moved@acme.test' });
    await eventually(async () => (await fresh(user.id)).email === 'pat.moved@acme.test');
    expect((await t.em().findOneOrFail(Contact, contact.id)).email).toBe('pat.moved@acme.test');
    // The old address is free again: a contact can be added with it.
    await t.slack.command('/contact', 'add', { user: 'UMEMBER' });
    const added = await t.slack.submitView(
      t.standin.lastOpenedView(),
      { name: 'Someone Else', email: user.email },
      { user: 'UMEMBER' },
    );
    expect(added.json?.errors).toBeUndefined();
  });
});

describe('a change made while a CSV import holds the seats', () => {
  /** Holds the account's seat lock for `ms`, as a running import batch does. */
  async function holdSeats(ms: number): Promise<{ held: Promise<void> }> {
    const account = await t.account();
    let locked!: () => void;
    const taken = new Promise<void>((r) => {
      locked = r;
    });
    const held = t.em().transactional(async (tx) => {
      await t.roster.deps.seats.lock(tx, account);
      locked();
      await new Promise((r) => setTimeout(r, ms));
    });
    await taken;
    return { held };
  }

  it('acknowledges the form at once and applies the unlock when the seats are free, by DM', async () => {
    const user = await person('locked');
    const res = await card('UADMIN', user.email);
    await t.slack.clickButton(res.body, 'Unlock', { user: 'UADMIN' });
    const view = t.standin.lastOpenedView();
    const { held } = await holdSeats(4000);
    // Slack gives up on an ack after 3 s; the seats stay locked for 4.
    const result = await t.slack.submitView(view, { send_now: [] }, { user: 'UADMIN' });
    expect(result.status).toBe(200);
    expect(result.body).toBe('');
    await held;
    expect((await fresh(user.id)).status).toBe('not_invited');
    await t.standin.waitForMessage(
      (m) => m.channel === 'DUADMIN' && textOf(m).includes(`Unlocked ${user.firstName}`),
    );
  });

  it('tells the admin by DM when the last seat went to someone else after the form closed', async () => {
    const a = await person('locked');
    const b = await person('locked');
    await t.setSeatLimit((await usedSeats()) + 1);
    const views = [];
    for (const u of [a, b]) {
      await t.slack.clickButton((await card('UADMIN', u.email)).body, 'Unlock', { user: 'UADMIN' });
      views.push(t.standin.lastOpenedView());
    }
    const { held } = await holdSeats(500);
    // Both forms see a free seat; only one of them gets it once the seats are free again.
    const results = await Promise.all(
      views.map((view) => t.slack.submitView(view, { send_now: [] }, { user: 'UADMIN' })),
    );
    await held;
    expect(results.map((r) => r.status)).toEqual([200, 200]);
    expect(results.map((r) => r.json?.errors)).toEqual([undefined, undefined]);
    const statuses = [(await fresh(a.id)).status, (await fresh(b.id)).status].sort();
    expect(statuses).toEqual(['locked', 'not_invited']);
    const loser = (await fresh(a.id)).status === 'locked' ? a : b;
    await t.standin.waitForMessage(
      (m) =>
        m.channel === 'DUADMIN' &&
        textOf(m).includes(`No paid seat is free`) &&
        textOf(m).includes(`${loser.email} was not added`),
    );
    await t.setSeatLimit(50);
  });

  it('tells the admin by DM, with a reference, when the change fails after the form closed, and changes nothing', async () => {
    const user = await person('locked');
    await t.slack.clickButton((await card('UADMIN', user.email)).body, 'Unlock', { user: 'UADMIN' });
    const view = t.standin.lastOpenedView();
    // A fault in the database itself, only for this person's row, once the form has been checked.
    const conn = t.em().getConnection();
    await conn.execute(`create function test_fail_unlock() returns trigger language plpgsql as $$
      begin raise exception 'disk on fire' using errcode = 'XX000'; end $$`);
    await conn.execute(`create trigger test_fail_unlock before update on app_user for each row
      when (old.id = '${user.id}') execute function test_fail_unlock()`);
    try {
      const result = await t.slack.submitView(view, { send_now: [] }, { user: 'UADMIN' });
      expect(result.status).toBe(200);
      expect(result.json?.errors).toBeUndefined();
      const dm = await t.standin.waitForMessage(
        (m) => m.channel === 'DUADMIN' && textOf(m).includes("Something went wrong on Roster's side"),
      );
      expect(textOf(dm)).toMatch(/nothing was changed.*reference: `[0-9a-f]{8}`/s);
      expect(textOf(dm)).not.toContain('disk on fire');
      expect((await fresh(user.id)).status).toBe('locked');
    } finally {
      await conn.execute('drop trigger test_fail_unlock on app_user');
      await conn.execute('drop function test_fail_unlock()');
    }
  });
});

describe('a person imported without a login email', () => {
  it('asks for a login email before they can be unlocked, then offers Unlock', async () => {
    const user = await person('locked', 'employee', {
      email: 'missing-0123456789abcdef0123@login.invalid',
      loginMissing: true,
      loginHint: 'Nora Nologin',
      firstName: 'Nora',
      lastName: 'Nologin',
    });
    const res = await card('UADMIN', user.email);
    expect(textOf(res.body)).toContain(
      "*Login email:* missing. The import's email column said “Nora Nologin”",
    );
    // The placeholder is no address: nobody reads it, anywhere.
    expect(res.body.text).toBe(
      'Nora Nologin (no login email yet): locked: imported, cannot log in until an admin unlocks them',
    );
    expect(JSON.stringify(res.body)).not.toContain('login.invalid');
    const before = t.standin.responses.length;
    await t.slack.command('/contact', 'find nora', { user: 'UMANAGER' });
    const found = await eventually(() => t.standin.responses.slice(before).at(-1));
    expect(textOf(found.body)).toContain(
      '*Nora Nologin* · no login email yet\nUser, Employee (paid seat), locked',
    );
    expect(JSON.stringify(found.body)).not.toContain('login.invalid');
    await t.slack.command('/contact', 'find missing-', { user: 'UMANAGER' });
    const none = await eventually(() => t.standin.responses.slice(before + 1).at(-1));
    expect(textOf(none.body)).toContain('No contact or user matches “missing-”.');

    const buttons = res.body.blocks.flatMap((b: any) => b.elements ?? []).map((e: any) => e.text?.text);
    expect(buttons).not.toContain('Unlock');
    expect(buttons).toContain('Set login email');
    const admin = { slackUserId: 'UADMIN', isAdmin: true, surface: 'slack' as const };
    await expect(
      t.roster.deps.people.unlock(t.em(), await t.account(), admin, user.id),
    ).rejects.toMatchObject({
      code: 'conflict',
      message: expect.stringContaining('has no login email yet'),
    });

    await t.slack.clickButton(res.body, 'Set login email', { user: 'UADMIN' });
    const form = t.standin.lastOpenedView();
    expect(JSON.stringify(form)).not.toContain('login.invalid');
    expect(textOf(form)).toContain('(no login email yet) was imported without an email.');
    expect(form.blocks.find((b: any) => b.block_id === 'email').element.initial_value).toBeUndefined();

    const { result } = await change('UADMIN', res.body, 'Set login email', { email: 'nora@acme.test' });
    expect(result.status).toBe(200);
    await t.standin.waitForMessage((m) =>
      textOf(m).includes('now logs in with nora@acme.test (they had none'),
    );
    expect(await fresh(user.id)).toMatchObject({
      email: 'nora@acme.test',
      loginMissing: false,
      loginHint: null,
    });
    const after = await card('UADMIN', 'nora@acme.test');
    const now = after.body.blocks.flatMap((b: any) => b.elements ?? []).map((e: any) => e.text?.text);
    expect(now).toContain('Unlock');
  });
});

describe('races', () => {
  it('never leaves a deactivated person holding a seat when Resend races Deactivate', async () => {
    const account = await t.account();
    const admin = { slackUserId: 'UADMIN', isAdmin: true, surface: 'slack' as const };
    const users = await Promise.all([1, 2, 3, 4, 5].map(() => person('invited')));
    await Promise.allSettled(
      users.flatMap((u) => [
        t.roster.deps.invites.resend(t.em(), account, admin, u.id),
        t.roster.deps.person.deactivate(t.em(), account, admin, u.id),
      ]),
    );
    for (const u of users) {
      expect((await fresh(u.id)).status).toBe('deactivated');
      expect(await t.em().count(Invitation, { user: u.id, status: 'pending' })).toBe(0);
    }
  });

  it('lets exactly one of two admins unlock into the last seat', async () => {
    const a = await person('locked');
    const b = await person('locked');
    await t.setSeatLimit(await usedSeats());
    await t.setSeatLimit((await usedSeats()) + 1);
    const account = await t.account();
    const changes = t.roster.deps.people;
    const results = await Promise.allSettled([
      changes.unlock(t.em(), account, { slackUserId: 'UADMIN', isAdmin: true, surface: 'slack' }, a.id),
      changes.unlock(t.em(), account, { slackUserId: 'UOWNER', isAdmin: true, surface: 'slack' }, b.id),
    ]);
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    expect(
      results.filter((r) => r.status === 'rejected').map((r) => (r as PromiseRejectedResult).reason.code),
    ).toEqual(['no_seat']);
    const statuses = [(await fresh(a.id)).status, (await fresh(b.id)).status].sort();
    expect(statuses).toEqual(['locked', 'not_invited']);
    const usage = await t.roster.deps.seats.usage(t.em(), account);
    expect(usage.used).toBe(usage.limit);
    await t.setSeatLimit(50);
  });
});

describe('help', () => {
  it('answers help on every command, for anyone', async () => {
    for (const [command, expected] of [
      ['/people', '/people ana@example.com'],
      ['/seats', '/seats settings'],
      ['/joinlink', '/joinlink list'],
      ['/contact', '/contact find ana'],
      ['/invite', '/invite pending'],
    ]) {
      const before = t.standin.responses.length;
      await t.slack.command(command!, 'help', { user: 'UMEMBER' });
      const answer = await eventually(() => t.standin.responses.slice(before).at(-1));
      expect(textOf(answer.body)).toContain(expected);
    }
  });
});

describe('a request overtaken by an admin', () => {
  it('leaves a person unlocked meanwhile as they are when the old request is approved', async () => {
    const user = await person('locked');
    const asked = await card('UMANAGER', user.email);
    await change('UMANAGER', asked.body, 'Ask an admin to unlock', { send_now: ['send_now'] });
    const request = await eventually(() =>
      t.em().findOne(SeatRequest, { email: user.email, status: 'pending' }),
    );
    // Unlocked another way meanwhile (an import's Unlock and invite all), and they accepted.
    const em = t.em();
    (await em.findOneOrFail(User, user.id)).status = 'active';
    await em.flush();
    const used = await usedSeats();

    await t.slack.blockAction({
      user: 'UOWNER',
      actions: [{ type: 'button', action_id: 'seat_approve', block_id: 'b', value: request.id }],
    });
    const reply = await t.standin.waitForResponse((r) => textOf(r.body).includes('Not approved'));
    expect(textOf(reply.body)).toContain('is active');
    expect((await fresh(user.id)).status).toBe('active');
    expect(await usedSeats()).toBe(used);
    expect((await t.em().findOneOrFail(SeatRequest, request.id)).status).toBe('rejected');
    expect(await t.em().count(Invitation, { user: user.id })).toBe(0);
  });
});

describe('a change between paid roles', () => {
  it('makes an employee a contractor when every seat is taken, keeping their seat and the limit', async () => {
    const user = await person('active', 'employee');
    const used = await usedSeats();
    await t.setSeatLimit(used);
    try {
      const { result } = await change('UADMIN', (await card('UADMIN', user.email)).body, 'Change role', {
        role: 'contractor',
      });
      expect(result.json?.errors).toBeUndefined();
      await eventually(async () => (await fresh(user.id)).role === 'contractor');
      expect(await usedSeats()).toBe(used);
      expect((await t.em().findOneOrFail(Account, (await t.account()).id)).seatLimit).toBe(used);
      await t.standin.waitForMessage(
        (m) => m.channel === 'DUADMIN' && textOf(m).includes('is now Contractor'),
      );
    } finally {
      await t.setSeatLimit(50);
    }
  });

  it('refuses a requester a forged change between paid roles instead of asking admins for a seat', async () => {
    const user = await person('active', 'employee');
    const requests = await t.em().count(SeatRequest, { email: user.email });
    const opened = t.standin.callsTo('views.open').length;
    await t.slack.blockAction({
      user: 'UMANAGER',
      actions: [
        {
          type: 'button',
          action_id: 'person_change_role',
          block_id: 'b',
          value: JSON.stringify({ u: user.id, c: 'role' }),
        },
      ],
    });
    // The card offers no such ask: the forged button is refused with the reason, and no form opens.
    await t.standin.waitForResponse((r) =>
      textOf(r.body).includes(
        `Only admins can change the role of ${user.firstName} ${user.lastName}: they already hold a paid role, so there is no seat to ask for.`,
      ),
    );
    expect(t.standin.callsTo('views.open')).toHaveLength(opened);
    // The form itself, made by hand, is refused too.
    await t.slack.viewSubmission({
      user: 'UMANAGER',
      view: {
        id: 'VFORGEDROLE',
        hash: 'h1',
        callback_id: 'person_change_modal',
        private_metadata: JSON.stringify({ u: user.id, c: 'role' }),
        state: {
          values: {
            role: { role: { type: 'static_select', selected_option: { value: 'contractor' } } },
          },
        },
      },
    });
    await t.standin.waitForMessage((m) => m.channel === 'DUMANAGER' && textOf(m).includes('Only admins'));
    expect((await fresh(user.id)).role).toBe('employee');
    expect(await t.em().count(SeatRequest, { email: user.email })).toBe(requests);
  });

  it("refuses a requester's forged Ask for a paid role, before any form opens, when one is already waiting", async () => {
    const user = await person('active', 'client');
    const res = await card('UMANAGER', user.email);
    const { result } = await change('UMANAGER', res.body, 'Ask for a paid role', { role: 'employee' });
    expect(result.status).toBe(200);
    await eventually(
      async () => (await t.em().count(SeatRequest, { email: user.email, status: 'pending' })) === 1,
    );
    const opened = t.standin.callsTo('views.open').length;
    await t.slack.clickButton(res.body, 'Ask for a paid role', { user: 'UMANAGER' });
    await t.standin.waitForResponse((r) =>
      textOf(r.body).includes(`A seat request for ${user.email} is already waiting for an admin.`),
    );
    expect(t.standin.callsTo('views.open')).toHaveLength(opened);
  });
});

describe('an admin making the change a requester asked for', () => {
  it('closes the waiting request as done, redraws its messages and tells the requester', async () => {
    const user = await person('deactivated');
    const asked = await card('UMANAGER', user.email);
    await change('UMANAGER', asked.body, 'Ask an admin to reactivate', { send_now: [] });
    const request = await eventually(() =>
      t.em().findOne(SeatRequest, { email: user.email, status: 'pending' }),
    );
    await eventually(async () => (await t.em().findOneOrFail(SeatRequest, request.id)).messages.length === 2);

    await change('UADMIN', (await card('UADMIN', user.email)).body, 'Reactivate', { send_now: [] });
    await eventually(async () => (await fresh(user.id)).status === 'not_invited');

    const closed = await t.em().findOneOrFail(SeatRequest, request.id);
    expect(closed.status).toBe('approved');
    expect(closed.decidedBy).toBe('UADMIN');
    await t.standin.waitForMessage(
      (m) =>
        m.channel === 'DUMANAGER' &&
        textOf(m).includes('approved your request') &&
        textOf(m).includes(user.email),
    );
    // Neither admin's copy keeps buttons for something done.
    await eventually(() => {
      const updates = t.standin.messages.filter(
        (m) => m.method === 'chat.update' && JSON.stringify(m).includes(user.email),
      );
      return updates.length === 2 && updates.every((m) => !JSON.stringify(m).includes('seat_approve'));
    });
  });
});

describe('the permission set form', () => {
  it("starts from the person's own set, so saving it unchanged changes nothing", async () => {
    const account = await t.account();
    const manager = await t.em().findOneOrFail(PermissionSet, { account: account.id, name: 'Manager' });
    const user = await person('active', 'employee', { permissionSet: ref(manager) });
    const { view } = await change('UADMIN', (await card('UADMIN', user.email)).body, 'Permission set');
    const select = view.blocks.find((b: any) => b.block_id === 'permission_set').element;
    expect(select.initial_option.value).toBe(manager.id);
    await t.standin.waitForMessage(
      (m) => m.channel === 'DUADMIN' && textOf(m).includes('already had the permission set *Manager*'),
    );
    expect((await fresh(user.id)).permissionSet?.id).toBe(manager.id);
  });
});

describe('a paid role asked for, given otherwise meanwhile', () => {
  it('closes the request when approved, adding no seat, once an admin made the client a contractor', async () => {
    const user = await person('active', 'client');
    const asked = await card('UMANAGER', user.email);
    await change('UMANAGER', asked.body, 'Ask for a paid role', { role: 'employee' });
    const request = await eventually(() =>
      t.em().findOne(SeatRequest, { email: user.email, status: 'pending' }),
    );
    await change('UADMIN', (await card('UADMIN', user.email)).body, 'Change role', { role: 'contractor' });
    await eventually(async () => (await fresh(user.id)).role === 'contractor');
    expect((await t.em().findOneOrFail(SeatRequest, request.id)).status).toBe('pending');
    const used = await usedSeats();
    await t.setSeatLimit(used);
    try {
      await t.slack.blockAction({
        user: 'UOWNER',
        actions: [{ type: 'button', action_id: 'seat_approve_add_seat', block_id: 'b', value: request.id }],
      });
      const reply = await t.standin.waitForResponse((r) => textOf(r.body).includes('Not approved'));
      expect(textOf(reply.body)).toContain('takes no new seat');
      expect((await fresh(user.id)).role).toBe('contractor');
      expect((await t.em().findOneOrFail(Account, (await t.account()).id)).seatLimit).toBe(used);
    } finally {
      await t.setSeatLimit(50);
    }
  });
});

describe('an approved paid role', () => {
  it('tells the admin and the requester the new role, not that an active person can be invited', async () => {
    const user = await person('active', 'client');
    await change('UMANAGER', (await card('UMANAGER', user.email)).body, 'Ask for a paid role', {
      role: 'contractor',
    });
    const request = await eventually(() =>
      t.em().findOne(SeatRequest, { email: user.email, status: 'pending' }),
    );
    await t.slack.blockAction({
      user: 'UOWNER',
      actions: [{ type: 'button', action_id: 'seat_approve', block_id: 'b', value: request.id }],
    });
    const reply = await t.standin.waitForResponse((r) => textOf(r.body).includes('Approved'));
    expect(textOf(reply.body)).toContain(`${user.email} is now Contractor (paid seat).`);
    expect(textOf(reply.body)).not.toContain('can now be invited');
    // Told by a job, through the paced client: on a loaded machine it can take longer than 5 s.
    const told = await t.standin.waitForMessage(
      (m) =>
        m.channel === 'DUMANAGER' &&
        textOf(m).includes('approved your request') &&
        textOf(m).includes(`${user.email} as`),
      20_000,
    );
    expect(textOf(told)).toContain(`${user.email} is now Contractor (paid seat).`);
    expect((await fresh(user.id)).role).toBe('contractor');
  });
});
