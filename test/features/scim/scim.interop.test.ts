import type { ORM } from '../../../src/db/orm.ts';
import { query, sql } from '../../../src/db/sql.ts';
import { ScimClient } from '../../../src/features/scim/scim.client.ts';
import { reconcile } from '../../../src/features/scim/scim.reconcile.ts';
import { drain } from '../../../src/features/scim/scim.sync.ts';
import type { ScimServer } from '../../support/scim-server.ts';
import { connectedService } from './service.ts';

// A service with two habits met in products provisioned by Okta and Entra ID: it answers a userName filter
// that matches nobody with 404 instead of an empty list, and it does not take PATCH (optional in RFC 7644,
// which has it answer 501), only PUT, as Okta's own integrations send updates.
let orm: ORM;
let server: ScimServer;
let accountId: string;
let service: Awaited<ReturnType<typeof connectedService>>;

beforeAll(async () => {
  service = await connectedService('T_SCIM_INTEROP', { notFoundWhenNoMatch: true, noPatch: true });
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
    // Linking Bo sent his details: the PATCH was refused, then the PUT taken.
    expect(
      server.calls.filter((c) => c.method === 'PATCH' || c.method === 'PUT').map((c) => [c.method, c.status]),
    ).toEqual([
      ['PATCH', 501],
      ['PUT', 200],
    ]);
  });
});

describe('a service that does not take PATCH', () => {
  it('gets each change as the whole user by PUT, in every run after a PATCH was refused', async () => {
    await query(
      orm.em.fork(),
      sql`insert into app_user (id, account_id, email, first_name, last_name, title, role, status) values
        (gen_random_uuid(), ${accountId}, 'cy@acme.test', 'Cy', 'Ng', 'Designer', 'client', 'invited'),
        (gen_random_uuid(), ${accountId}, 'di@acme.test', 'Di', 'Ho', null, 'client', 'invited')`,
    );
    expect((await push()).synced).toBe(2);
    const cyId = server.byUserName('cy@acme.test')!.id;

    server.calls.length = 0;
    await query(
      orm.em.fork(),
      sql`update app_user set status = 'active', last_name = null, title = null where email = 'cy@acme.test'`,
    );
    await query(orm.em.fork(), sql`update app_user set title = 'Lead' where email = 'di@acme.test'`);
    const result = await push();
    expect(result).toMatchObject({ synced: 2, failed: [] });
    const cy = server.byUserName('cy@acme.test')!;
    expect(cy.id).toBe(cyId);
    expect(cy).toMatchObject({ active: true, name: { givenName: 'Cy' }, displayName: 'Cy' });
    expect(cy.name.familyName).toBeUndefined();
    expect(cy.title).toBeUndefined();
    expect(server.byUserName('di@acme.test')).toMatchObject({ active: false, title: 'Lead' });
    // The connection keeps the refusal the run before met (linking Bo): this run, a new client, sends no PATCH.
    const writes = server.calls.filter((c) => c.method === 'PATCH' || c.method === 'PUT');
    expect(writes.map((c) => [c.method, c.status])).toEqual([
      ['PUT', 200],
      ['PUT', 200],
    ]);
    server.calls.length = 0;
    await query(orm.em.fork(), sql`update app_user set title = 'Lead designer' where email = 'di@acme.test'`);
    const learnt = client();
    await drain(orm.em.fork(), await service.connection(), learnt);
    await query(
      orm.em.fork(),
      sql`update app_user set title = 'Head of design' where email = 'di@acme.test'`,
    );
    await drain(orm.em.fork(), await service.connection(), learnt);
    expect(
      server.calls.filter((c) => c.method === 'PATCH' || c.method === 'PUT').map((c) => c.method),
    ).toEqual(['PUT', 'PUT']);
    expect(server.byUserName('di@acme.test')!.title).toBe('Head of design');
    expect(server.users.size).toBe(4);

    // Sync now puts right what was changed behind Roster's back, the same way.
    server.byUserName('cy@acme.test')!.active = false;
    const report = await reconcile(orm.em.fork(), await service.connection(), client());
    expect(report.reactivated).toEqual({ count: 1, names: ['Cy'] });
    expect(server.byUserName('cy@acme.test')!.active).toBe(true);
    expect((await states()).slice(2)).toEqual([
      { email: 'cy@acme.test', state: 'synced', last_error: null },
      { email: 'di@acme.test', state: 'synced', last_error: null },
    ]);
  });
  it('deactivates a person whose new title it refuses by a PUT of what it holds, switched off', async () => {
    await query(
      orm.em.fork(),
      sql`insert into app_user (id, account_id, email, first_name, title, role, status)
        values (gen_random_uuid(), ${accountId}, 'gil@acme.test', 'Gil', 'Clerk', 'client', 'active')`,
    );
    await push();
    expect(server.byUserName('gil@acme.test')).toMatchObject({ active: true, title: 'Clerk' });
    server.rejectWhen((u) => (u.title === 'Emperor' ? 'title "Emperor" is not allowed here' : undefined));
    try {
      await query(
        orm.em.fork(),
        sql`update app_user set title = 'Emperor', status = 'deactivated', deactivated_at = now()
          where email = 'gil@acme.test'`,
      );
      server.calls.length = 0;
      const run = await push();
      expect(run.failed).toEqual([
        { name: 'Gil', error: expect.stringContaining('"Emperor" is not allowed') },
      ]);
      expect(server.byUserName('gil@acme.test')).toMatchObject({ active: false, title: 'Clerk' });
      expect(server.calls.filter((c) => c.method === 'PUT').map((c) => c.status)).toEqual([400, 200]);
    } finally {
      server.rejectWhen(undefined);
    }
  });
});
