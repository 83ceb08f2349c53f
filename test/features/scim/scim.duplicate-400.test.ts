import type { ORM } from '../../../src/db/orm.ts';
import { query, sql } from '../../../src/db/sql.ts';
import { ScimClient, type ScimError } from '../../../src/features/scim/scim.client.ts';
import { claimUsers } from '../../../src/features/scim/scim.push.ts';
import { pushBatch } from '../../../src/features/scim/scim.sync.ts';
import type { ScimServer } from '../../support/scim-server.ts';
import { connectedService } from './service.ts';

// A service that answers a duplicate userName 400 with scimType "uniqueness" rather than 409, as FusionAuth
// before 1.36, go-scim and WSO2 do.
let orm: ORM;
let server: ScimServer;
let accountId: string;
let service: Awaited<ReturnType<typeof connectedService>>;

beforeAll(async () => {
  service = await connectedService('T_SCIM_DUPLICATE_400', { duplicateAs400: true });
  ({ orm, server, accountId } = service);
});
afterAll(() => service.close());

const client = () => new ScimClient(server.url, server.token, { allowPrivate: true });
const claim = async (email: string) => {
  await query(
    orm.em.fork(),
    sql`insert into app_user (id, account_id, email, first_name, role, status)
      values (gen_random_uuid(), ${accountId}, ${email}, 'Someone', 'client', 'invited')`,
  );
  const [user] = await query<{ id: string }>(
    orm.em.fork(),
    sql`select id from app_user where email = ${email}`,
  );
  return claimUsers(orm.em.fork(), accountId, [user!.id]);
};

it('links the user the service already has when its create is refused as not unique', async () => {
  // Sync now read the service's list before the product's own admins added her.
  const rows = await claim('ana@acme.test');
  const ana = server.add({ userName: 'ana@acme.test', active: false });
  const { outcomes } = await pushBatch(client(), rows, () => null);
  expect(outcomes).toEqual([expect.objectContaining({ result: 'synced', how: 'linked', remoteId: ana.id })]);
  expect(server.users.size).toBe(1);
  // The create was refused 400, not 409.
  expect(server.calls.filter((c) => c.method === 'POST').map((c) => c.status)).toEqual([400]);
});

it('still marks the person refused, with the service’s words, on any other 400', async () => {
  const rows = await claim('bo@acme.test');
  server.fail(400, { when: (req) => req.method === 'POST' });
  const { outcomes } = await pushBatch(client(), rows, () => null);
  expect(outcomes).toEqual([expect.objectContaining({ result: 'failed' })]);
  const error = (outcomes[0] as { error: ScimError }).error;
  expect(error).toMatchObject({ kind: 'rejected', status: 400 });
  expect(error.message).toBe('POST /Users answered 400: fault injected by the test (400)');
  expect(server.byUserName('bo@acme.test')).toBeUndefined();
});
