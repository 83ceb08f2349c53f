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
