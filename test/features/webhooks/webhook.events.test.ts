import { readFileSync } from 'node:fs';
import { Contact } from '../../../src/features/contacts/contact.entity.ts';
import { User } from '../../../src/features/people/user.entity.ts';
import { SeatRequest } from '../../../src/features/seats/seat-request.entity.ts';
import { eventually, startTestApp, type TestApp } from '../../support/app.ts';
import { buttonMessage, textOf } from '../../support/views.ts';
import { addEndpoint, featuresWith, type Received, type Receiver, startReceiver } from './support.ts';

let t: TestApp;
let hooks: Receiver;
/** A second endpoint that takes only deactivations. */
let picky: Receiver;

beforeAll(async () => {
  hooks = await startReceiver();
  picky = await startReceiver({ path: '/only-deactivations' });
  t = await startTestApp({ seatLimit: 20, features: featuresWith() });
  hooks.secret = (await addEndpoint(t, hooks.url)).secret;
  picky.secret = (await addEndpoint(t, picky.url, ['person.deactivated'])).secret;
});
afterAll(async () => {
  await t.stop();
  await hooks.close();
  await picky.close();
});

const userByEmail = (email: string) => t.em().findOneOrFail(User, { email });
/** The events about one subject, in the order they arrived. */
const about = (id: string) => hooks.received.filter((r) => r.subject === id);
const typesAbout = (id: string) => about(id).map((r) => r.type);
const waitForType = (type: string, subject: string) =>
  hooks.waitFor((r) => r.type === type && r.subject === subject);

async function invite(user: string, text: string) {
  await t.slack.command('/invite', text, { user });
  const view = t.standin.lastOpenedView();
  expect(view.callback_id).toBe('invite_modal');
  return t.slack.submitView(view, {}, { user });
}

async function card(user: string, text: string) {
  const before = t.standin.responses.length;
  await t.slack.command('/people', text, { user });
  return eventually(() => t.standin.responses.slice(before).at(-1));
}

describe('events from Slack surfaces', () => {
  it('/invite: person.created then person.invited, signed; accepting from the DM sends person.activated', async () => {
    await invite('UADMIN', 'mia@acme.test');
    const mia = await userByEmail('mia@acme.test');
    const invited = await waitForType('person.invited', mia.id);
    expect(typesAbout(mia.id).slice(0, 2)).toEqual(['person.created', 'person.invited']);
    expect(invited.id).toMatch(/^msg_[0-9a-f]{32}$/);
    expect(Math.abs(invited.timestamp - Date.now() / 1000)).toBeLessThan(60);
    expect(invited.body).toMatchObject({
      type: 'person.invited',
      timestamp: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/),
      data: {
        person: {
          id: mia.id,
          email: 'mia@acme.test',
          role: 'employee',
          status: 'invited',
          seat: true,
          permission_set: { name: 'Member', admin: false },
          updated_at: expect.any(String),
        },
        change: { action: 'invitation.created', actor: 'UADMIN', surface: 'slack' },
      },
    });
    expect(Object.keys(invited.body)).toEqual(['type', 'timestamp', 'data']);

    const dm = await eventually(() =>
      t.standin.messages.find((m) => m.channel === 'DUMANAGER' && String(m.text).includes('invited you')),
    );
    await t.slack.clickButton(dm, { actionId: 'invite_accept' }, { user: 'UMANAGER' });
    const activated = await waitForType('person.activated', mia.id);
    expect(activated.body.data.person).toMatchObject({ status: 'active', slack_user_id: 'UMANAGER' });
    expect(activated.body.data.change).toMatchObject({ actor: 'UMANAGER', surface: 'slack' });
    expect(typesAbout(mia.id)).toEqual(['person.created', 'person.invited', 'person.activated']);
  });

  it("approving a manager's seat request: seat_request.decided, and the person it created", async () => {
    await invite('UMANAGER', 'hire@example.com contractor');
    const request = await t.em().findOneOrFail(SeatRequest, { email: 'hire@example.com' });
    const copy = await eventually(() =>
      t.standin.messages.find(
        (m) => m.channel === 'DUADMIN' && JSON.stringify(m.blocks ?? []).includes(request.id),
      ),
    );
    await t.slack.clickButton(copy, { actionId: 'seat_approve' }, { user: 'UADMIN' });
    const decided = await waitForType('seat_request.decided', request.id);
    expect(decided.body.data.seat_request).toMatchObject({
      id: request.id,
      status: 'approved',
      email: 'hire@example.com',
      role: 'contractor',
      requested_by: 'UMANAGER',
      decided_by: 'UADMIN',
    });
    const hire = await userByEmail('hire@example.com');
    await waitForType('person.invited', hire.id);
    expect(typesAbout(hire.id)).toEqual(['person.created', 'person.invited']);
    expect(about(hire.id)[0]!.body.data.person).toMatchObject({ role: 'contractor', status: 'invited' });
  });

  it('the person card: deactivate, reactivate and change role, each its own event, in order', async () => {
    const em = t.em();
    const pat = em.create(User, {
      account: await t.account(),
      email: 'pat@acme.test',
      firstName: 'Pat',
      lastName: 'Doe',
      role: 'employee',
      status: 'active',
      addedBy: 'UADMIN',
    });
    await em.flush();
    await t.slack.clickButton((await card('UADMIN', pat.email)).body, 'Deactivate', { user: 'UADMIN' });
    await t.slack.clickButton((await card('UADMIN', pat.email)).body, 'Reactivate', { user: 'UADMIN' });
    await t.slack.submitView(t.standin.lastOpenedView(), { send_now: [] }, { user: 'UADMIN' });
    await t.slack.clickButton((await card('UADMIN', pat.email)).body, 'Change role', { user: 'UADMIN' });
    await t.slack.submitView(t.standin.lastOpenedView(), { role: 'client' }, { user: 'UADMIN' });

    const changed = await waitForType('person.role_changed', pat.id);
    expect(typesAbout(pat.id)).toEqual(['person.deactivated', 'person.reactivated', 'person.role_changed']);
    const [deactivated, reactivated] = about(pat.id);
    expect(deactivated!.body.data.person).toMatchObject({
      status: 'deactivated',
      seat: false,
      name: 'Pat Doe',
    });
    expect(reactivated!.body.data.person).toMatchObject({ status: 'not_invited', seat: true });
    expect(changed.body.data.person).toMatchObject({ role: 'client', seat: false });
    expect(changed.body.data.change.details).toMatchObject({
      before: { role: 'employee' },
      after: { role: 'client' },
    });
    // The endpoint that takes only deactivations got that one, and nothing else.
    await picky.waitFor((r) => r.subject === pat.id);
    expect(picky.received.map((r) => r.type)).toEqual(['person.deactivated']);
    expect(picky.received[0]!.id).toBe(deactivated!.id);
  });

  it('contacts: added with /contact add, then converted into a user', async () => {
    await t.slack.command('/contact', 'add', { user: 'UMEMBER' });
    await t.slack.submitView(
      t.standin.lastOpenedView(),
      { name: 'Cleo Client', email: 'cleo@partner.test', company: 'Partner' },
      { user: 'UMEMBER' },
    );
    const contact = await t.em().findOneOrFail(Contact, { email: 'cleo@partner.test' });
    const created = await waitForType('contact.created', contact.id);
    expect(created.body.data.contact).toMatchObject({
      id: contact.id,
      name: 'Cleo Client',
      company: 'Partner',
      user_id: null,
    });
    expect(created.body.data.change).toMatchObject({ actor: 'UMEMBER', action: 'contact.added' });

    const convert = buttonMessage('contact_convert', contact.id, 'Convert to user');
    await t.slack.clickButton(convert, 'Convert to user', { user: 'UMEMBER' });
    await t.slack.submitView(t.standin.lastOpenedView(), { role: 'client' }, { user: 'UMEMBER' });
    const converted = await waitForType('contact.converted', contact.id);
    const cleo = await userByEmail('cleo@partner.test');
    expect(converted.body.data.contact.user_id).toBe(cleo.id);
    expect(converted.body.data.person).toMatchObject({ id: cleo.id, role: 'client' });
    await waitForType('person.invited', cleo.id);
    expect(typesAbout(cleo.id)).toEqual(['person.created', 'person.invited']);
  });

  it("a converted contact's details changed on the person card: contact.updated with them, beside person.updated", async () => {
    await t.slack.command('/contact', 'add', { user: 'UADMIN' });
    await t.slack.submitView(
      t.standin.lastOpenedView(),
      { name: 'Dora Client', email: 'dora@partner.test', company: 'Partner' },
      { user: 'UADMIN' },
    );
    const contact = await t.em().findOneOrFail(Contact, { email: 'dora@partner.test' });
    const convert = buttonMessage('contact_convert', contact.id, 'Convert to user');
    await t.slack.clickButton(convert, 'Convert to user', { user: 'UADMIN' });
    await t.slack.submitView(t.standin.lastOpenedView(), { role: 'client' }, { user: 'UADMIN' });
    await waitForType('contact.converted', contact.id);
    const dora = await userByEmail('dora@partner.test');
    const admin = { slackUserId: 'UADMIN', isAdmin: true, surface: 'slack' as const };
    const account = await t.account();

    await t.roster.deps.person.changeEmail(t.em(), account, admin, dora.id, 'dora.new@partner.test');
    const moved = await hooks.waitFor(
      (r) =>
        r.type === 'contact.updated' &&
        r.subject === contact.id &&
        r.body.data.contact.email === 'dora.new@partner.test',
    );
    expect(moved.body.data.change).toMatchObject({ actor: 'UADMIN', action: 'contact.edited' });

    await t.roster.deps.person.editDetails(t.em(), account, admin, dora.id, { company: 'Other Co' });
    const edited = await hooks.waitFor(
      (r) =>
        r.type === 'contact.updated' &&
        r.subject === contact.id &&
        r.body.data.contact.company === 'Other Co',
    );
    expect(edited.body.data.contact).toMatchObject({
      id: contact.id,
      user_id: dora.id,
      email: 'dora.new@partner.test',
    });
    await hooks.waitFor((r) => r.type === 'person.updated' && r.subject === dora.id);
  });

  it('a CSV import: an event per person and contact it created, then import.completed', async () => {
    const file = t.standin.addFile({
      id: 'FWEBHOOKS1',
      name: 'people.csv',
      content: readFileSync(new URL('../../fixtures/csv/people.csv', import.meta.url)),
    });
    await t.slack.fileShare('UADMIN', file);
    const preview = await eventually(
      () =>
        t.standin.messages.find((m) => m.channel === 'DUADMIN' && /Preview of people\.csv/.test(textOf(m))),
      10_000,
    );
    await t.slack.clickButton(preview, 'Import 5 rows', { user: 'UADMIN' });
    const done = await hooks.waitFor((r) => r.type === 'import.completed', 15_000);
    expect(done.body.data.import).toMatchObject({
      file_name: 'people.csv',
      status: 'completed',
      counts: expect.objectContaining({ created: 5 }),
    });
    const ada = await userByEmail('ada@acme.test');
    const created = about(ada.id);
    expect(created.map((r) => r.type)).toEqual(['person.created']);
    expect(created[0]!.body.data.person).toMatchObject({
      status: 'locked',
      seat: false,
      first_name: 'Ada',
      last_name: 'Lovelace',
      title: 'Engineer',
    });
    const alan = await t.em().findOneOrFail(Contact, { email: 'alan@bletchley.test' });
    expect(typesAbout(alan.id)).toEqual(['contact.created']);
    // Every person the import created was announced before the import's completion.
    const order = hooks.received.map((r) => r.type);
    expect(order.lastIndexOf('import.completed')).toBeGreaterThan(
      hooks.received.findIndex((r: Received) => r.subject === ada.id),
    );
  });

  it('/seats N: seat_limit.changed with the new limit and seats used', async () => {
    await t.slack.command('/seats', '25', { user: 'UADMIN' });
    const changed = await hooks.waitFor(
      (r) => r.type === 'seat_limit.changed' && r.body.data.seats.to === 25,
    );
    expect(changed.body.data.seats).toMatchObject({ limit: 25, from: 20, to: 25, used: expect.any(Number) });
    expect(changed.body.data.change).toMatchObject({ actor: 'UADMIN', surface: 'slack' });
  });

  it('never sent anything that did not verify, and each webhook-id once', () => {
    expect(hooks.rejected).toEqual([]);
    const ids = hooks.received.map((r) => r.id);
    expect(new Set(ids).size).toBe(ids.length);
  });
});
