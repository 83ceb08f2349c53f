import type { ORM } from '../../../src/db/orm.ts';
import { query, sql } from '../../../src/db/sql.ts';
import type { ScimClient } from '../../../src/features/scim/scim.client.ts';
import { reconcile } from '../../../src/features/scim/scim.reconcile.ts';
import { drain } from '../../../src/features/scim/scim.sync.ts';
import type { ScimServer } from '../../support/scim-server.ts';
import { connectedService } from './service.ts';

// A service that follows RFC 7644 3.5.2.3: `replace name` with some sub-attributes leaves the others as
// they were, so a name part cleared in Roster has to be removed by its own path.
let orm: ORM;
let server: ScimServer;
let accountId: string;
let client: ScimClient;
let service: Awaited<ReturnType<typeof connectedService>>;

beforeAll(async () => {
  service = await connectedService('T_SCIM_PATCH', { rfcComplexReplace: true });
  ({ orm, server, accountId, client } = service);
});
afterAll(() => service.close());

const connection = () => service.connection();
const push = async () => drain(orm.em.fork(), await connection(), client);

describe('a name part cleared in Roster', () => {
  it('is removed from the service, by the regular sync and by Sync now', async () => {
    await query(
      orm.em.fork(),
      sql`insert into app_user (id, account_id, email, first_name, last_name, role, status) values
        (gen_random_uuid(), ${accountId}, 'ana@acme.test', 'Ana', 'Lee', 'client', 'active'),
        (gen_random_uuid(), ${accountId}, 'bo@acme.test', 'Bo', 'Ek', 'client', 'active')`,
    );
    expect((await push()).synced).toBe(2);
    expect(server.byUserName('ana@acme.test')!.name).toMatchObject({ givenName: 'Ana', familyName: 'Lee' });

    await query(orm.em.fork(), sql`update app_user set last_name = null where email = 'ana@acme.test'`);
    expect((await push()).synced).toBe(1);
    const ana = server.byUserName('ana@acme.test')!;
    expect(ana.name).toEqual({ givenName: 'Ana', formatted: 'Ana' });
    expect(ana.displayName).toBe('Ana');

    // Sync now finds the service's copy equal to Roster's (nothing left over to patch again and again).
    await query(orm.em.fork(), sql`update app_user set first_name = null where email = 'bo@acme.test'`);
    const report = await reconcile(orm.em.fork(), await connection(), client);
    expect(server.byUserName('bo@acme.test')!.name).toEqual({ familyName: 'Ek', formatted: 'Ek' });
    expect(report.updated.count).toBe(1);
    const again = await reconcile(orm.em.fork(), await connection(), client);
    expect(again.updated.count).toBe(0);
    expect(again.unchanged).toBe(2);
  });
});
