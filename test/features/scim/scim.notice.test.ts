import { query, sql } from '../../../src/db/sql.ts';
import { User } from '../../../src/features/people/user.entity.ts';
import { ScimError } from '../../../src/features/scim/scim.client.ts';
import { ScimConnection } from '../../../src/features/scim/scim.entity.ts';
import { applyStop, CONCURRENCY, type Stop } from '../../../src/features/scim/scim.sync.ts';
import type { Actor } from '../../../src/features/seats/seat.service.ts';
import { eventually, startTestApp, type TestApp } from '../../support/app.ts';
import { type ScimServer, startScimServer } from '../../support/scim-server.ts';
import { textOf } from '../../support/views.ts';
import { connect, dmTo, openScimForm, reconciled, remoteUser, syncState } from './support.ts';

// The admins are told once that the service refused the token. Before the Slack directory mirror has
// synced, finding the admins reads Slack's member list, which Slack may pace: the notice then waits for
// Slack, and still arrives, once.

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

const stopped = (user: string) =>
  t.standin.messages.filter((m) => m.channel === `D${user}` && /SCIM provisioning stopped/.test(textOf(m)));

it('tells the admins of a refused token once Slack can list them, and only once', async () => {
  const account = await t.account();
  const em = t.em();
  const user = em.create(User, { account, email: 'nina@acme.test', role: 'employee', status: 'active' });
  await em.flush();
  await connect(t, server);
  await syncState(t, 'nina@acme.test');

  // The mirror not synced yet, and Slack's member list busy for longer than a job waits for its turn.
  await eventually(async () => {
    const [row] = await query<{ finished_at: Date | null }>(
      t.em(),
      sql`select finished_at from slack_directory_sync`,
    );
    return row?.finished_at ?? undefined;
  });
  await query(t.em(), sql`delete from slack_directory_sync`);
  await t.roster.pacer.hold('method:users.list', 12_000);
  const listsBefore = t.standin.callsTo('users.list').length;

  await query(t.em(), sql`update scim_connection set token = 'revoked-token'`);
  await t.roster.deps.person.deactivate(t.em(), account, admin, user.id);
  await eventually(async () => {
    const c = await t.em().findOne(ScimConnection, { account: account.id });
    return c?.refusedAt ?? undefined;
  });
  // Slack is not asked while it is busy, and no one is told yet.
  await new Promise((r) => setTimeout(r, 1500));
  expect(t.standin.callsTo('users.list').length).toBe(listsBefore);
  expect(stopped('UADMIN')).toHaveLength(0);

  // Once Slack allows, every admin is told, once.
  const told = await eventually(() => stopped('UADMIN')[0], 25_000);
  expect(textOf(told)).toContain('refused Roster');
  expect(textOf(told)).not.toContain('revoked-token');
  await eventually(() => stopped('UOWNER')[0]);
  await new Promise((r) => setTimeout(r, 2000));
  expect(stopped('UADMIN')).toHaveLength(1);
  expect(stopped('UOWNER')).toHaveLength(1);
}, 60_000);

it('marks a connection refused only together with its notice: a notice that cannot be queued leaves it to be found again', async () => {
  const account = await t.account();
  const em = t.em();
  await query(em, sql`update scim_connection set refused_at = null where account_id = ${account.id}`);
  const connection = await em.findOneOrFail(ScimConnection, { account: account.id });
  const stop: Stop = { kind: 'unauthorized', error: new ScimError('unauthorized', 401, 'token refused') };
  const refusedAt = async () =>
    (await t.em().findOneOrFail(ScimConnection, { account: account.id }, { refresh: true })).refusedAt;

  // The notice fails to be queued (the database fails mid-way): nothing of the refusal is kept.
  await expect(
    applyStop(em, connection, stop, async () => {
      throw new Error('could not queue');
    }),
  ).rejects.toThrow('could not queue');
  expect(await refusedAt()).toBeNull();

  // Found again on the next push: marked and told, once however often it is found after that.
  const told: string[] = [];
  const tell = async (_tx: unknown, problem: string) => void told.push(problem);
  expect((await applyStop(em, connection, stop, tell)).newlyRefused).toBe(true);
  expect((await applyStop(em, connection, stop, tell)).newlyRefused).toBe(false);
  expect(told).toEqual(['token refused']);
  expect(await refusedAt()).not.toBeNull();
});

it('a 403 about one person (a product that will not deactivate its owner) refuses them, not the token', async () => {
  const account = await t.account();
  await query(
    t.em(),
    sql`update scim_connection set token = ${server.token}, refused_at = null, problem = null
      where account_id = ${account.id}`,
  );
  const em = t.em();
  const owner = em.create(User, { account, email: 'olga@acme.test', role: 'employee', status: 'active' });
  em.create(User, { account, email: 'pia@acme.test', firstName: 'Pia', role: 'employee', status: 'active' });
  await em.flush();
  await syncState(t, 'olga@acme.test');
  await syncState(t, 'pia@acme.test');
  const olga = server.byUserName('olga@acme.test')!;
  const stoppedBefore = stopped('UADMIN').length;

  // The product forbids deactivating its owner's account, as Slack's own SCIM API answers for a primary owner.
  server.fail(403, { times: 1000, when: (req) => req.method === 'PATCH' && req.path.includes(olga.id) });
  await t.roster.deps.person.deactivate(t.em(), account, admin, owner.id);
  const failed = await syncState(t, 'olga@acme.test', (s) => s.state === 'failed');
  expect(failed.lastError).toContain('answered 403');
  expect(failed.lastError).toContain('refused for this person alone');
  const told = await dmTo(t, 'UADMIN', /refused 1 person/);
  expect(textOf(told)).toContain('olga@acme.test');

  // Everyone else is still provisioned, and nobody is told the token is refused.
  await query(t.em(), sql`update app_user set first_name = 'Piera' where email = 'pia@acme.test'`);
  await remoteUser(server, 'pia@acme.test', (u) => u.name?.givenName === 'Piera');
  expect((await t.em().findOneOrFail(ScimConnection, { account: account.id })).refusedAt).toBeNull();
  expect(stopped('UADMIN')).toHaveLength(stoppedBefore);

  // A token that may no longer list users is refused, as ever.
  server.fail(403, { times: 100_000 });
  await query(t.em(), sql`update app_user set first_name = 'Pi' where email = 'pia@acme.test'`);
  await eventually(async () => {
    const c = await t.em().findOne(ScimConnection, { account: account.id });
    return c?.refusedAt ?? undefined;
  });
  await eventually(() => stopped('UADMIN')[stoppedBefore], 25_000);
}, 60_000);

const refusedPeople = () =>
  t.standin.messages.filter((m) => m.channel === 'DUADMIN' && /refused \d+ (person|people)/.test(textOf(m)));
const checks = () => server.calls.filter((c) => c.method === 'GET' && c.path === '/ServiceProviderConfig');

it('a token that can read but not write stops the sync once, rather than refusing everyone one by one', async () => {
  const account = await t.account();
  const em = t.em();
  for (let i = 1; i <= 3 * CONCURRENCY; i++) {
    em.create(User, { account, email: `reader${i}@acme.test`, role: 'employee', status: 'active' });
  }
  await em.flush();
  // A read-only token (a read scope, or writing withdrawn in the product): it lists users, every write is 403.
  server.reset();
  server.fail(403, { times: 100_000, when: (req) => req.method !== 'GET' });
  const stoppedBefore = stopped('UADMIN').length;
  const refusedBefore = refusedPeople().length;

  // Connected again with it (the token above was refused): nothing is ever written with it.
  const form = await openScimForm(t);
  await t.slack.submitView(form, { url: server.url, token: server.token }, { user: 'UADMIN' });
  await eventually(async () => {
    const c = await t.em().findOne(ScimConnection, { account: account.id }, { refresh: true });
    return c?.refusedAt ?? undefined;
  });
  await eventually(() => stopped('UADMIN')[stoppedBefore], 25_000);
  const readers = await query<{ state: string; lastError: string | null }>(
    t.em(),
    sql`select s.state, s.last_error as "lastError" from scim_sync s join app_user u on u.id = s.user_id
      where u.email like 'reader%'`,
  );
  expect(readers).toHaveLength(3 * CONCURRENCY);
  expect(readers.every((r) => r.state === 'pending' && r.lastError === null)).toBe(true);
  expect(server.calls.filter((c) => c.method !== 'GET').length).toBeLessThanOrEqual(CONCURRENCY);
  await new Promise((r) => setTimeout(r, 1500));
  expect(stopped('UADMIN')).toHaveLength(stoppedBefore + 1);
  expect(refusedPeople()).toHaveLength(refusedBefore);
}, 60_000);

it('checks the token once for a run of people the product refuses one by one', async () => {
  const account = await t.account();
  // Writing allowed: connected again, everyone is sent.
  server.reset();
  const form = await openScimForm(t);
  await t.slack.submitView(form, { url: server.url, token: server.token }, { user: 'UADMIN' });
  await syncState(t, `reader${3 * CONCURRENCY}@acme.test`);
  await reconciled(t);

  // The product will not deactivate any of the readers (its admins, say): each is refused on their own.
  server.fail(403, { times: 100_000, when: (req) => req.method === 'PATCH' });
  const checksBefore = checks().length;
  await query(t.em(), sql`update app_user set status = 'deactivated' where email like 'reader%'`);
  await eventually(async () => {
    const [row] = await query<{ n: number }>(
      t.em(),
      sql`select count(*)::int as n from scim_sync s join app_user u on u.id = s.user_id
        where u.email like 'reader%' and s.state = 'failed' and s.last_error like '%refused for this person alone%'`,
    );
    return row?.n === 3 * CONCURRENCY || undefined;
  }, 20_000);
  expect(checks().length - checksBefore).toBe(1);
  expect(
    (await t.em().findOneOrFail(ScimConnection, { account: account.id }, { refresh: true })).refusedAt,
  ).toBeNull();
}, 60_000);
