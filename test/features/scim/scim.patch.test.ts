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

describe('a person to deactivate whose other values the service refuses', () => {
  const add = (email: string, name: string) =>
    query(
      orm.em.fork(),
      sql`insert into app_user (id, account_id, email, first_name, role, status)
        values (gen_random_uuid(), ${accountId}, ${email}, ${name}, 'client', 'active')`,
    );
  const deactivate = (email: string) =>
    query(
      orm.em.fork(),
      sql`update app_user set status = 'deactivated', deactivated_at = now() where email = ${email}`,
    );
  const state = async (email: string) =>
    (
      await query<{ state: string; lastError: string | null }>(
        orm.em.fork(),
        sql`select s.state, s.last_error as "lastError" from scim_sync s join app_user u on u.id = s.user_id
          where u.email = ${email}`,
      )
    )[0];
  afterEach(() => server.rejectWhen(undefined));

  it('is deactivated all the same, and the refused title is still told', async () => {
    await add('eve@acme.test', 'Eve');
    await push();
    expect(server.byUserName('eve@acme.test')).toMatchObject({ active: true });
    server.rejectWhen((u) => (u.title === 'Chief Everything Officer' ? 'title too long here' : undefined));
    await query(
      orm.em.fork(),
      sql`update app_user set title = 'Chief Everything Officer' where email = 'eve@acme.test'`,
    );
    await push();
    expect(await state('eve@acme.test')).toMatchObject({ state: 'failed' });

    await deactivate('eve@acme.test');
    const run = await push();
    expect(server.byUserName('eve@acme.test')).toMatchObject({ active: false });
    expect(server.byUserName('eve@acme.test')?.title).toBeUndefined();
    expect(run.failed).toEqual([{ name: 'Eve', error: expect.stringContaining('title too long here') }]);
    expect(await state('eve@acme.test')).toMatchObject({
      state: 'failed',
      lastError: expect.stringContaining('the deactivation was sent on its own and taken'),
    });

    // Sync now has nothing more to switch off: only the title is still refused.
    const report = await reconcile(orm.em.fork(), await connection(), client);
    expect(report.deactivated.count).toBe(0);
    expect(report.failed.errors).toEqual([expect.stringContaining('title too long here')]);
    expect(server.byUserName('eve@acme.test')).toMatchObject({ active: false });
  });

  it('is deactivated by Sync now when their new email is another user’s in the service', async () => {
    await add('finn@acme.test', 'Finn');
    await push();
    // The product's own admins gave the address to someone Roster does not know.
    server.add({ userName: 'finn.other@acme.test', active: true });
    await query(
      orm.em.fork(),
      sql`update app_user set email = 'finn.other@acme.test', status = 'deactivated', deactivated_at = now()
        where email = 'finn@acme.test'`,
    );
    const report = await reconcile(orm.em.fork(), await connection(), client);
    expect(server.byUserName('finn@acme.test')).toMatchObject({ active: false });
    expect(server.byUserName('finn.other@acme.test')).toMatchObject({ active: true });
    expect(report.deactivated.names).toEqual(['Finn']);
    expect(report.failed.errors).toEqual([expect.stringMatching(/^Finn: .*409/)]);
  });
});
