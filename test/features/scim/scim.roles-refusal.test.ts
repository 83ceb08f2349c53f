import type { ORM } from '../../../src/db/orm.ts';
import { query, sql } from '../../../src/db/sql.ts';
import { ScimClient } from '../../../src/features/scim/scim.client.ts';
import { drain } from '../../../src/features/scim/scim.sync.ts';
import type { ScimServer } from '../../support/scim-server.ts';
import { connectedService } from './service.ts';

// A service that takes roles, and refuses one person with words that happen to name them.
let orm: ORM;
let server: ScimServer;
let accountId: string;
let service: Awaited<ReturnType<typeof connectedService>>;

beforeAll(async () => {
  service = await connectedService('T_SCIM_ROLES_REFUSAL');
  ({ orm, server, accountId } = service);
});
afterAll(() => service.close());

it('keeps sending roles when a refusal naming them comes back the same without them', async () => {
  server.rejectWhen((u) =>
    u.userName === 'eve@acme.test' ? 'eve is reserved for roles the product keeps' : undefined,
  );
  await query(
    orm.em.fork(),
    sql`insert into app_user (id, account_id, email, first_name, role, status) values
      (gen_random_uuid(), ${accountId}, 'eve@acme.test', 'Eve', 'client', 'invited')`,
  );
  const client = new ScimClient(server.url, server.token, { allowPrivate: true });
  const result = await drain(orm.em.fork(), await service.connection(), client);
  expect(result.failed).toEqual([
    { name: 'Eve', error: 'POST /Users answered 400: eve is reserved for roles the product keeps' },
  ]);
  // Tried again without roles, refused the same: roles were not the matter.
  expect(server.calls.filter((c) => c.method === 'POST').map((c) => c.status)).toEqual([400, 400]);
  expect(client.rolesSupport).not.toBe('refused');
  expect((await service.connection()).rolesRefusedAt).toBeNull();

  await query(
    orm.em.fork(),
    sql`insert into app_user (id, account_id, email, first_name, role, status) values
      (gen_random_uuid(), ${accountId}, 'fay@acme.test', 'Fay', 'client', 'invited')`,
  );
  expect(await drain(orm.em.fork(), await service.connection(), client)).toMatchObject({ synced: 1 });
  expect(server.byUserName('fay@acme.test')!.roles).toEqual([{ value: 'client', primary: true }]);
});

const rolesRefusedAt = async () => (await service.connection()).rolesRefusedAt;
const addUser = (email: string, name: string, title: string | null = null) =>
  query(
    orm.em.fork(),
    sql`insert into app_user (id, account_id, email, first_name, title, role, status)
      values (gen_random_uuid(), ${accountId}, ${email}, ${name}, ${title}, 'client', 'invited')`,
  );
/** The next run, with a client of its own, still sends roles to a new user. */
const rolesStillSent = async (email: string, name: string) => {
  await addUser(email, name);
  const next = new ScimClient(server.url, server.token, { allowPrivate: true });
  expect(await drain(orm.em.fork(), await service.connection(), next)).toMatchObject({
    synced: 1,
    failed: [],
  });
  expect(server.byUserName(email)!.roles).toEqual([{ value: 'client', primary: true }]);
};

it('keeps sending roles when two people in flight are refused the same with and without them', async () => {
  server.rejectWhen((u) =>
    u.title === 'Chief' ? { scimType: 'invalidPath', detail: 'Path title takes no "Chief"' } : undefined,
  );
  await addUser('gus@acme.test', 'Gus', 'Chief');
  await addUser('hal@acme.test', 'Hal', 'Chief');
  server.calls.length = 0;
  // The lookups of the pushes sent again without roles answer late: both first refusals are in by then.
  server.slow(300, {
    times: 2,
    when: (req) => req.method === 'GET' && server.calls.some((c) => c.method === 'POST'),
  });
  const client = new ScimClient(server.url, server.token, { allowPrivate: true });
  const result = await drain(orm.em.fork(), await service.connection(), client);
  const refusal = 'POST /Users answered 400: Path title takes no "Chief"';
  expect(result.failed).toEqual(
    expect.arrayContaining([
      { name: 'Gus', error: refusal },
      { name: 'Hal', error: refusal },
    ]),
  );
  expect(server.calls.filter((c) => c.method === 'POST').map((c) => c.status)).toEqual([400, 400, 400, 400]);
  expect(client.rolesSupport).not.toBe('refused');
  expect(await rolesRefusedAt()).toBeNull();
  await rolesStillSent('ida@acme.test', 'Ida');
});

it('keeps sending roles when the refusal names a request id that differs each time', async () => {
  let request = 0;
  server.rejectWhen((u) =>
    u.title === 'Lord'
      ? { scimType: 'invalidPath', detail: `Path title takes no "Lord" (request ${++request})` }
      : undefined,
  );
  await addUser('jo@acme.test', 'Jo', 'Lord');
  const client = new ScimClient(server.url, server.token, { allowPrivate: true });
  const result = await drain(orm.em.fork(), await service.connection(), client);
  expect(result.failed).toEqual([
    { name: 'Jo', error: expect.stringContaining('POST /Users answered 400: Path title takes no "Lord"') },
  ]);
  expect(client.rolesSupport).not.toBe('refused');
  expect(await rolesRefusedAt()).toBeNull();
  await rolesStillSent('kit@acme.test', 'Kit');
});
