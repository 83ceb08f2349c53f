/**
 * A SCIM service that fails everyone for a long while (an outage) against the pending people of one
 * account: the outage is the service's, not theirs, so nobody is given up while it lasts.
 */
import { initORM, type ORM } from '../../../src/db/orm.ts';
import { query, sql } from '../../../src/db/sql.ts';
import { ensureAccount } from '../../../src/features/accounts/account.service.ts';
import { ScimClient } from '../../../src/features/scim/scim.client.ts';
import { ScimConnection } from '../../../src/features/scim/scim.entity.ts';
import { MAX_ATTEMPTS } from '../../../src/features/scim/scim.push.ts';
import { drain, type OnOutage, OUTAGE_NOTICE_FAILURES } from '../../../src/features/scim/scim.sync.ts';
import { createTestDatabase, type TestDatabase } from '../../support/database.ts';
import { type ScimServer, startScimServer } from '../../support/scim-server.ts';

let db: TestDatabase;
let orm: ORM;
let server: ScimServer;
let accountId: string;
let client: ScimClient;

beforeAll(async () => {
  db = await createTestDatabase();
  orm = await initORM(db.url);
  server = await startScimServer();
  accountId = (await ensureAccount(orm.em.fork(), 'T_SCIM_OUTAGE')).id;
  await query(
    orm.em.fork(),
    sql`insert into scim_connection (id, account_id, base_url, token)
      values (gen_random_uuid(), ${accountId}, ${server.url}, ${server.token})`,
  );
  client = new ScimClient(server.url, server.token, { timeoutMs: 2000, allowPrivate: true });
});
afterAll(async () => {
  await orm.close(true);
  await server.close();
  await db.drop();
});

const run = async () =>
  drain(orm.em.fork(), await orm.em.fork().findOneOrFail(ScimConnection, { account: accountId }), client);

it('keeps everyone pending through an outage longer than a person’s attempts, and sends them all once it ends', async () => {
  for (let i = 0; i < 3; i++) {
    await query(
      orm.em.fork(),
      sql`insert into app_user (id, account_id, email, first_name, role, status)
        values (gen_random_uuid(), ${accountId}, ${`outage${i}@acme.test`}, 'Out', 'client', 'active')`,
    );
  }
  server.fail(503, { times: 100_000 });
  // Many rounds of the service failing everyone, each one as soon as the pauses would have ended.
  const failedTold: string[] = [];
  for (let i = 0; i < MAX_ATTEMPTS * 3; i++) {
    await query(orm.em.fork(), sql`update scim_connection set paused_until = null`);
    await query(orm.em.fork(), sql`update scim_sync set next_attempt_at = now() where state = 'pending'`);
    failedTold.push(...(await run()).failed.map((f) => f.name));
  }
  expect(failedTold).toEqual([]);
  const states = await query<{ state: string }>(
    orm.em.fork(),
    sql`select state from scim_sync where account_id = ${accountId}`,
  );
  expect(states.map((s) => s.state)).toEqual(['pending', 'pending', 'pending']);

  server.reset();
  await query(orm.em.fork(), sql`update scim_connection set paused_until = null`);
  await query(orm.em.fork(), sql`update scim_sync set next_attempt_at = now() where state = 'pending'`);
  expect((await run()).synced).toBe(3);
  for (let i = 0; i < 3; i++)
    expect(server.byUserName(`outage${i}@acme.test`)).toMatchObject({ active: true });
});

it('keeps pausing five minutes at a time however long the service fails', async () => {
  await query(
    orm.em.fork(),
    sql`insert into app_user (id, account_id, email, first_name, role, status)
      values (gen_random_uuid(), ${accountId}, 'long-outage@acme.test', 'Long', 'client', 'active')`,
  );
  // As many failures in a row as a day's outage, with a pause of five minutes each.
  await query(orm.em.fork(), sql`update scim_connection set failures = 290, paused_until = null`);
  server.fail(503, { times: 1 });
  const result = await run();
  expect(result.synced).toBe(0);
  const wait = result.wakeAt!.getTime() - Date.now();
  expect(wait).toBeGreaterThan(290_000);
  expect(wait).toBeLessThanOrEqual(300_000);
  server.reset();
});

it('still gives up a person whom the service keeps failing while it takes everyone else', async () => {
  await query(
    orm.em.fork(),
    sql`insert into app_user (id, account_id, email, first_name, role, status)
      values (gen_random_uuid(), ${accountId}, 'poison@acme.test', 'Poison', 'client', 'active')`,
  );
  server.fail(500, { times: 100_000, when: (req) => String(req.query.filter ?? '').includes('poison') });
  const failedTold: string[] = [];
  for (let i = 0; i < MAX_ATTEMPTS; i++) {
    // Someone else changes each round, and the service takes them.
    await query(
      orm.em.fork(),
      sql`insert into app_user (id, account_id, email, first_name, role, status)
        values (gen_random_uuid(), ${accountId}, ${`fine${i}@acme.test`}, 'Fine', 'client', 'active')`,
    );
    await query(orm.em.fork(), sql`update scim_connection set paused_until = null`);
    await query(orm.em.fork(), sql`update scim_sync set next_attempt_at = now() where state = 'pending'`);
    failedTold.push(...(await run()).failed.map((f) => f.name));
  }
  expect(failedTold).toEqual(['Poison']);
  const [poison] = await query<{ state: string }>(
    orm.em.fork(),
    sql`select s.state from scim_sync s join app_user u on u.id = s.user_id where u.email = 'poison@acme.test'`,
  );
  expect(poison!.state).toBe('failed');
  for (let i = 0; i < MAX_ATTEMPTS; i++) expect(server.byUserName(`fine${i}@acme.test`)).toBeDefined();
  server.reset();
});

it('gives up a person the service keeps failing alone while it answers its list, with nobody else waiting', async () => {
  await query(orm.em.fork(), sql`update scim_sync set state = 'synced' where state <> 'synced'`);
  await query(
    orm.em.fork(),
    sql`insert into app_user (id, account_id, email, first_name, role, status)
      values (gen_random_uuid(), ${accountId}, 'alone@acme.test', 'Alone', 'client', 'active')`,
  );
  server.fail(500, { times: 100_000, when: (req) => String(req.query.filter ?? '').includes('alone') });
  const failedTold: string[] = [];
  for (let i = 0; i < MAX_ATTEMPTS; i++) {
    await query(orm.em.fork(), sql`update scim_connection set paused_until = null`);
    await query(orm.em.fork(), sql`update scim_sync set next_attempt_at = now() where state = 'pending'`);
    failedTold.push(...(await run()).failed.map((f) => f.name));
  }
  expect(failedTold).toEqual(['Alone']);
  server.reset();
});

it('tells the admins once when the service has failed for about an hour, and once when it answers again', async () => {
  await query(orm.em.fork(), sql`update scim_sync set state = 'synced' where state <> 'synced'`);
  await query(
    orm.em.fork(),
    sql`insert into app_user (id, account_id, email, first_name, role, status)
      values (gen_random_uuid(), ${accountId}, 'hour@acme.test', 'Hour', 'client', 'active')`,
  );
  const told: string[] = [];
  const onOutage: OnOutage = {
    failing: async (_tx, problem) => void told.push(`failing: ${problem}`),
    answering: async () => void told.push('answering'),
  };
  const round = async () => {
    await query(orm.em.fork(), sql`update scim_connection set paused_until = null`);
    await query(orm.em.fork(), sql`update scim_sync set next_attempt_at = now() where state = 'pending'`);
    const connection = await orm.em.fork().findOneOrFail(ScimConnection, { account: accountId });
    return drain(orm.em.fork(), connection, client, undefined, onOutage);
  };
  // Nearly an hour of failures already; three more rounds of the service failing everyone.
  await query(orm.em.fork(), sql`update scim_connection set failures = ${OUTAGE_NOTICE_FAILURES - 2}`);
  server.fail(503, { times: 100_000 });
  for (let i = 0; i < 3; i++) await round();
  expect(told).toEqual([expect.stringMatching(/^failing: .*503/)]);
  // It answers: told once, and the kept change goes out.
  server.reset();
  expect((await round()).synced).toBe(1);
  await query(orm.em.fork(), sql`update app_user set first_name = 'Houra' where email = 'hour@acme.test'`);
  await round();
  expect(told).toHaveLength(2);
  expect(told[1]).toBe('answering');
  expect(server.byUserName('hour@acme.test')?.name?.givenName).toBe('Houra');
});
