import type { ORM } from '../../../src/db/orm.ts';
import { query, sql } from '../../../src/db/sql.ts';
import { type ScimClient, ScimError } from '../../../src/features/scim/scim.client.ts';
import {
  changeKinds,
  desiredShape,
  patchOperations,
  readActive,
  type SyncedUser,
} from '../../../src/features/scim/scim.mapping.ts';
import { LIST_PAGE, reconcile } from '../../../src/features/scim/scim.reconcile.ts';
import type { ScimServer } from '../../support/scim-server.ts';
import { connectedService } from './service.ts';

// A service with habits of its own that Roster must still read right: `active` as the strings "True" and
// "False" (as some Microsoft services answer), lists without totalResults, and errors as SCIM 1.1 wrote them.
let orm: ORM;
let server: ScimServer;
let accountId: string;
let client: ScimClient;
let service: Awaited<ReturnType<typeof connectedService>>;

beforeAll(async () => {
  service = await connectedService('T_SCIM_COMPAT', {
    stringBooleans: true,
    omitTotalResults: true,
    scim1Errors: true,
  });
  ({ orm, server, accountId, client } = service);
});
afterAll(() => service.close());

const person: SyncedUser = {
  id: '00000000-0000-0000-0000-000000000001',
  email: 'dee@acme.test',
  firstName: 'Dee',
  lastName: null,
  title: null,
  phone: null,
  role: 'client',
  status: 'deactivated',
  loginMissing: false,
};

const connection = () => service.connection();
const sync = async () => reconcile(orm.em.fork(), await connection(), client);

describe('a service that answers active as a string', () => {
  it('reads "False" as inactive and "True" as active', async () => {
    await query(
      orm.em.fork(),
      sql`insert into app_user (id, account_id, email, first_name, role, status) values
        (gen_random_uuid(), ${accountId}, 'ana@acme.test', 'Ana', 'client', 'active'),
        (gen_random_uuid(), ${accountId}, 'bo@acme.test', 'Bo', 'client', 'deactivated'),
        (gen_random_uuid(), ${accountId}, 'cy@acme.test', 'Cy', 'client', 'active')`,
    );
    expect((await sync()).created.count).toBe(3);
    expect((await client.get(server.byUserName('ana@acme.test')!.id)).active).toBe('True');

    // Turned off and on in the service behind Roster's back.
    server.byUserName('ana@acme.test')!.active = false;
    server.byUserName('bo@acme.test')!.active = true;
    const report = await sync();
    expect(report.reactivated).toEqual({ count: 1, names: ['Ana'] });
    expect(report.deactivated).toEqual({ count: 1, names: ['Bo'] });
    expect(report.unchanged).toBe(1);
    expect(server.byUserName('ana@acme.test')!.active).toBe(true);
    expect(server.byUserName('bo@acme.test')!.active).toBe(false);

    const again = await sync();
    expect(again.unchanged).toBe(3);
    expect(again.reactivated.count + again.deactivated.count + again.updated.count).toBe(0);
  });

  it('reads string booleans in any case, and nothing else as active', () => {
    expect(['False', 'false', 'FALSE', ' false '].map(readActive)).toEqual([false, false, false, false]);
    expect(['True', 'true', 'TRUE', true].map(readActive)).toEqual([true, true, true, true]);
    expect(readActive(false)).toBe(false);
    // Left out: a service that does not keep it.
    expect(readActive(undefined)).toBe(true);
    expect(['yes', '0', 1, '', {}].map(readActive)).toEqual([null, null, null, null, null]);
    // A value it cannot read is written over with Roster's, whichever way.
    const held = { ...desiredShape(person), active: readActive('enabled') };
    expect(patchOperations(held, desiredShape(person))).toEqual([
      { op: 'replace', path: 'active', value: false },
    ]);
    expect(changeKinds(held, desiredShape(person))).toEqual(['deactivated']);
    const active = { ...person, status: 'active' as const };
    expect(patchOperations(held, desiredShape(active))).toEqual([
      { op: 'replace', path: 'active', value: true },
    ]);
    expect(changeKinds(held, desiredShape(active))).toEqual(['reactivated']);
  });
});

describe('a service whose lists leave out totalResults', () => {
  it('reads every page, so a user on a later page is linked, not created again', async () => {
    server.reset();
    for (let i = 0; i < LIST_PAGE; i++) server.add({ userName: `own${i}@acme.test`, active: true });
    // Already in the service, on the second page.
    const ana = server.add({ userName: 'ana@acme.test', active: true });
    const report = await sync();
    expect(report.remoteUsers).toBe(LIST_PAGE + 1);
    expect(report.linked.names).toContain('Ana');
    expect(report.unknown.count).toBe(LIST_PAGE);
    expect(
      server.calls.filter((c) => c.method === 'POST' && c.path === '/Users').map((c) => c.status),
    ).toEqual([201, 201]);
    expect(server.byUserName('ana@acme.test')!.id).toBe(ana.id);
    const pages = server.calls.filter(
      (c) => c.method === 'GET' && c.path === '/Users' && /startIndex/.test(c.query),
    );
    // Without totalResults only an empty page says the list is over: one page more than the users.
    expect(pages.map((c) => new URLSearchParams(c.query).get('startIndex'))).toEqual([
      '1',
      String(LIST_PAGE + 1),
      String(LIST_PAGE + 2),
    ]);
  });

  it('reads every page of a service that answers fewer users a page than asked', async () => {
    server.reset();
    server.capPages(100);
    for (let i = 0; i < 100; i++) server.add({ userName: `capped${i}@acme.test`, active: true });
    // Already in the service, on its second page of 100.
    const ana = server.add({ userName: 'ana@acme.test', active: true });
    const report = await sync();
    expect(report.remoteUsers).toBe(101);
    expect(report.linked.names).toContain('Ana');
    expect(server.byUserName('ana@acme.test')!.id).toBe(ana.id);
    expect(
      server.calls.filter((c) => c.method === 'POST' && c.path === '/Users').map((c) => c.status),
    ).toEqual([201, 201]);
  });
});

describe('a service that answers errors as SCIM 1.1 did', () => {
  it("shows the service's description of what it refused, never the token", async () => {
    server.reset();
    server.rejectWhen((u) =>
      u.userName === 'eve@acme.test'
        ? `title may not contain a semicolon (sent with Bearer ${server.token})`
        : undefined,
    );
    const err = await client.create({ userName: 'eve@acme.test', title: 'a;b' }).catch((e) => e);
    expect(err).toBeInstanceOf(ScimError);
    expect(err.kind).toBe('rejected');
    expect(err.message).toBe(
      'POST /Users answered 400: title may not contain a semicolon (sent with Bearer [token])',
    );
    expect(JSON.stringify({ message: err.message, stack: err.stack })).not.toContain(server.token);
  });
});
