import type { ORM } from '../../../src/db/orm.ts';
import { query, sql } from '../../../src/db/sql.ts';
import { ScimClient } from '../../../src/features/scim/scim.client.ts';
import { reconcile } from '../../../src/features/scim/scim.reconcile.ts';
import { drain } from '../../../src/features/scim/scim.sync.ts';
import type { ScimServer } from '../../support/scim-server.ts';
import { connectedService } from './service.ts';

// A service that answers PATCH 501 (optional in RFC 7644) and takes PUT, and that may start taking PATCH later.
let orm: ORM;
let server: ScimServer;
let accountId: string;
let service: Awaited<ReturnType<typeof connectedService>>;
let refusing = true;

beforeAll(async () => {
  service = await connectedService('T_SCIM_PATCH_MEMORY');
  ({ orm, server, accountId } = service);
  server.fail(501, { times: Number.POSITIVE_INFINITY, when: (req) => refusing && req.method === 'PATCH' });
});
afterAll(() => service.close());

// A client per run, as each sync job has its own (in any instance).
const client = () => new ScimClient(server.url, server.token, { allowPrivate: true });
const writes = () => {
  const seen = server.calls
    .filter((c) => c.method === 'PATCH' || c.method === 'PUT')
    .map((c) => `${c.method} ${c.status}`);
  server.calls.length = 0;
  return seen;
};
const refusedAt = async () =>
  (
    await query<{ at: Date | null }>(
      orm.em.fork(),
      sql`select patch_refused_at as at from scim_connection where account_id = ${accountId}`,
    )
  )[0]!.at;
const setTitle = (title: string) =>
  query(orm.em.fork(), sql`update app_user set title = ${title} where account_id = ${accountId}`);

it('meets a refused PATCH once, and later runs send PUT straight away', async () => {
  for (const name of ['ana', 'bo', 'cy', 'di']) server.add({ userName: `${name}@acme.test`, active: false });
  await query(
    orm.em.fork(),
    sql`insert into app_user (id, account_id, email, first_name, role, status) values
      (gen_random_uuid(), ${accountId}, 'ana@acme.test', 'Ana', 'client', 'invited'),
      (gen_random_uuid(), ${accountId}, 'bo@acme.test', 'Bo', 'client', 'invited'),
      (gen_random_uuid(), ${accountId}, 'cy@acme.test', 'Cy', 'client', 'invited'),
      (gen_random_uuid(), ${accountId}, 'di@acme.test', 'Di', 'client', 'invited')`,
  );
  server.calls.length = 0;
  // Four people linked and updated at once: one PATCH is tried, the others wait for its answer.
  const report = await reconcile(orm.em.fork(), await service.connection(), client());
  expect(report).toMatchObject({ linked: { count: 4 }, failed: { count: 0 } });
  expect(writes()).toEqual(['PATCH 501', 'PUT 200', 'PUT 200', 'PUT 200', 'PUT 200']);
  expect(await refusedAt()).not.toBeNull();

  // The next runs, each with a client of its own, go straight to PUT.
  await setTitle('Lead');
  expect(await drain(orm.em.fork(), await service.connection(), client())).toMatchObject({
    synced: 4,
    failed: [],
  });
  expect(writes()).toEqual(['PUT 200', 'PUT 200', 'PUT 200', 'PUT 200']);
  await setTitle('Head');
  await drain(orm.em.fork(), await service.connection(), client());
  expect(writes()).toEqual(['PUT 200', 'PUT 200', 'PUT 200', 'PUT 200']);
  expect(server.byUserName('di@acme.test')!.title).toBe('Head');
});

it('tries PATCH again a day after, and sends PATCH once the service takes it', async () => {
  const day = sql`update scim_connection set patch_refused_at = now() - interval '25 hours' where account_id = ${accountId}`;
  // Still refused a day later: PUT again, and the refusal is dated anew.
  await query(orm.em.fork(), day);
  await setTitle('Chief');
  await drain(orm.em.fork(), await service.connection(), client());
  expect(writes()).toEqual(['PATCH 501', 'PUT 200', 'PUT 200', 'PUT 200', 'PUT 200']);
  const renewed = await refusedAt();
  expect(Date.now() - new Date(renewed!).getTime()).toBeLessThan(60_000);

  // The service now takes PATCH: the day's retry finds it, and Roster forgets the refusal.
  refusing = false;
  await query(orm.em.fork(), day);
  await setTitle('Owner');
  await drain(orm.em.fork(), await service.connection(), client());
  expect(writes()).toEqual(['PATCH 200', 'PATCH 200', 'PATCH 200', 'PATCH 200']);
  expect(await refusedAt()).toBeNull();
  expect(server.byUserName('ana@acme.test')!.title).toBe('Owner');
});
