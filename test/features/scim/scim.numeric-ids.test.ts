import type { ORM } from '../../../src/db/orm.ts';
import { query, sql } from '../../../src/db/sql.ts';
import { ScimClient } from '../../../src/features/scim/scim.client.ts';
import { reconcile } from '../../../src/features/scim/scim.reconcile.ts';
import { drain } from '../../../src/features/scim/scim.sync.ts';
import type { ScimServer } from '../../support/scim-server.ts';
import { connectedService } from './service.ts';

// A service that answers its users' ids as JSON numbers (`"id": 1`) where RFC 7643 makes them strings.
let orm: ORM;
let server: ScimServer;
let accountId: string;
let service: Awaited<ReturnType<typeof connectedService>>;

beforeAll(async () => {
  service = await connectedService('T_SCIM_NUMERIC_IDS', { numericIds: true });
  ({ orm, server, accountId } = service);
});
afterAll(() => service.close());

const client = () => new ScimClient(server.url, server.token, { allowPrivate: true });
const remoteIds = () =>
  query<{ email: string; remoteId: string | null }>(
    orm.em.fork(),
    sql`select u.email, s.remote_id as "remoteId" from scim_sync s join app_user u on u.id = s.user_id
      where s.account_id = ${accountId} order by u.email`,
  );

it('keeps numeric ids as strings, so Sync now finds each user linked already and knows them all', async () => {
  const bo = server.add({ userName: 'bo@acme.test', active: false });
  await query(
    orm.em.fork(),
    sql`insert into app_user (id, account_id, email, first_name, role, status) values
      (gen_random_uuid(), ${accountId}, 'ana@acme.test', 'Ana', 'client', 'invited'),
      (gen_random_uuid(), ${accountId}, 'bo@acme.test', 'Bo', 'client', 'invited')`,
  );
  const first = await reconcile(orm.em.fork(), await service.connection(), client());
  expect(first).toMatchObject({ created: { count: 1 }, linked: { count: 1 }, failed: { count: 0 } });
  const ana = server.byUserName('ana@acme.test')!;
  expect(await remoteIds()).toEqual([
    { email: 'ana@acme.test', remoteId: ana.id },
    { email: 'bo@acme.test', remoteId: bo.id },
  ]);

  // Sync now again: nobody is linked a second time, nobody is unknown.
  const again = await reconcile(orm.em.fork(), await service.connection(), client());
  expect(again).toMatchObject({
    created: { count: 0 },
    linked: { count: 0 },
    updated: { count: 0 },
    unchanged: 2,
    unknown: { count: 0 },
  });

  // A change reaches the same user, by its id.
  await query(orm.em.fork(), sql`update app_user set status = 'active' where email = 'ana@acme.test'`);
  expect(await drain(orm.em.fork(), await service.connection(), client())).toMatchObject({
    synced: 1,
    failed: [],
  });
  expect(server.byUserName('ana@acme.test')).toMatchObject({ id: ana.id, active: true });
  expect(server.users.size).toBe(2);
});
