import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { ORM } from '../../../src/db/orm.ts';
import { query, sql } from '../../../src/db/sql.ts';
import { ScimClient } from '../../../src/features/scim/scim.client.ts';
import { claimDue, pushOne } from '../../../src/features/scim/scim.push.ts';
import { reconcile } from '../../../src/features/scim/scim.reconcile.ts';
import { drain } from '../../../src/features/scim/scim.sync.ts';
import type { ScimServer } from '../../support/scim-server.ts';
import { connectedService } from './service.ts';

// A create whose answer is lost (the service answers after Roster's timeout, or Roster stops before it records
// the answer) really created the user. If the person's email changes before the next attempt, a lookup by the
// new userName alone finds nobody and creates a second remote user, active for good and out of Roster's reach:
// the next attempt finds the first by the externalId Roster created it with.
let orm: ORM;
let server: ScimServer;
let accountId: string;
let service: Awaited<ReturnType<typeof connectedService>>;
let proxy: Server;
let proxyUrl: string;
/** POSTs through the proxy are answered this late (after the service has done them). */
let postDelayMs = 0;
/** The proxy answers a filter on externalId as a service that cannot filter on it does. */
let refuseExternalIdFilter = false;

beforeAll(async () => {
  service = await connectedService('T_ZZ_SCIM_LOST_CREATE');
  ({ orm, server, accountId } = service);
  // The service as seen over a slow network: the request reaches it and is done, the answer comes late.
  proxy = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    if (refuseExternalIdFilter && /filter=externalId/i.test(req.url ?? '')) {
      res.writeHead(400, { 'content-type': 'application/scim+json' });
      res.end(
        JSON.stringify({
          schemas: ['urn:ietf:params:scim:api:messages:2.0:Error'],
          status: '400',
          scimType: 'invalidFilter',
          detail: 'Filtering on externalId is not supported',
        }),
      );
      return;
    }
    const upstream = await fetch(`${new URL(server.url).origin}${req.url}`, {
      method: req.method,
      headers: Object.fromEntries(
        Object.entries(req.headers).filter(
          ([k, v]) => typeof v === 'string' && !['host', 'connection', 'content-length'].includes(k),
        ),
      ) as Record<string, string>,
      body: req.method === 'GET' ? undefined : Buffer.concat(chunks),
    });
    const body = Buffer.from(await upstream.arrayBuffer());
    if (req.method === 'POST' && postDelayMs) await sleep(postDelayMs);
    if (res.destroyed) return;
    res.writeHead(upstream.status, {
      'content-type': upstream.headers.get('content-type') ?? 'application/json',
    });
    res.end(body);
  });
  await new Promise<void>((ok) => proxy.listen(0, '127.0.0.1', ok));
  proxyUrl = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}${new URL(server.url).pathname}`;
});
afterAll(async () => {
  proxy.closeAllConnections();
  await new Promise((r) => proxy.close(r));
  await service.close();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const remote = () => [...server.users.values()].map((u) => ({ userName: u.userName, active: u.active }));
const addPerson = (email: string, name: string) =>
  query(
    orm.em.fork(),
    sql`insert into app_user (id, account_id, email, first_name, role, status)
      values (gen_random_uuid(), ${accountId}, ${email}, ${name}, 'client', 'active')`,
  );
const changeEmail = (from: string, to: string) =>
  query(orm.em.fork(), sql`update app_user set email = ${to} where email = ${from}`);
async function drainUntilSynced(client: ScimClient): Promise<number> {
  let synced = 0;
  for (let i = 0; i < 40 && !synced; i++) {
    synced = (await drain(orm.em.fork(), await service.connection(), client)).synced;
    if (!synced) await sleep(200);
  }
  return synced;
}

it('a create answered after the timeout, then an email change: one remote user, not two', async () => {
  server.reset();
  await addPerson('ivy@acme.test', 'Ivy');
  postDelayMs = 1000;
  const impatient = new ScimClient(proxyUrl, server.token, { timeoutMs: 500, allowPrivate: true });
  const first = await drain(orm.em.fork(), await service.connection(), impatient);
  expect(first.synced).toBe(0);
  postDelayMs = 0;
  // The service did the POST whose answer Roster gave up on: Ivy exists there.
  expect(server.byUserName('ivy@acme.test')).toBeDefined();

  await changeEmail('ivy@acme.test', 'ivy.new@acme.test');
  expect(await drainUntilSynced(new ScimClient(server.url, server.token, { allowPrivate: true }))).toBe(1);

  // One person in Roster: one user in the service, under the new email; nobody left active under the old one.
  expect(remote()).toEqual([{ userName: 'ivy.new@acme.test', active: true }]);
});

it('a stop after the create was taken but before it was recorded, then an email change: one remote user', async () => {
  server.reset();
  await addPerson('jo@acme.test', 'Jo');
  const client = new ScimClient(server.url, server.token, { allowPrivate: true });
  // A worker claims Jo and creates her; the process stops before recordOutcomes runs.
  const rows = await claimDue(orm.em.fork(), accountId, 40);
  const jo = rows.find((r) => r.email === 'jo@acme.test')!;
  expect((await pushOne(client, jo)).result).toBe('synced');
  expect(server.byUserName('jo@acme.test')).toBeDefined();
  // Five minutes later her lease has run out (moved back rather than waited for).
  await query(
    orm.em.fork(),
    sql`update scim_sync set leased_until = now() - interval '1 second' where user_id = ${jo.id}`,
  );

  await changeEmail('jo@acme.test', 'jo.new@acme.test');
  expect(await drainUntilSynced(client)).toBe(1);
  expect(remote()).toEqual([{ userName: 'jo.new@acme.test', active: true }]);
});

it('a lost create, then an email change, then a full sync (reconcile): the first user is linked, not doubled', async () => {
  server.reset();
  await addPerson('kai@acme.test', 'Kai');
  const client = new ScimClient(server.url, server.token, { allowPrivate: true });
  const rows = await claimDue(orm.em.fork(), accountId, 40);
  const kai = rows.find((r) => r.email === 'kai@acme.test')!;
  expect((await pushOne(client, kai)).result).toBe('synced');
  await query(
    orm.em.fork(),
    sql`update scim_sync set leased_until = now() - interval '1 second' where user_id = ${kai.id}`,
  );
  await changeEmail('kai@acme.test', 'kai.new@acme.test');

  const report = await reconcile(orm.em.fork(), await service.connection(), client);
  // The people of the tests before are created again (the service was emptied); Kai is linked.
  expect(report.linked.names).toEqual(['Kai']);
  expect(report.created.names).not.toContain('Kai');
  expect(remote().filter((u) => u.userName.startsWith('kai'))).toEqual([
    { userName: 'kai.new@acme.test', active: true },
  ]);
});

it('a service that cannot filter on externalId: the person is created once, as before', async () => {
  server.reset();
  refuseExternalIdFilter = true;
  try {
    await addPerson('lea@acme.test', 'Lea');
    const client = new ScimClient(proxyUrl, server.token, { allowPrivate: true });
    expect(await drainUntilSynced(client)).toBe(1);
    expect(remote()).toEqual([{ userName: 'lea@acme.test', active: true }]);
  } finally {
    refuseExternalIdFilter = false;
  }
});

const links = (emails: string[]) =>
  query<{ email: string; remoteId: string | null; state: string; lastError: string | null }>(
    orm.em.fork(),
    sql`select u.email, s.remote_id as "remoteId", s.state, s.last_error as "lastError"
        from scim_sync s join app_user u on u.id = s.user_id
        where s.account_id = ${accountId} and u.email = any(${emails}) `,
  );

/** A person whose create was taken but not recorded (a stop), their lease run out: the user's remote id. */
async function lostCreate(email: string): Promise<string> {
  const client = new ScimClient(server.url, server.token, { allowPrivate: true });
  const rows = await claimDue(orm.em.fork(), accountId, 40);
  const outcome = await pushOne(client, rows.find((r) => r.email === email)!);
  expect(outcome.result).toBe('synced');
  await query(
    orm.em.fork(),
    sql`update scim_sync set leased_until = now() - interval '1 second' where account_id = ${accountId}`,
  );
  return (outcome as { remoteId: string }).remoteId;
}

/**
 * The one whose create was lost is linked to that user, under their new email; the newcomer with their old
 * email is never linked to it: refused, saying why, when the service still holds the old email, or given a
 * user of their own once it no longer does (whichever of the two is pushed first).
 */
async function neverShared(original: string, mover: string, newcomer: string) {
  const linked = await links([mover, newcomer]);
  const moved = linked.find((l) => l.email === mover);
  const added = linked.find((l) => l.email === newcomer)!;
  expect(moved).toMatchObject({ state: 'synced', remoteId: original });
  expect(server.users.get(original)?.userName).toBe(mover);
  if (added.state === 'failed') {
    expect(added).toMatchObject({
      remoteId: null,
      lastError: expect.stringContaining('belongs to another person in Roster'),
    });
  } else {
    expect(added.remoteId).not.toBe(original);
    expect(server.users.get(added.remoteId!)?.userName).toBe(newcomer);
  }
}

it('a lost create, an email change, and a new person given the old email: never two people on one user', async () => {
  server.reset();
  await addPerson('ann@acme.test', 'Ann');
  const original = await lostCreate('ann@acme.test');
  await changeEmail('ann@acme.test', 'ann.new@acme.test');
  await addPerson('ann@acme.test', 'Bob');
  const client = new ScimClient(server.url, server.token, { allowPrivate: true });
  for (let i = 0; i < 3; i++) await drain(orm.em.fork(), await service.connection(), client);
  await neverShared(original, 'ann.new@acme.test', 'ann@acme.test');
});

it('Sync now: a new person given the old email of someone whose create was lost is not linked to their user', async () => {
  server.reset();
  await addPerson('cy@acme.test', 'Cy');
  const original = await lostCreate('cy@acme.test');
  await changeEmail('cy@acme.test', 'cy.new@acme.test');
  await addPerson('cy@acme.test', 'Dee');
  const client = new ScimClient(server.url, server.token, { allowPrivate: true });
  await reconcile(orm.em.fork(), await service.connection(), client);
  await neverShared(original, 'cy.new@acme.test', 'cy@acme.test');
});

/**
 * `name`'s user was in the product before Roster (its own admins made it: no externalId), so Roster linked
 * them to it by userName; then they move to `moved` and a newcomer, Bob, is given their old email.
 */
async function productUserThenMove(name: string, old: string, moved: string, newcomer: string) {
  server.reset();
  const pre = server.add({ userName: old, active: true, name: { givenName: name } });
  await addPerson(old, name);
  const client = new ScimClient(server.url, server.token, { allowPrivate: true });
  await drain(orm.em.fork(), await service.connection(), client);
  expect((await links([old]))[0]?.remoteId).toBe(pre.id);
  await changeEmail(old, moved);
  await addPerson(newcomer, 'Bob');
  return pre;
}

it('a product user linked by userName is given the person’s id as its externalId', async () => {
  const pre = await productUserThenMove('Eda', 'eda@acme.test', 'eda.new@acme.test', 'eda@acme.test');
  const [eda] = await query<{ id: string }>(
    orm.em.fork(),
    sql`select id from app_user where email = 'eda.new@acme.test'`,
  );
  expect(server.users.get(pre.id)?.externalId).toBe(eda!.id);
});

it('a product that will not take an externalId still has the person linked', async () => {
  server.reset();
  const pre = server.add({ userName: 'hal@acme.test', active: true, name: { givenName: 'Hal' } });
  server.rejectWhen((u) => (u.externalId ? 'externalId is read-only here' : undefined));
  try {
    await addPerson('hal@acme.test', 'Hal');
    const client = new ScimClient(server.url, server.token, { allowPrivate: true });
    await drain(orm.em.fork(), await service.connection(), client);
    expect(await links(['hal@acme.test'])).toEqual([
      expect.objectContaining({ state: 'synced', remoteId: pre.id, lastError: null }),
    ]);
    expect(server.users.get(pre.id)?.externalId).toBeUndefined();
  } finally {
    server.rejectWhen(undefined);
  }
});

it('Sync now: the newcomer given the old email of someone linked to a product user never shares it', async () => {
  // Linked before Roster gave such users its id: only Roster's own record says whose the user is.
  const pre = await productUserThenMove('Fay', 'fay@acme.test', 'fay.new@acme.test', 'fay@acme.test');
  delete server.users.get(pre.id)!.externalId;
  const client = new ScimClient(server.url, server.token, { allowPrivate: true });
  await reconcile(orm.em.fork(), await service.connection(), client);
  await neverShared(pre.id, 'fay.new@acme.test', 'fay@acme.test');
  // Bob leaves: Fay's account in the product stays on.
  await query(orm.em.fork(), sql`update app_user set status = 'deactivated' where email = 'fay@acme.test'`);
  for (let i = 0; i < 2; i++) await drain(orm.em.fork(), await service.connection(), client);
  expect(server.users.get(pre.id)).toMatchObject({ userName: 'fay.new@acme.test', active: true });
});

it('the newcomer pushed in the same batch as the mover is refused, naming whose user it is', async () => {
  const pre = await productUserThenMove('Gus', 'gus@acme.test', 'gus.new@acme.test', 'gus@acme.test');
  delete server.users.get(pre.id)!.externalId;
  // Gus's rename is under way when Bob is looked up by the old email.
  server.slow(300, { when: (req) => req.method === 'PATCH' });
  const client = new ScimClient(server.url, server.token, { allowPrivate: true });
  await drain(orm.em.fork(), await service.connection(), client);
  await neverShared(pre.id, 'gus.new@acme.test', 'gus@acme.test');
  const [bob] = await links(['gus@acme.test']);
  expect(bob).toMatchObject({
    state: 'failed',
    lastError: expect.stringContaining('belongs to another person in Roster, Gus (gus.new@acme.test)'),
  });
});
