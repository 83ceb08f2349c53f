import { Writable } from 'node:stream';
import { Ajv2020 } from 'ajv/dist/2020.js';
import pg from 'pg';
import { query, sql } from '../../../src/db/sql.ts';
import { Account, type IAccount, PermissionSet } from '../../../src/features/accounts/account.entity.ts';
import { ensureAccount } from '../../../src/features/accounts/account.service.ts';
import { encodeCursor } from '../../../src/features/api/api.params.ts';
import { resetPositionsFromElsewhere } from '../../../src/features/api/api.positions.ts';
import { cursorSigningKey } from '../../../src/features/api/web/routes.ts';
import { audit } from '../../../src/features/audit/audit.service.ts';
import { Contact } from '../../../src/features/contacts/contact.entity.ts';
import { type Role, User, type UserStatus } from '../../../src/features/people/user.entity.ts';
import { createLogger } from '../../../src/shared/logger.ts';
import { SIGNING_SECRET, startTestApp, type TestApp } from '../../support/app.ts';
import { createTestDatabase } from '../../support/database.ts';
import { ApiClient, allPages, settled, tokenFor } from './support.ts';

const RATE_LIMIT = 150;
let t: TestApp;
let api: ApiClient;
let account: IAccount;
let other: IAccount;
let token: string;
let otherToken: string;
const logLines: string[] = [];

beforeAll(async () => {
  const sink = new Writable({
    write(chunk, _enc, done) {
      logLines.push(String(chunk));
      if (process.env.API_TEST_LOG) process.stderr.write(String(chunk));
      done();
    },
  });
  t = await startTestApp({
    seatLimit: 1000,
    env: { API_RATE_LIMIT: String(RATE_LIMIT) },
    logger: createLogger('debug', sink),
  });
  api = new ApiClient(t);
  account = await t.account();
  other = await newAccount('T0OTHER');
  token = await tokenFor(t, account, 'Reader');
  otherToken = await tokenFor(t, other, 'Other reader');
});
afterAll(() => t.stop());

/** Another workspace's account, with seats to spare. */
async function newAccount(teamId: string): Promise<IAccount> {
  const created = await ensureAccount(t.em(), teamId, `${teamId} Co`);
  await query(t.em(), sql`update account set seat_limit = 1000 where id = ${created.id}`);
  return created;
}

async function addPerson(
  owner: IAccount,
  email: string,
  role: Role = 'employee',
  status: UserStatus = 'active',
  extra: Partial<{ firstName: string; loginMissing: boolean; permissionSet: string }> = {},
): Promise<string> {
  const em = t.em();
  const permissionSet = extra.permissionSet
    ? await em.findOneOrFail(PermissionSet, { account: owner.id, name: extra.permissionSet })
    : null;
  const user = em.create(User, {
    account: em.getReference(Account, owner.id),
    email,
    role,
    status,
    firstName: extra.firstName ?? null,
    loginMissing: extra.loginMissing ?? false,
    permissionSet,
  });
  await em.flush();
  return user.id;
}

async function addContact(owner: IAccount, name: string, email: string | null = null): Promise<string> {
  const em = t.em();
  const contact = em.create(Contact, { account: em.getReference(Account, owner.id), name, email });
  await em.flush();
  return contact.id;
}

const rename = (id: string, firstName: string) =>
  query(t.em(), sql`update app_user set first_name = ${firstName} where id = ${id}`);

/** The ids, in order, of every row listed since `cursor` (or from the start), once the writes have settled. */
async function idsAfter(path: string, cursor?: string, tok = token): Promise<string[]> {
  const { rows } = await allPages(api, path, tok, cursor ? { cursor } : {});
  return rows.map((r) => r.id);
}

describe('the OpenAPI document', () => {
  it('is OpenAPI 3.1 with JSON Schema 2020-12 schemas, served without a token', async () => {
    const res = await fetch(`${t.url}/api/v1/openapi.json`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/json');
    const doc: any = await res.json();
    expect(doc.openapi).toBe('3.1.0');
    expect(doc.jsonSchemaDialect).toBe('https://json-schema.org/draft/2020-12/schema');
    expect(Object.keys(doc.paths)).toEqual(
      expect.arrayContaining([
        '/api/v1/people',
        '/api/v1/people/{id}',
        '/api/v1/contacts',
        '/api/v1/audit-events',
      ]),
    );
    // Each schema is a valid JSON Schema 2020-12 (ajv checks it against the draft's meta-schema).
    const ajv = new Ajv2020({ strict: true, allErrors: true });
    for (const name of [
      'Person',
      'Contact',
      'AuditEvent',
      'PersonPage',
      'ContactPage',
      'AuditEventPage',
      'Problem',
    ]) {
      const schema = doc.components.schemas[name];
      expect(schema.$id).toBeUndefined();
      expect(ajv.validateSchema(schema)).toBe(true);
    }
    // Every operation answers errors as problem+json, and lists the statuses it can answer.
    for (const [path, item] of Object.entries<any>(doc.paths)) {
      for (const [status, response] of Object.entries<any>(item.get.responses)) {
        if (Number(status) >= 400)
          expect(Object.keys(response.content)).toEqual(['application/problem+json']);
      }
      if (path !== '/api/v1/openapi.json') expect(item.get.responses['401']).toBeDefined();
    }
  });
});

describe('people', () => {
  it('lists the account’s people with consistent snake_case fields', async () => {
    const id = await addPerson(account, 'ann@acme.test', 'employee', 'active', {
      firstName: 'Ann',
      permissionSet: 'Admin',
    });
    const missing = await addPerson(account, 'x1@login.invalid', 'client', 'locked', { loginMissing: true });
    await settled(t);
    const res = await api.get('/api/v1/people', { token });
    const ann = res.body.data.find((p: any) => p.id === id);
    expect(ann).toMatchObject({
      id,
      email: 'ann@acme.test',
      first_name: 'Ann',
      role: 'employee',
      status: 'active',
      permission_set: 'Admin',
      login_missing: false,
    });
    expect(new Date(ann.updated_at).getTime()).toBeGreaterThan(0);
    // A placeholder login address is not an address: the product must not mail it.
    expect(res.body.data.find((p: any) => p.id === missing)).toMatchObject({
      email: null,
      login_missing: true,
    });
  });

  it('filters by status, role and updated_since, alone and together', async () => {
    const a = await addPerson(account, 'f-contractor@acme.test', 'contractor', 'invited');
    const b = await addPerson(account, 'f-client@acme.test', 'client', 'deactivated');
    await settled(t);

    const byStatus = await api.get('/api/v1/people', { token, query: { status: 'invited,deactivated' } });
    expect(byStatus.body.data.map((p: any) => p.id).sort()).toEqual([a, b].sort());
    const byRole = await api.get('/api/v1/people', {
      token,
      query: { role: 'client', status: 'deactivated' },
    });
    expect(byRole.body.data.map((p: any) => p.id)).toEqual([b]);

    const [row] = await query<{ now: string }>(
      t.em(),
      sql`select to_char(now() at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') as now`,
    );
    await rename(a, 'Changed');
    await settled(t);
    const since = await api.get('/api/v1/people', { token, query: { updated_since: row!.now } });
    expect(since.body.data.map((p: any) => p.id)).toEqual([a]);
    expect(since.body.data[0].first_name).toBe('Changed');
  });

  it('answers one person by id, and 404 for an unknown id, another account’s id or a malformed one', async () => {
    const mine = await addPerson(account, 'one@acme.test');
    const theirs = await addPerson(other, 'theirs@other.test');
    const ok = await api.get(`/api/v1/people/${mine}`, { token });
    expect(ok.status).toBe(200);
    expect(ok.body).toMatchObject({ id: mine, email: 'one@acme.test' });
    const notFound = [theirs, '00000000-0000-4000-8000-000000000000', 'not-a-uuid'];
    const answers = await Promise.all(notFound.map((id) => api.get(`/api/v1/people/${id}`, { token })));
    for (const res of answers) {
      expect(res.status).toBe(404);
      expect(res.headers.get('content-type')).toBe('application/problem+json');
      expect(res.body.detail).toMatch(/does not exist in this account/);
    }
    // The other account's token reads its own person.
    expect((await api.get(`/api/v1/people/${theirs}`, { token: otherToken })).status).toBe(200);
  });
});

describe('paging while rows change', () => {
  it('never skips a row and hands changed rows out again, later, with their new values', async () => {
    const acct = await newAccount('T0PAGING');
    const tok = await tokenFor(t, acct, 'Pager');
    const ids: string[] = [];
    for (let i = 0; i < 25; i++)
      ids.push(await addPerson(acct, `p${String(i).padStart(2, '0')}@paging.test`));
    await settled(t);

    let added = '';
    const seenFirstPage: string[] = [];
    const { rows, pages } = await allPages(api, '/api/v1/people', tok, { limit: '10' }, async (page) => {
      if (page !== 1) return;
      // After page 1: change a row already handed out and one not yet reached, and add a row.
      const [seen] = (await api.get('/api/v1/people', { token: tok, query: { limit: '10' } })).body.data;
      seenFirstPage.push(seen.id);
      await rename(seen.id, 'Seen-then-changed');
      await rename(ids[20]!, 'Ahead-and-changed');
      added = await addPerson(acct, 'late@paging.test');
      // The writes are committed; wait until nothing older is still open anywhere, so they show.
      await settled(t);
    });
    expect(pages).toBeGreaterThanOrEqual(3);
    const listed = rows.map((r) => r.id);
    // Every row, including the one added while paging, is listed at least once.
    expect(new Set(listed)).toEqual(new Set([...ids, added]));
    // The row changed after it was handed out comes again, last with its new values; the one changed
    // before it was reached comes once, already changed.
    const seen = seenFirstPage[0]!;
    expect(listed.filter((id) => id === seen)).toHaveLength(2);
    expect(rows.filter((r) => r.id === seen).at(-1).first_name).toBe('Seen-then-changed');
    expect(listed.filter((id) => id === ids[20])).toHaveLength(1);
    expect(rows.find((r) => r.id === ids[20]).first_name).toBe('Ahead-and-changed');
    expect(listed.length).toBe(27);
  });

  it('holds back a change while an older transaction is open, so a later commit is never skipped', async () => {
    const acct = await newAccount('T0LAG');
    const tok = await tokenFor(t, acct, 'Lag reader');
    const slow = await addPerson(acct, 'slow@lag.test');
    const fast = await addPerson(acct, 'fast@lag.test');
    await settled(t);
    const start = await allPages(api, '/api/v1/people', tok, {});
    expect(start.rows.map((r) => r.id).sort()).toEqual([slow, fast].sort());

    // A transaction that writes first and commits last, as a long import does.
    const client = new pg.Client({ connectionString: t.db.url });
    await client.connect();
    try {
      await client.query('begin');
      await client.query(`update app_user set title = 'Slow writer' where id = $1`, [slow]);
      await rename(fast, 'Fast writer');
      // The fast change is committed, but ordering it before the open one would let a client skip the slow one.
      const during = await allPages(api, '/api/v1/people', tok, { cursor: start.cursor });
      expect(during.rows).toEqual([]);
      await client.query('commit');
    } finally {
      await client.end();
    }
    await settled(t);
    const after = await allPages(api, '/api/v1/people', tok, { cursor: start.cursor });
    expect(after.rows.map((r) => r.id).sort()).toEqual([slow, fast].sort());
    expect(after.rows.find((r) => r.id === slow).title).toBe('Slow writer');
    // Asked again with the last cursor, nothing new: each change is handed out once it settled.
    expect((await allPages(api, '/api/v1/people', tok, { cursor: after.cursor })).rows).toEqual([]);
  });
});

describe('other databases on the same server', () => {
  it('hold nothing back: a transaction open there does not delay changes here', async () => {
    const acct = await newAccount('T0NEIGHBOUR');
    const tok = await tokenFor(t, acct, 'Neighbour reader');
    const elsewhere = await createTestDatabase();
    const client = new pg.Client({ connectionString: elsewhere.url });
    await client.connect();
    try {
      await client.query('begin');
      await client.query('create table busy (n int)');
      await client.query('insert into busy values (1)');
      // Written here after the other database's transaction began, and committed while it stays open.
      const id = await addPerson(acct, 'neighbour@acme.test');
      // Only this database's own transactions are waited for (pg-boss's, at most milliseconds).
      await settled(t);
      const listed = await allPages(api, '/api/v1/people', tok, {});
      expect(listed.rows.map((r) => r.id)).toEqual([id]);
      await client.query('rollback');
    } finally {
      await client.end();
      await elsewhere.drop();
    }
  });
});

describe('after a restore on another database server', () => {
  it('resets positions the server has not reached, and refuses cursors issued before', async () => {
    const acct = await newAccount('T0RESTORED');
    const tok = await tokenFor(t, acct, 'Restored reader');
    const ids = [await addPerson(acct, 'r1@restored.test'), await addPerson(acct, 'r2@restored.test')];
    await settled(t);
    // As a dump from a busier server brings them: positions far ahead of this server's transactions.
    const [ahead] = await query<{ x: string }>(
      t.em(),
      sql`select ((pg_snapshot_xmax(pg_current_snapshot())::text)::bigint + 1000000000)::text as x`,
    );
    const stamps = sql`select id, updated_at::text as u from app_user where account_id = ${acct.id} order by id`;
    const before = await query(t.em(), stamps);
    await query(
      t.em(),
      sql`update app_user set change_xid = ${ahead!.x}::xid8 where account_id = ${acct.id}`,
    );
    expect((await allPages(api, '/api/v1/people', tok, {})).rows).toEqual([]);
    const oldCursor = encodeCursor(cursorSigningKey(SIGNING_SECRET), 'people', '[]', {
      xid: ahead!.x,
      id: ids[0]!,
    });
    const refused = await api.get('/api/v1/people', { token: tok, query: { cursor: oldCursor } });
    expect(refused.status).toBe(400);
    expect(refused.body.detail).toMatch(/before the database was restored/);

    const lines: string[] = [];
    const sink = new Writable({
      write(chunk, _enc, done) {
        lines.push(String(chunk));
        done();
      },
    });
    expect(await resetPositionsFromElsewhere(t.em(), createLogger('info', sink))).toBe(2);
    expect(lines.join('')).toContain('restored from a dump?');
    await settled(t);
    const listed = await allPages(api, '/api/v1/people', tok, {});
    expect(listed.rows.map((r) => r.id).sort()).toEqual([...ids].sort());
    // The people themselves did not change.
    expect(await query(t.em(), stamps)).toEqual(before);
    expect(await resetPositionsFromElsewhere(t.em(), createLogger('silent'))).toBe(0);
  });
});

describe('updated_at', () => {
  it('moves with every change whatever the SQL, and not for an update that changes nothing', async () => {
    const id = await addPerson(account, 'touch@acme.test');
    const stamp = async () =>
      BigInt(
        (
          await query<{ us: string }>(
            t.em(),
            sql`select (extract(epoch from updated_at) * 1000000)::bigint::text as us from app_user where id = ${id}`,
          )
        )[0]!.us,
      );
    const first = await stamp();
    // Set-based SQL that does not mention updated_at, as a hand-written fix or a bulk statement might.
    await query(t.em(), sql`update app_user set title = 'Lead' where id = ${id}`);
    const second = await stamp();
    expect(second > first).toBe(true);
    await query(t.em(), sql`update app_user set title = 'Lead' where id = ${id}`);
    expect(await stamp()).toBe(second);
  });
});

describe('contacts', () => {
  it('lists contacts with status contact or converted, filtered and paged', async () => {
    const plain = await addContact(account, 'Carla Contact', 'carla@client.test');
    const converted = await addContact(account, 'Conny Converted', 'conny@client.test');
    const person = await addPerson(account, 'conny@client.test', 'client', 'invited');
    await query(t.em(), sql`update contact set user_id = ${person} where id = ${converted}`);
    await addContact(other, 'Not Yours');
    await settled(t);
    const all = await allPages(api, '/api/v1/contacts', token, { limit: '1' });
    expect(all.pages).toBe(2);
    expect(all.rows.find((c) => c.id === converted)).toMatchObject({
      status: 'converted',
      person_id: person,
    });
    expect(all.rows.find((c) => c.id === plain)).toMatchObject({
      status: 'contact',
      person_id: null,
      name: 'Carla Contact',
      email: 'carla@client.test',
    });
    const onlyConverted = await api.get('/api/v1/contacts', { token, query: { status: 'converted' } });
    expect(onlyConverted.body.data.map((c: any) => c.id)).toEqual([converted]);
    const future = await api.get('/api/v1/contacts', { token, query: { updated_since: '2999-01-01' } });
    expect(future.body).toMatchObject({ data: [], has_more: false });
  });
});

describe('audit events', () => {
  it('lists the account’s events after an id or a time, page by page, and never another account’s', async () => {
    const em = t.em();
    const ref = em.getReference(Account, account.id);
    for (let i = 0; i < 5; i++) {
      audit(em, {
        account: ref,
        actor: 'UADMIN',
        action: `test.step${i}`,
        subjectType: 'test',
        surface: 'slack',
      });
    }
    audit(em, {
      account: em.getReference(Account, other.id),
      actor: 'UOTHER',
      action: 'test.other',
      subjectType: 'test',
      surface: 'slack',
    });
    await em.flush();
    await settled(t);
    const all = await allPages(api, '/api/v1/audit-events', token, { limit: '2' });
    expect(all.rows.every((e) => e.action !== 'test.other')).toBe(true);
    const steps = all.rows.filter((e) => e.action.startsWith('test.step'));
    expect(steps.map((e) => e.action)).toEqual([
      'test.step0',
      'test.step1',
      'test.step2',
      'test.step3',
      'test.step4',
    ]);
    const ids = all.rows.map((e) => e.id);
    expect(new Set(ids).size).toBe(ids.length);

    const afterSecond = await allPages(api, '/api/v1/audit-events', token, {
      since: String(steps[1].id),
      limit: '2',
    });
    expect(afterSecond.rows.map((e) => e.action)).toEqual(['test.step2', 'test.step3', 'test.step4']);
    const byTime = await api.get('/api/v1/audit-events', { token, query: { since: steps[0].created_at } });
    expect(byTime.body.data.map((e: any) => e.action)).toEqual(
      expect.arrayContaining(['test.step0', 'test.step4']),
    );

    const theirs = await allPages(api, '/api/v1/audit-events', otherToken, {});
    expect(theirs.rows.map((e) => e.action)).toContain('test.other');
    const foreignId = theirs.rows.find((e) => e.action === 'test.other').id;
    const refused = await api.get('/api/v1/audit-events', { token, query: { since: String(foreignId) } });
    expect(refused.status).toBe(400);
    expect(refused.body.errors).toEqual([
      { parameter: 'since', detail: `This account has no audit event ${foreignId}.` },
    ]);
  });
});

describe('account isolation', () => {
  it('shows a token only its own account’s rows', async () => {
    const theirs = await addPerson(other, 'iso@other.test');
    const mine = await addPerson(account, 'iso@acme.test');
    await settled(t);
    const mineListed = await idsAfter('/api/v1/people');
    const theirsListed = await idsAfter('/api/v1/people', undefined, otherToken);
    expect(mineListed).toContain(mine);
    expect(mineListed).not.toContain(theirs);
    expect(theirsListed).not.toContain(mine);
    const [count] = await query<{ n: number }>(
      t.em(),
      sql`select count(*)::int as n from app_user where account_id = ${other.id}`,
    );
    expect(theirsListed).toHaveLength(count!.n);
  });
});

describe('bad requests', () => {
  const bad = async (path: string, q: Record<string, string>) => {
    const res = await api.get(path, { token, query: q });
    expect(res.status).toBe(400);
    expect(res.headers.get('content-type')).toBe('application/problem+json');
    return res.body;
  };

  it('names each filter that cannot be used, and why', async () => {
    const body = await bad('/api/v1/people', {
      status: 'active,retired',
      role: 'boss',
      updated_since: 'yesterday',
    });
    expect(body.type).toBe('urn:roster:problem:invalid-parameter');
    expect(body.errors.map((e: any) => e.parameter).sort()).toEqual(['role', 'status', 'updated_since']);
    expect(body.errors.find((e: any) => e.parameter === 'status').detail).toContain('“retired”');
    expect(body.errors.find((e: any) => e.parameter === 'updated_since').detail).toContain(
      'ISO 8601 date-time with a time zone',
    );
    expect((await bad('/api/v1/people', { updated_since: '2026-02-30T00:00:00Z' })).errors[0].parameter).toBe(
      'updated_since',
    );
    expect((await bad('/api/v1/people', { updated_since: '2026-11-30T10:00:00' })).errors[0].parameter).toBe(
      'updated_since',
    );
    expect((await bad('/api/v1/contacts', { role: 'client' })).errors[0].detail).toMatch(
      /role is not a parameter of \/api\/v1\/contacts/,
    );
    expect((await bad('/api/v1/audit-events', { since: 'last week' })).errors[0].parameter).toBe('since');
    const repeated = await api.get('/api/v1/people?status=active&status=invited', { token });
    expect(repeated.status).toBe(400);
    expect(repeated.body.errors[0].detail).toMatch(/Give status once/);
  });

  it('refuses a limit outside 1 to 1000', async () => {
    for (const limit of ['0', '1001', 'ten', '-5', '2.5']) {
      const body = await bad('/api/v1/people', { limit });
      expect(body.errors).toEqual([
        {
          parameter: 'limit',
          detail: expect.stringContaining('limit must be a whole number from 1 to 1000'),
        },
      ]);
    }
    expect((await api.get('/api/v1/people', { token, query: { limit: '1000' } })).status).toBe(200);
  });

  it('refuses a cursor Roster did not issue, one of another list, and one with changed filters', async () => {
    const first = await api.get('/api/v1/people', { token, query: { status: 'active', limit: '1' } });
    const cursor: string = first.body.next_cursor;
    const garbage = await bad('/api/v1/people', { cursor: 'bm90IGEgY3Vyc29y' });
    expect(garbage.type).toBe('urn:roster:problem:invalid-cursor');
    expect(garbage.detail).toMatch(/not one Roster issued/);
    // Edited by hand: the position moved back to the start of the list.
    const [body, signature] = cursor.split('.');
    const edited = JSON.parse(Buffer.from(body!, 'base64url').toString());
    edited.x = '0';
    const tampered = `${Buffer.from(JSON.stringify(edited)).toString('base64url')}.${signature}`;
    expect((await bad('/api/v1/people', { cursor: tampered })).detail).toMatch(/not one Roster issued/);
    expect((await bad('/api/v1/contacts', { cursor })).detail).toMatch(/belongs to the people list/);
    expect((await bad('/api/v1/people', { cursor, status: 'invited' })).detail).toMatch(/other filters/);
    // The same filters again, or none, continue the list.
    const same = await api.get('/api/v1/people', { token, query: { cursor, status: 'active', limit: '1' } });
    const bare = await api.get('/api/v1/people', { token, query: { cursor, limit: '1' } });
    expect(same.status).toBe(200);
    expect(bare.body.data).toEqual(same.body.data);
    expect(bare.body.data.every((p: any) => p.status === 'active')).toBe(true);
  });

  it('answers unknown API paths and other methods as problems too', async () => {
    const unknown = await api.get('/api/v1/users', { token });
    expect(unknown.status).toBe(404);
    const post = await api.get('/api/v1/people', { token, method: 'POST' });
    expect(post.status).toBe(405);
    expect(post.headers.get('allow')).toBe('GET, HEAD');
  });
});

describe('tokens', () => {
  it('answers a missing, unknown, malformed or revoked token with one and the same 401', async () => {
    const revoked = await tokenFor(t, account, 'Soon revoked');
    expect((await api.get('/api/v1/people', { token: revoked })).status).toBe(200);
    const [row] = await query<{ id: string }>(
      t.em(),
      sql`select id from api_token where name = 'Soon revoked'`,
    );
    await t.roster.deps.apiTokens.revoke(
      t.em(),
      account,
      { slackUserId: 'UADMIN', isAdmin: true, surface: 'slack' },
      row!.id,
    );
    const answers = await Promise.all([
      api.get('/api/v1/people', {}),
      api.get('/api/v1/people', { token: `roster_${'A'.repeat(43)}` }),
      api.get('/api/v1/people', { token: 'xoxb-not-ours' }),
      api.get('/api/v1/people', { token: revoked }),
      api.get('/api/v1/people', {
        headers: { authorization: `Basic ${Buffer.from(`x:${token}`).toString('base64')}` },
      }),
      api.get(`/api/v1/people/${row!.id}`, { token: revoked }),
    ]);
    for (const res of answers) {
      expect(res.status).toBe(401);
      expect(res.headers.get('www-authenticate')).toBe('Bearer realm="Roster API"');
      expect(res.text).toBe(answers[0]!.text);
    }
  });

  it('limits each token to API_RATE_LIMIT requests a minute, with Retry-After, leaving other tokens alone', async () => {
    const busy = await tokenFor(t, account, 'Busy');
    const statuses: number[] = [];
    for (let i = 0; i < RATE_LIMIT; i++) {
      statuses.push((await api.get('/api/v1/people', { token: busy, query: { limit: '1' } })).status);
    }
    expect(statuses.every((s) => s === 200)).toBe(true);
    const limited = await api.get('/api/v1/people', { token: busy, query: { limit: '1' } });
    expect(limited.status).toBe(429);
    const wait = Number(limited.headers.get('retry-after'));
    expect(wait).toBeGreaterThanOrEqual(1);
    expect(wait).toBeLessThanOrEqual(60);
    expect(limited.body.detail).toContain(`${RATE_LIMIT} requests within a minute`);
    expect((await api.get('/api/v1/people', { token, query: { limit: '1' } })).status).toBe(200);
  });

  it('keeps tokens out of the logs, even when a request fails', async () => {
    const before = logLines.length;
    await api.get('/api/v1/people', { token, query: { limit: 'nope' } });
    await api.get('/api/v1/people', { token: `${token}x` });
    t.roster.deps.logger.info({ headers: { authorization: `Bearer ${token}` } }, `calling with ${token}`);
    t.roster.deps.logger.error({ err: new Error(`failed for ${otherToken}`) }, 'failed');
    const out = logLines.slice(before).join('');
    expect(out).toContain('roster_[redacted]');
    expect(out).not.toContain(token.slice(7));
    expect(out).not.toContain(otherToken.slice(7));
    expect(logLines.join('')).not.toMatch(/roster_[A-Za-z0-9_-]{20}/);
  });

  it('stores tokens only as SHA-256 hashes, and notes when each was last used', async () => {
    const rows = await query<Record<string, unknown>>(t.em(), sql`select * from api_token`);
    const text = JSON.stringify(rows);
    expect(text).not.toContain(token.slice(7));
    const { createHash } = await import('node:crypto');
    const mine = rows.find((r) => r.token_hash === createHash('sha256').update(token).digest('hex'));
    expect(mine).toMatchObject({ name: 'Reader', hint: token.slice(0, 11) });
    expect(mine!.last_used_at).not.toBeNull();
  });
});

describe('the answers above', () => {
  it('were each checked against the OpenAPI document, every kind of them', () => {
    expect(api.checked).toEqual(
      expect.arrayContaining([
        'GET /api/v1/people 200',
        'GET /api/v1/people 400',
        'GET /api/v1/people 401',
        'GET /api/v1/people 429',
        'GET /api/v1/people/{id} 200',
        'GET /api/v1/people/{id} 404',
        'GET /api/v1/people/{id} 401',
        'GET /api/v1/contacts 200',
        'GET /api/v1/contacts 400',
        'GET /api/v1/audit-events 200',
        'GET /api/v1/audit-events 400',
      ]),
    );
  });
});
