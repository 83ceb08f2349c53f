import type { ORM } from '../../../src/db/orm.ts';
import { query, sql } from '../../../src/db/sql.ts';
import { ScimClient } from '../../../src/features/scim/scim.client.ts';
import { drain } from '../../../src/features/scim/scim.sync.ts';
import type { ScimServer } from '../../support/scim-server.ts';
import { connectedService } from './service.ts';

// A service with a habit met in products provisioned by Okta and Entra ID: it answers a userName filter
// that matches nobody with 404 instead of an empty list.
let orm: ORM;
let server: ScimServer;
let accountId: string;
let service: Awaited<ReturnType<typeof connectedService>>;

beforeAll(async () => {
  service = await connectedService('T_SCIM_INTEROP', { notFoundWhenNoMatch: true });
  ({ orm, server, accountId } = service);
});
afterAll(() => service.close());

// A client per run, as each sync job has its own.
const client = () => new ScimClient(server.url, server.token, { allowPrivate: true });
const push = async () => drain(orm.em.fork(), await service.connection(), client());
const states = () =>
  query<{ email: string; state: string; last_error: string | null }>(
    orm.em.fork(),
    sql`select u.email, s.state, s.last_error from scim_sync s join app_user u on u.id = s.user_id
      where s.account_id = ${accountId} order by u.email`,
  );

describe('a service that answers 404 to a userName filter that matches nobody', () => {
  it('creates the person, and still links one who is there', async () => {
    server.reset();
    const bo = server.add({ userName: 'bo@acme.test', active: false });
    await query(
      orm.em.fork(),
      sql`insert into app_user (id, account_id, email, first_name, role, status) values
        (gen_random_uuid(), ${accountId}, 'ana@acme.test', 'Ana', 'client', 'invited'),
        (gen_random_uuid(), ${accountId}, 'bo@acme.test', 'Bo', 'client', 'invited')`,
    );
    const result = await push();
    expect(result.failed).toEqual([]);
    expect(await states()).toEqual([
      { email: 'ana@acme.test', state: 'synced', last_error: null },
      { email: 'bo@acme.test', state: 'synced', last_error: null },
    ]);
    expect(server.byUserName('ana@acme.test')).toMatchObject({ active: false, name: { givenName: 'Ana' } });
    expect(server.byUserName('bo@acme.test')!.id).toBe(bo.id);
    expect(server.users.size).toBe(2);
  });
});
