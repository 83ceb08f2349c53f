import { query, sql } from '../../../src/db/sql.ts';
import { User } from '../../../src/features/people/user.entity.ts';
import { ScimError } from '../../../src/features/scim/scim.client.ts';
import { ScimConnection } from '../../../src/features/scim/scim.entity.ts';
import { applyStop, type Stop } from '../../../src/features/scim/scim.sync.ts';
import type { Actor } from '../../../src/features/seats/seat.service.ts';
import { eventually, startTestApp, type TestApp } from '../../support/app.ts';
import { type ScimServer, startScimServer } from '../../support/scim-server.ts';
import { textOf } from '../../support/views.ts';
import { connect, dmTo, remoteUser, syncState } from './support.ts';

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
