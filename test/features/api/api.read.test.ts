/**
 * The read API over real HTTP on real Postgres: what each list and the person endpoint answer, their
 * filters, and account isolation. Every answer is checked against the served OpenAPI document.
 */
import { Ajv2020 } from 'ajv/dist/2020.js';
import { query, sql } from '../../../src/db/sql.ts';
import { Account, type IAccount } from '../../../src/features/accounts/account.entity.ts';
import { audit } from '../../../src/features/audit/audit.service.ts';
import { eventually, type TestApp } from '../../support/app.ts';
import { type ApiApp, addContact, addPerson, idsOf, rename, startApiApp } from './fixture.ts';
import { type ApiClient, allPages, settled } from './support.ts';

const RATE_LIMIT = 1000;
let a: ApiApp;
let t: TestApp;
let api: ApiClient;
let account: IAccount;
let other: IAccount;
let token: string;
let otherToken: string;

beforeAll(async () => {
  a = await startApiApp(RATE_LIMIT);
  ({ t, api, account, other, token, otherToken } = a);
});
afterAll(() => t.stop());

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
    const id = await addPerson(t, account, 'ann@acme.test', 'employee', 'active', {
      firstName: 'Ann',
      permissionSet: 'Admin',
    });
    const missing = await addPerson(t, account, 'x1@login.invalid', 'client', 'locked', {
      loginMissing: true,
    });
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
    const a = await addPerson(t, account, 'f-contractor@acme.test', 'contractor', 'invited');
    const b = await addPerson(t, account, 'f-client@acme.test', 'client', 'deactivated');
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
    await rename(t, a, 'Changed');
    await settled(t);
    const since = await api.get('/api/v1/people', { token, query: { updated_since: row!.now } });
    expect(since.body.data.map((p: any) => p.id)).toEqual([a]);
    expect(since.body.data[0].first_name).toBe('Changed');
  });

  it('reads a time zone offset whose + was not encoded (and so arrives as a space)', async () => {
    const [row] = await query<{ at: string }>(
      t.em(),
      sql`select to_char(now() at time zone 'UTC' + interval '1 hour', 'YYYY-MM-DD"T"HH24:MI:SS.US"+01:00"') as at`,
    );
    const later = await addPerson(t, account, 'plus-later@acme.test');
    await settled(t);
    const raw = await api.get(`/api/v1/people?updated_since=${row!.at}`, { token });
    expect(raw.status).toBe(200);
    expect(raw.body.data.map((p: any) => p.id)).toEqual([later]);
    const encoded = await api.get('/api/v1/people', { token, query: { updated_since: row!.at } });
    expect(encoded.body.data.map((p: any) => p.id)).toEqual([later]);
  });

  it('reads a time zone offset written without its colon (+0100, -05), as many tools write it', async () => {
    const [row] = await query<{ plain: string }>(
      t.em(),
      sql`select to_char(now() at time zone 'UTC' + interval '1 hour', 'YYYY-MM-DD"T"HH24:MI:SS.US') as plain`,
    );
    const later = await addPerson(t, account, 'basic-offset@acme.test');
    await settled(t);
    for (const offset of ['+0100', '+01', '%2B0100']) {
      const res = await api.get(`/api/v1/people?updated_since=${row!.plain}${offset}`, { token });
      expect({ offset, status: res.status }).toEqual({ offset, status: 200 });
      expect(res.body.data.map((p: any) => p.id)).toEqual([later]);
    }
    // Five hours behind UTC, the same wall-clock time is later still: nobody changed after it.
    const behind = await api.get(`/api/v1/people?updated_since=${row!.plain}-05`, { token });
    expect(behind.status).toBe(200);
    expect(behind.body.data).toEqual([]);
  });

  it('answers one person by id, and 404 for an unknown id, another account’s id or a malformed one', async () => {
    const mine = await addPerson(t, account, 'one@acme.test');
    const theirs = await addPerson(t, other, 'theirs@other.test');
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
    // It takes no parameter: one given is refused, as the lists refuse those they do not take.
    const extra = await api.get(`/api/v1/people/${mine}?fields=email&fields=name`, { token });
    expect([extra.status, extra.body.type]).toEqual([400, 'urn:roster:problem:invalid-parameter']);
    expect(extra.body.errors).toEqual([
      { parameter: 'fields', detail: 'fields is not a parameter of /api/v1/people/{id}, which takes none.' },
    ]);
  });
});

describe('contacts', () => {
  it('lists contacts with status contact or converted, filtered and paged', async () => {
    const plain = await addContact(t, account, 'Carla Contact', 'carla@client.test');
    const converted = await addContact(t, account, 'Conny Converted', 'conny@client.test');
    const person = await addPerson(t, account, 'conny@client.test', 'client', 'invited');
    await query(t.em(), sql`update contact set user_id = ${person} where id = ${converted}`);
    await addContact(t, other, 'Not Yours');
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
    // A transaction of another database on the same server that ends while a page is read counts as still
    // open for that page (the API cannot tell whose it was), so a pass may end early: listed once the next
    // pass shows them, as a client polling with its cursor sees them.
    const all = await eventually(async () => {
      const pass = await allPages(api, '/api/v1/audit-events', token, { limit: '2' });
      return pass.rows.filter((e) => e.action.startsWith('test.step')).length === 5 ? pass : undefined;
    });
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
    const theirs = await addPerson(t, other, 'iso@other.test');
    const mine = await addPerson(t, account, 'iso@acme.test');
    await settled(t);
    const mineListed = await idsOf(a, '/api/v1/people');
    const theirsListed = await idsOf(a, '/api/v1/people', otherToken);
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

describe('the answers above', () => {
  it('were each checked against the OpenAPI document, every kind of them', () => {
    expect(api.checked).toEqual(
      expect.arrayContaining([
        'GET /api/v1/people 200',
        'GET /api/v1/people/{id} 200',
        'GET /api/v1/people/{id} 404',
        'GET /api/v1/contacts 200',
        'GET /api/v1/audit-events 200',
        'GET /api/v1/audit-events 400',
      ]),
    );
  });
});
