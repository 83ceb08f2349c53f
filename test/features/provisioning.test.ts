import { Contact } from '../../src/features/contacts/contact.entity.ts';
import { User } from '../../src/features/people/user.entity.ts';
import { eventually, startTestApp, type TestApp } from '../support/app.ts';
import { type ScimServer, startScimServer } from '../support/scim-server.ts';
import { buttonMessage, textOf } from '../support/views.ts';
import { ApiClient, settled, tokenFor } from './api/support.ts';
import { connect, remoteUser } from './scim/support.ts';
import { addEndpoint, featuresWith, type Receiver, startReceiver } from './webhooks/support.ts';

/**
 * One person changed through each Slack surface, seen from outside by all three ways a product follows
 * Roster: the signed webhook (verified by the receiver), the SCIM service's user, and the read API.
 */
let t: TestApp;
let hooks: Receiver;
let scim: ScimServer;
let api: ApiClient;
let token: string;

beforeAll(async () => {
  hooks = await startReceiver();
  scim = await startScimServer();
  t = await startTestApp({ seatLimit: 20, features: featuresWith() });
  hooks.secret = (await addEndpoint(t, hooks.url)).secret;
  await connect(t, scim);
  api = new ApiClient(t);
  token = await tokenFor(t, await t.account(), 'provisioning test');
});
afterAll(async () => {
  await t.stop();
  await hooks.close();
  await scim.close();
});

const userByEmail = (email: string) => t.em().findOneOrFail(User, { email });
const event = (type: string, subject: string) =>
  hooks.waitFor((r) => r.type === type && r.subject === subject, 15_000);

async function card(email: string) {
  const before = t.standin.responses.length;
  await t.slack.command('/people', email, { user: 'UADMIN' });
  return (await eventually(() => t.standin.responses.slice(before).at(-1))).body;
}

async function fromApi(id: string) {
  await settled(t);
  const res = await api.get(`/api/v1/people/${id}`, { token });
  expect(res.status).toBe(200);
  return res.body;
}

it('a person invited, accepting, changing role, deactivated and reactivated: webhook, SCIM and API agree', async () => {
  // /invite by an admin.
  await t.slack.command('/invite', 'mia@acme.test employee', { user: 'UADMIN' });
  await t.slack.submitView(t.standin.lastOpenedView(), {}, { user: 'UADMIN' });
  const mia = await eventually(() => t.em().findOne(User, { email: 'mia@acme.test' }));
  const invited = await event('person.invited', mia.id);
  expect(invited.body.data.person).toMatchObject({ email: 'mia@acme.test', status: 'invited' });
  const remote = await remoteUser(scim, 'mia@acme.test', (u) => u.active === false);
  expect((await fromApi(mia.id)).status).toBe('invited');

  // Accepting from the invitation DM.
  const dm = await eventually(() =>
    t.standin.messages.find(
      (m) => m.channel === 'DUMANAGER' && JSON.stringify(m.blocks).includes('invite_accept'),
    ),
  );
  await t.slack.clickButton(dm, { actionId: 'invite_accept' }, { user: 'UMANAGER' });
  await event('person.activated', mia.id);
  await remoteUser(scim, 'mia@acme.test', (u) => u.active === true && u.id === remote.id);
  expect((await fromApi(mia.id)).status).toBe('active');

  // The person card: role, then deactivate, then reactivate.
  await t.slack.clickButton(await card('mia@acme.test'), 'Change role', { user: 'UADMIN' });
  await t.slack.submitView(t.standin.lastOpenedView(), { role: 'contractor' }, { user: 'UADMIN' });
  const roleChanged = await event('person.role_changed', mia.id);
  expect(roleChanged.body.data.person.role).toBe('contractor');
  await remoteUser(scim, 'mia@acme.test', (u) => u.roles?.[0]?.value === 'contractor');
  expect((await fromApi(mia.id)).role).toBe('contractor');

  await t.slack.clickButton(await card('mia@acme.test'), 'Deactivate', { user: 'UADMIN' });
  await event('person.deactivated', mia.id);
  await remoteUser(scim, 'mia@acme.test', (u) => u.active === false);
  expect((await fromApi(mia.id)).status).toBe('deactivated');

  await t.slack.clickButton(await card('mia@acme.test'), 'Reactivate', { user: 'UADMIN' });
  await t.slack.submitView(t.standin.lastOpenedView(), {}, { user: 'UADMIN' });
  await event('person.reactivated', mia.id);

  // Every event about Mia arrived once, signed (the receiver keeps only what verified), in order.
  expect(hooks.rejected).toEqual([]);
  const types = hooks.received.filter((r) => r.subject === mia.id).map((r) => r.type);
  expect(types.slice(0, 6)).toEqual([
    'person.created',
    'person.invited',
    'person.activated',
    'person.role_changed',
    'person.deactivated',
    'person.reactivated',
  ]);
  const ids = hooks.received.map((r) => r.id);
  expect(new Set(ids).size).toBe(ids.length);
  // Never a DELETE, never a second user for the same person.
  expect(scim.calls.some((c) => c.method === 'DELETE')).toBe(false);
  expect([...scim.users.values()].filter((u) => u.userName === 'mia@acme.test')).toHaveLength(1);
});

it('a contact added and converted from /contact: contact events, then a SCIM user', async () => {
  await t.slack.command('/contact', 'add', { user: 'UADMIN' });
  await t.slack.submitView(
    t.standin.lastOpenedView(),
    { name: 'Cleo Client', email: 'cleo@partner.test', company: 'Partner' },
    { user: 'UADMIN' },
  );
  const contact = await t.em().findOneOrFail(Contact, { email: 'cleo@partner.test' });
  await event('contact.created', contact.id);
  expect(scim.byUserName('cleo@partner.test')).toBeUndefined();

  const convert = buttonMessage('contact_convert', contact.id, 'Convert to user');
  await t.slack.clickButton(convert, 'Convert to user', { user: 'UADMIN' });
  await t.slack.submitView(t.standin.lastOpenedView(), { role: 'client' }, { user: 'UADMIN' });
  const converted = await event('contact.converted', contact.id);
  const cleo = await userByEmail('cleo@partner.test');
  expect(converted.body.data.contact.user_id).toBe(cleo.id);
  await remoteUser(scim, 'cleo@partner.test', (u) => u.roles?.[0]?.value === 'client');
  expect((await fromApi(cleo.id)).role).toBe('client');
});

it('a CSV import: import.completed, and its users in the SCIM service', async () => {
  const csv = [
    'type,first_name,last_name,email,role,send_invitation',
    'user,Ada,Lovelace,ada@acme.test,employee,no',
    'user,Grace,Hopper,grace@acme.test,client,no',
  ].join('\n');
  await t.slack.fileShare('UADMIN', t.standin.addFile({ id: 'FPROV1', name: 'prov.csv', content: csv }));
  const preview = await eventually(() =>
    t.standin.messages
      .filter((m) => m.channel === 'DUADMIN' && /Preview of prov\.csv/.test(textOf(m)))
      .at(-1),
  );
  await t.slack.clickButton(preview, 'Import 2 rows', { user: 'UADMIN' });
  const done = await hooks.waitFor((r) => r.type === 'import.completed', 15_000);
  expect(done.body.data.import).toMatchObject({ file_name: 'prov.csv', status: 'completed' });
  await remoteUser(scim, 'ada@acme.test', (u) => u.name?.familyName === 'Lovelace');
  await remoteUser(scim, 'grace@acme.test', (u) => u.roles?.[0]?.value === 'client');
  const ada = await userByEmail('ada@acme.test');
  expect((await event('person.created', ada.id)).body.data.person.last_name).toBe('Lovelace');
});
