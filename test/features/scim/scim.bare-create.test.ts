import type { ORM } from '../../../src/db/orm.ts';
import { query, sql } from '../../../src/db/sql.ts';
import { ScimClient } from '../../../src/features/scim/scim.client.ts';
import { reconcile } from '../../../src/features/scim/scim.reconcile.ts';
import { drain } from '../../../src/features/scim/scim.sync.ts';
import type { ScimServer } from '../../support/scim-server.ts';
import { connectedService } from './service.ts';

// A service that answers a create 201 with the new user's Location and no body, as RFC 7644 3.3 allows
// (the body SHOULD hold the user; it need not).
let orm: ORM;
let server: ScimServer;
let accountId: string;
let service: Awaited<ReturnType<typeof connectedService>>;

beforeAll(async () => {
  service = await connectedService('T_SCIM_BARE_CREATE', { bareCreateAnswer: true });
  ({ orm, server, accountId } = service);
});
afterAll(() => service.close());

const client = () => new ScimClient(server.url, server.token, { allowPrivate: true });
const remoteIds = () =>
  query<{ email: string; state: string; remoteId: string | null }>(
    orm.em.fork(),
    sql`select u.email, s.state, s.remote_id as "remoteId" from scim_sync s join app_user u on u.id = s.user_id
      where s.account_id = ${accountId} order by u.email`,
  );

it('finds the user it created by userName, keeps its id, and creates nobody twice', async () => {
  await query(
    orm.em.fork(),
    sql`insert into app_user (id, account_id, email, first_name, role, status) values
      (gen_random_uuid(), ${accountId}, 'gil@acme.test', 'Gil', 'client', 'invited')`,
  );
  expect(await drain(orm.em.fork(), await service.connection(), client())).toMatchObject({
    synced: 1,
    failed: [],
  });
  expect(await remoteIds()).toEqual([
    { email: 'gil@acme.test', state: 'synced', remoteId: server.byUserName('gil@acme.test')!.id },
  ]);

  // Sync now creates the next one the same way, and the change after it reaches the same user.
  await query(
    orm.em.fork(),
    sql`insert into app_user (id, account_id, email, first_name, role, status) values
      (gen_random_uuid(), ${accountId}, 'hal@acme.test', 'Hal', 'client', 'invited')`,
  );
  const report = await reconcile(orm.em.fork(), await service.connection(), client());
  expect(report.created).toEqual({ count: 1, names: ['Hal'] });
  expect(report.failed.count).toBe(0);
  await query(orm.em.fork(), sql`update app_user set status = 'active' where email = 'hal@acme.test'`);
  expect(await drain(orm.em.fork(), await service.connection(), client())).toMatchObject({ synced: 1 });
  expect(server.byUserName('hal@acme.test')!.active).toBe(true);
  expect(server.users.size).toBe(2);
  expect((await remoteIds()).map((r) => r.remoteId)).toEqual([
    server.byUserName('gil@acme.test')!.id,
    server.byUserName('hal@acme.test')!.id,
  ]);
});
