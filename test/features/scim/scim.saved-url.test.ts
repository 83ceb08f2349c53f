import { query, sql } from '../../../src/db/sql.ts';
import { User } from '../../../src/features/people/user.entity.ts';
import { ScimConnection } from '../../../src/features/scim/scim.entity.ts';
import { SCIM_JOBS } from '../../../src/features/scim/scim.service.ts';
import type { Actor } from '../../../src/features/seats/seat.service.ts';
import { eventually, startTestApp, type TestApp } from '../../support/app.ts';
import { type ScimServer, startScimServer } from '../../support/scim-server.ts';
import { textOf } from '../../support/views.ts';
import { openHome, openScimForm, remoteUser } from './support.ts';

// Connections saved before the connect form refused a user name, password, query or fragment in the URL.
// Roster does not rewrite them behind the admins' back: it stops them before any call, tells the admins
// once, shows why without the secret, and takes a new URL in the same form.

let t: TestApp;
let server: ScimServer;
const admin: Actor = { slackUserId: 'UADMIN', isAdmin: true, surface: 'slack' };

beforeAll(async () => {
  server = await startScimServer();
  t = await startTestApp({ seatLimit: 50 });
});
afterAll(async () => {
  await t.stop();
  await server.close();
});

const stoppedDms = (user: string) =>
  t.standin.messages.filter((m) => m.channel === `D${user}` && /SCIM provisioning stopped/.test(textOf(m)));

/** A connection as the form saved it before, with `url` as entered. */
async function savedWith(url: string) {
  const account = await t.account();
  await query(t.em(), sql`delete from scim_connection where account_id = ${account.id}`);
  await query(
    t.em(),
    sql`insert into scim_connection (id, account_id, base_url, token, managed, connected_by)
      values (gen_random_uuid(), ${account.id}, ${url}, ${server.token}, false, 'UADMIN')`,
  );
  return account;
}

const connection = async () =>
  t.em().findOneOrFail(ScimConnection, { account: (await t.account()).id }, { refresh: true });

it('stops a connection saved with a user name and password at its next sync, tells the admins once and takes a new URL', async () => {
  const account = await t.account();
  const em = t.em();
  em.create(User, { account, email: 'nina@acme.test', role: 'employee', status: 'active' });
  await em.flush();
  server.calls.length = 0;
  await savedWith(server.url.replace('http://', 'http://provisioner:hunter2@'));

  // A change to a person: the sync that would send it stops the connection instead, before any call.
  await query(t.em(), sql`update app_user set title = 'Engineer' where email = 'nina@acme.test'`);
  const refused = await eventually(async () => (await connection()).refusedAt ?? undefined);
  expect(refused).toBeInstanceOf(Date);
  const told = await eventually(() => stoppedDms('UADMIN')[0], 15_000);
  expect(textOf(told)).toContain(
    `The saved URL ${server.url} holds a user name or password, which Roster never sends (it signs in with the token) and which admins would see. Connect again with the base URL alone (e.g. https://app.example.com/scim/v2) and the bearer token.`,
  );
  await eventually(() => stoppedDms('UOWNER')[0]);
  expect(server.calls).toEqual([]);

  // More changes neither call the service nor tell anyone again.
  await query(t.em(), sql`update app_user set title = 'Lead' where email = 'nina@acme.test'`);
  await t.roster.deps.jobs.send(SCIM_JOBS.sync, { accountId: account.id });
  await new Promise((r) => setTimeout(r, 1500));
  expect(stoppedDms('UADMIN')).toHaveLength(1);
  expect(server.calls).toEqual([]);

  // The Home tab and the form say why, without the password, and the form asks for the URL again.
  const home = await openHome(t, 'UADMIN');
  expect(textOf(home)).toContain('Syncing stopped: the saved URL can no longer be used.');
  const form = await openScimForm(t);
  expect(textOf(form)).toContain(`Connected to ${server.url}`);
  const shown = JSON.stringify([home, form, ...t.standin.messages]);
  expect(shown).not.toContain('hunter2');
  expect(shown).not.toContain('provisioner');
  expect(form.submit?.text).toBe('Connect');
  expect(JSON.stringify(form.blocks)).not.toContain('scim_sync_now');
  await expect(t.roster.deps.scim.syncNow(t.em(), account, admin)).rejects.toThrow(
    'The saved URL http://127.0.0.1',
  );

  // Connecting again with the base URL alone replaces it; the changes kept meanwhile are sent.
  const res = await t.slack.submitView(form, { url: server.url, token: server.token }, { user: 'UADMIN' });
  expect(res.status).toBe(200);
  await eventually(async () => {
    const c = await connection();
    return c.baseUrl === server.url && !c.refusedAt ? c : undefined;
  });
  expect((await remoteUser(server, 'nina@acme.test', (u) => u.title === 'Lead')).title).toBe('Lead');
  expect(textOf(await openHome(t, 'UADMIN'))).not.toContain('can no longer be used');
}, 60_000);

it('finds a connection saved with a ?query within the minute, with nobody changing anyone, and shows it redacted', async () => {
  const before = stoppedDms('UADMIN').length;
  server.calls.length = 0;
  await savedWith(`${server.url}?key=abc123`);
  await t.roster.deps.jobs.send(SCIM_JOBS.tick, {});
  await eventually(async () => (await connection()).refusedAt ?? undefined);
  const told = await eventually(() => stoppedDms('UADMIN')[before], 15_000);
  expect(textOf(told)).toContain(`The saved URL ${server.url}?[redacted] has a ?query or #fragment`);
  expect((await connection()).problem).toContain(`${server.url}?[redacted]`);
  const home = await openHome(t, 'UADMIN');
  expect(textOf(home)).toContain(`Connected to ${server.url}?[redacted]`);
  expect(JSON.stringify([home, ...t.standin.messages])).not.toContain('abc123');
  expect(server.calls).toEqual([]);
}, 30_000);
