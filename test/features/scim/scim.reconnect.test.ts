import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { query, sql } from '../../../src/db/sql.ts';
import { User } from '../../../src/features/people/user.entity.ts';
import { ScimClient } from '../../../src/features/scim/scim.client.ts';
import { ScimConnection } from '../../../src/features/scim/scim.entity.ts';
import { drain } from '../../../src/features/scim/scim.sync.ts';
import { eventually, startTestApp, type TestApp } from '../../support/app.ts';
import { type ScimServer, startScimServer } from '../../support/scim-server.ts';
import { connect, openScimForm, reconciled, remoteUser, syncState } from './support.ts';

// A sync already running when an admin disconnects and connects again must not push the new connection's
// pending people through its old client (to the old service, recording them synced there). The service
// numbers its users (1, 2, …), as products that serve every tenant at one URL often do per tenant.

let t: TestApp;
let server: ScimServer;
/** Stands for the service the old connection spoke to: it only counts what reaches it. */
let old: Server;
let oldUrl: string;
let oldCalls = 0;

beforeAll(async () => {
  server = await startScimServer({ numericIds: true });
  old = createServer((_req, res) => {
    oldCalls++;
    res.writeHead(500).end();
  });
  await new Promise<void>((r) => old.listen(0, '127.0.0.1', r));
  oldUrl = `http://127.0.0.1:${(old.address() as AddressInfo).port}/scim/v2`;
  t = await startTestApp({ seatLimit: 50 });
});
afterAll(async () => {
  await t.stop();
  await server.close();
  await new Promise((r) => old.close(r));
});

const admin = { slackUserId: 'UADMIN', isAdmin: true, surface: 'slack' as const };

it('stops a drain whose connection was replaced, leaving the old service alone', async () => {
  await t.slack.command('/invite', 'mia@acme.test employee', { user: 'UADMIN' });
  await t.slack.submitView(t.standin.lastOpenedView(), {}, { user: 'UADMIN' });
  await eventually(() => t.em().findOne(User, { email: 'mia@acme.test' }));
  await connect(t, server);
  await remoteUser(server, 'mia@acme.test');
  const account = await t.account();
  const replaced = await t.em().findOneOrFail(ScimConnection, { account: account.id });

  await t.roster.deps.scim.disconnect(t.em(), account, admin);
  await connect(t, server);
  await eventually(async () => {
    const [row] = await query<{ state: string }>(t.em(), sql`select state from scim_sync`);
    return row?.state === 'synced';
  });
  // Mia is pending again for the new connection when a drain begun for the replaced one goes on.
  await query(
    t.em(),
    sql`update scim_sync set state = 'pending', next_attempt_at = now(), leased_until = null, version = version + 1
        where account_id = ${account.id}`,
  );
  const result = await drain(t.em(), replaced, new ScimClient(oldUrl, 'old-token', { allowPrivate: true }));
  expect(result.synced).toBe(0);
  expect(result.failed).toEqual([]);
  expect(oldCalls).toBe(0);
});

it('connecting again to the same service with a new token keeps who is linked to whom', async () => {
  const account = await t.account();
  // Ann's user was in the product before Roster, which linked her to it by userName; this product does
  // not keep externalId, so only Roster's record says the user is hers.
  const pre = server.add({ userName: 'ann@acme.test', active: true, name: { givenName: 'Ann' } });
  const em = t.em();
  const ann = em.create(User, { account, email: 'ann@acme.test', role: 'employee', status: 'active' });
  await em.flush();
  await syncState(t, 'ann@acme.test', (s) => s.state === 'synced' && s.remoteId === pre.id);
  delete server.users.get(pre.id)!.externalId;

  // The token is rotated in the product: Roster's is refused. Meanwhile Ann changes address, then leaves.
  await query(t.em(), sql`update scim_connection set token = 'revoked-token'`);
  await query(t.em(), sql`update app_user set email = 'ann.smith@acme.test' where id = ${ann.id}`);
  await eventually(async () => {
    const c = await t.em().findOne(ScimConnection, { account: account.id });
    return c?.refusedAt ?? undefined;
  });
  await t.roster.deps.person.deactivate(t.em(), account, admin, ann.id);

  // An admin connects again with the new token, as the DM says; the reconciliation that follows switches
  // off Ann's own user, under her new address, and creates nobody.
  const form = await openScimForm(t);
  await t.slack.submitView(form, { url: server.url, token: server.token }, { user: 'UADMIN' });
  await remoteUser(server, 'ann.smith@acme.test', (u) => u.id === pre.id && u.active === false);
  await syncState(t, 'ann.smith@acme.test');
  expect([...server.users.values()].filter((u) => u.userName.startsWith('ann'))).toHaveLength(1);
});

it('connecting again at the same URL for another tenant never writes to its users under the old ids', async () => {
  const mia = await t.em().findOneOrFail(User, { email: 'mia@acme.test' });
  const miaLink = await syncState(t, 'mia@acme.test');
  const annLink = await syncState(t, 'ann.smith@acme.test');
  // The product serves every tenant at this URL and picks the tenant by the token; the other tenant numbers
  // its own users from 1 as well: Zed holds Mia's old id there, and that tenant's own Mia holds Ann's.
  server.reset();
  const zed = server.add(
    { userName: 'zed@other.test', active: true, name: { givenName: 'Zed' }, title: 'Buyer' },
    miaLink.remoteId!,
  );
  const theirMia = server.add(
    { userName: 'mia@acme.test', active: true, name: { givenName: 'Mia' } },
    annLink.remoteId!,
  );
  // The reconciliation's list answers late, so the regular sync meets Mia's next change first.
  server.slow(6000, {
    when: (req) => req.method === 'GET' && req.path === '/Users' && req.query.count === '500',
  });

  // Saved as the form saves it (in real life with the other tenant's token).
  await t.roster.deps.scim.connect(t.em(), await t.account(), admin, {
    url: server.url,
    token: server.token,
  });
  await query(t.em(), sql`update app_user set title = 'Designer' where id = ${mia.id}`);

  // Mia is linked to her own user in that tenant (the old link to Ann's id does not make it Ann's)...
  await syncState(t, 'mia@acme.test', (s) => s.state === 'synced' && s.remoteId === theirMia.id);
  expect(server.users.get(theirMia.id)).toMatchObject({ title: 'Designer', externalId: mia.id });
  // ...Ann gets a user of her own once Sync now has run...
  await reconciled(t);
  const ann = await remoteUser(server, 'ann.smith@acme.test');
  expect(ann.id).not.toBe(theirMia.id);
  expect(ann.active).toBe(false);
  // ...and Zed's user was never written to.
  expect(server.users.get(zed.id)).toMatchObject({
    userName: 'zed@other.test',
    title: 'Buyer',
    name: { givenName: 'Zed' },
    active: true,
  });
  expect(server.calls.filter((c) => c.method !== 'GET' && c.path === `/Users/${zed.id}`)).toEqual([]);
}, 60_000);
