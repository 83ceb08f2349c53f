import type { ORM } from '../../../src/db/orm.ts';
import { query, sql } from '../../../src/db/sql.ts';
import { ScimClient } from '../../../src/features/scim/scim.client.ts';
import { reconcile } from '../../../src/features/scim/scim.reconcile.ts';
import { drain } from '../../../src/features/scim/scim.sync.ts';
import type { ScimServer } from '../../support/scim-server.ts';
import { connectedService } from './service.ts';

// A strict service whose User schema has no `roles`: it refuses a user that has them with 400.
let orm: ORM;
let server: ScimServer;
let accountId: string;
let service: Awaited<ReturnType<typeof connectedService>>;

beforeAll(async () => {
  service = await connectedService('T_SCIM_NO_ROLES', { noRoles: true });
  ({ orm, server, accountId } = service);
  // Room for an employee (a paid seat).
  await query(orm.em.fork(), sql`update account set seat_limit = 5 where id = ${accountId}`);
});
afterAll(() => service.close());

// A client per run, as each sync job has its own.
const client = () => new ScimClient(server.url, server.token, { allowPrivate: true });
const push = async () => drain(orm.em.fork(), await service.connection(), client());
const writes = () => {
  const seen = server.calls.filter((c) => c.method !== 'GET').map((c) => `${c.method} ${c.status}`);
  server.calls.length = 0;
  return seen;
};
const rolesRefusedAt = async () =>
  (
    await query<{ at: Date | null }>(
      orm.em.fork(),
      sql`select roles_refused_at as at from scim_connection where account_id = ${accountId}`,
    )
  )[0]!.at;
const states = () =>
  query<{ email: string; state: string; last_error: string | null }>(
    orm.em.fork(),
    sql`select u.email, s.state, s.last_error from scim_sync s join app_user u on u.id = s.user_id
      where s.account_id = ${accountId} order by u.email`,
  );
const addUser = (email: string, name: string) =>
  query(
    orm.em.fork(),
    sql`insert into app_user (id, account_id, email, first_name, role, status)
      values (gen_random_uuid(), ${accountId}, ${email}, ${name}, 'client', 'invited')`,
  );

it('sends users without roles once the service refused them, and remembers it for the connection', async () => {
  await addUser('ana@acme.test', 'Ana');
  expect(await push()).toMatchObject({ synced: 1, failed: [] });
  expect(writes()).toEqual(['POST 400', 'POST 201']);
  expect(server.byUserName('ana@acme.test')).toMatchObject({ name: { givenName: 'Ana' }, active: false });
  expect(server.byUserName('ana@acme.test')!.roles).toBeUndefined();
  expect(await rolesRefusedAt()).not.toBeNull();

  // The next run, with a client of its own, sends no roles at all; a change of role alone sends nothing.
  await addUser('bo@acme.test', 'Bo');
  await query(orm.em.fork(), sql`update app_user set role = 'employee' where email = 'ana@acme.test'`);
  expect(await push()).toMatchObject({ synced: 2, failed: [] });
  expect(writes()).toEqual(['POST 201']);
  await query(orm.em.fork(), sql`update app_user set title = 'Lead' where email = 'ana@acme.test'`);
  expect(await push()).toMatchObject({ synced: 1, failed: [] });
  expect(writes()).toEqual(['PATCH 200']);
  expect(server.byUserName('ana@acme.test')!.title).toBe('Lead');

  // Sync now finds nothing to do: the missing roles are not a difference.
  const report = await reconcile(orm.em.fork(), await service.connection(), client());
  expect(report).toMatchObject({ unchanged: 2, updated: { count: 0 }, failed: { count: 0 } });
  expect(writes()).toEqual([]);
  expect(await states()).toEqual([
    { email: 'ana@acme.test', state: 'synced', last_error: null },
    { email: 'bo@acme.test', state: 'synced', last_error: null },
  ]);
});

it('tries roles again a day after, and still refuses a person for anything else', async () => {
  await query(
    orm.em.fork(),
    sql`update scim_connection set roles_refused_at = now() - interval '25 hours' where account_id = ${accountId}`,
  );
  await query(orm.em.fork(), sql`update app_user set title = 'Head' where email = 'ana@acme.test'`);
  expect(await push()).toMatchObject({ synced: 1, failed: [] });
  // The PATCH with `replace roles` is refused (invalidPath), the same change without it is taken.
  expect(writes()).toEqual(['PATCH 400', 'PATCH 200']);
  expect(server.byUserName('ana@acme.test')!.title).toBe('Head');
  expect(Date.now() - new Date((await rolesRefusedAt())!).getTime()).toBeLessThan(60_000);

  server.rejectWhen((u) => (u.userName === 'cy@acme.test' ? 'displayName is reserved' : undefined));
  await addUser('cy@acme.test', 'Cy');
  const result = await push();
  expect(result.failed).toEqual([{ name: 'Cy', error: 'POST /Users answered 400: displayName is reserved' }]);
  expect(writes()).toEqual(['POST 400']);
});

it('sends their roles to the people sent without them once the service takes roles again', async () => {
  // The product added roles to its schema meanwhile.
  server.rejectWhen(undefined);
  server.refuseRoles(false);
  await query(
    orm.em.fork(),
    sql`update scim_connection set roles_refused_at = now() - interval '25 hours' where account_id = ${accountId}`,
  );
  await query(orm.em.fork(), sql`update app_user set title = 'Boss' where email = 'ana@acme.test'`);
  writes();
  // Ana's change carries her role and is taken; Bo, unchanged, is sent his role too.
  expect(await push()).toMatchObject({ synced: 2, failed: [] });
  expect(writes()).toEqual(['PATCH 200', 'PATCH 200']);
  expect(await rolesRefusedAt()).toBeNull();
  expect(server.byUserName('ana@acme.test')!.roles).toEqual([{ value: 'employee', primary: true }]);
  expect(server.byUserName('bo@acme.test')!.roles).toEqual([{ value: 'client', primary: true }]);
  expect(await states()).toEqual([
    { email: 'ana@acme.test', state: 'synced', last_error: null },
    { email: 'bo@acme.test', state: 'synced', last_error: null },
    {
      email: 'cy@acme.test',
      state: 'failed',
      last_error: 'POST /Users answered 400: displayName is reserved',
    },
  ]);
  // Nothing is left to send: Sync now finds everyone as Roster holds them, roles included.
  const report = await reconcile(orm.em.fork(), await service.connection(), client());
  expect(report).toMatchObject({ unchanged: 2, updated: { count: 0 } });
});
