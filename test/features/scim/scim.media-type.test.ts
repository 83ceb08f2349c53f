import type { ORM } from '../../../src/db/orm.ts';
import { query, sql } from '../../../src/db/sql.ts';
import { ScimClient } from '../../../src/features/scim/scim.client.ts';
import { reconcile } from '../../../src/features/scim/scim.reconcile.ts';
import { drain } from '../../../src/features/scim/scim.sync.ts';
import type { ScimServer } from '../../support/scim-server.ts';
import { connectedService } from './service.ts';

// A service built on a general JSON framework: it reads request bodies sent as application/json only and
// refuses SCIM's own application/scim+json (RFC 7644 8.1) with 415.
let orm: ORM;
let server: ScimServer;
let accountId: string;
let service: Awaited<ReturnType<typeof connectedService>>;

beforeAll(async () => {
  service = await connectedService('T_SCIM_MEDIA_TYPE', { plainJsonOnly: true });
  ({ orm, server, accountId } = service);
});
afterAll(() => service.close());

// A client per run, as each sync job has its own.
const client = () => new ScimClient(server.url, server.token, { allowPrivate: true });

it('gets bodies as application/json once it refused application/scim+json, and nobody is failed', async () => {
  await query(
    orm.em.fork(),
    sql`insert into app_user (id, account_id, email, first_name, role, status) values
      (gen_random_uuid(), ${accountId}, 'ed@acme.test', 'Ed', 'client', 'invited'),
      (gen_random_uuid(), ${accountId}, 'flo@acme.test', 'Flo', 'client', 'invited')`,
  );
  expect(await drain(orm.em.fork(), await service.connection(), client())).toMatchObject({
    synced: 2,
    failed: [],
  });
  expect(server.byUserName('ed@acme.test')).toMatchObject({ active: false, name: { givenName: 'Ed' } });
  expect(server.byUserName('flo@acme.test')).toMatchObject({ active: false, name: { givenName: 'Flo' } });
  const posts = server.calls.filter((c) => c.method === 'POST').map((c) => c.status);
  expect(posts.filter((s) => s === 201)).toHaveLength(2);
  expect(posts.filter((s) => s !== 201 && s !== 415)).toEqual([]);

  // Updates too, by the regular sync and by Sync now.
  server.calls.length = 0;
  await query(orm.em.fork(), sql`update app_user set status = 'active' where email = 'ed@acme.test'`);
  expect(await drain(orm.em.fork(), await service.connection(), client())).toMatchObject({
    synced: 1,
    failed: [],
  });
  expect(server.byUserName('ed@acme.test')!.active).toBe(true);
  expect(server.calls.filter((c) => c.method === 'PATCH').map((c) => c.status)).toEqual([415, 200]);
  server.byUserName('flo@acme.test')!.name = { givenName: 'Florence' };
  const report = await reconcile(orm.em.fork(), await service.connection(), client());
  expect(report.updated).toEqual({ count: 1, names: ['Flo'] });
  expect(report.failed.count).toBe(0);
  expect(server.byUserName('flo@acme.test')!.name.givenName).toBe('Flo');
});
