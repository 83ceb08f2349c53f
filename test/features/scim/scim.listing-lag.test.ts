import type { ORM } from '../../../src/db/orm.ts';
import { query, sql } from '../../../src/db/sql.ts';
import { ScimClient } from '../../../src/features/scim/scim.client.ts';
import { reconcile } from '../../../src/features/scim/scim.reconcile.ts';
import { drain } from '../../../src/features/scim/scim.sync.ts';
import type { ScimServer } from '../../support/scim-server.ts';
import { connectedService } from './service.ts';

// A service that answers a create 201 with no body, and whose list shows a new user only a moment later
// (eventual consistency): the lookup right after the create does not find it yet.
let orm: ORM;
let server: ScimServer;
let accountId: string;
let service: Awaited<ReturnType<typeof connectedService>>;

beforeAll(async () => {
  service = await connectedService('T_SCIM_LISTING_LAG', { bareCreateAnswer: true, listingLag: 1 });
  ({ orm, server, accountId } = service);
});
afterAll(() => service.close());

const client = () => new ScimClient(server.url, server.token, { allowPrivate: true });
const syncState = async (email: string) =>
  (
    await query<{ state: string; remoteId: string | null; lastError: string | null }>(
      orm.em.fork(),
      sql`select s.state, s.remote_id as "remoteId", s.last_error as "lastError"
        from scim_sync s join app_user u on u.id = s.user_id where u.email = ${email}`,
    )
  )[0];
const addUser = (email: string, name: string) =>
  query(
    orm.em.fork(),
    sql`insert into app_user (id, account_id, email, first_name, role, status)
      values (gen_random_uuid(), ${accountId}, ${email}, ${name}, 'client', 'invited')`,
  );
const posts = () => server.calls.filter((c) => c.method === 'POST').length;

it('tries again when the user it created is not listed yet, and links it without creating it twice', async () => {
  await addUser('gil@acme.test', 'Gil');
  const first = await drain(orm.em.fork(), await service.connection(), client());
  // Not a refusal: no admin is told, and Gil waits to be tried again.
  expect(first).toMatchObject({ synced: 0, failed: [] });
  expect(await syncState('gil@acme.test')).toEqual({
    state: 'pending',
    remoteId: null,
    lastError:
      "POST /Users answered without the new user's id, and GET /Users does not list gil@acme.test yet",
  });
  expect(first.wakeAt).toBeDefined();

  await new Promise((r) => setTimeout(r, Math.max(0, first.wakeAt!.getTime() - Date.now()) + 50));
  expect(await drain(orm.em.fork(), await service.connection(), client())).toMatchObject({
    synced: 1,
    failed: [],
  });
  expect(await syncState('gil@acme.test')).toEqual({
    state: 'synced',
    remoteId: server.byUserName('gil@acme.test')!.id,
    lastError: null,
  });
  expect(posts()).toBe(1);
  expect(server.users.size).toBe(1);
});

it('Sync now waits and looks the user up again rather than creating it twice', async () => {
  await addUser('hal@acme.test', 'Hal');
  server.calls.length = 0;
  const report = await reconcile(orm.em.fork(), await service.connection(), client());
  expect(report.failed).toEqual({ count: 0, names: [], errors: [] });
  expect(report.linked).toEqual({ count: 1, names: ['Hal'] });
  expect(posts()).toBe(1);
  expect(server.users.size).toBe(2);
  expect(await syncState('hal@acme.test')).toEqual({
    state: 'synced',
    remoteId: server.byUserName('hal@acme.test')!.id,
    lastError: null,
  });
});
