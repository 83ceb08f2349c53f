/**
 * What the read API refuses, and how: bad filters, limits and cursors, unknown paths and methods, tokens
 * missing, unknown, revoked or over their rate limit; and that tokens stay out of the logs. Every answer is
 * checked against the served OpenAPI document.
 */
import { createHash, createHmac } from 'node:crypto';
import { connect } from 'node:net';
import { query, sql } from '../../../src/db/sql.ts';
import type { IAccount } from '../../../src/features/accounts/account.entity.ts';
import { cursorSigningKey } from '../../../src/features/api/web/routes.ts';
import { SIGNING_SECRET, type TestApp } from '../../support/app.ts';
import { type ApiApp, addPerson, startApiApp } from './fixture.ts';
import { type ApiClient, allPages, settled, tokenFor } from './support.ts';

const RATE_LIMIT = 150;
const NO_ID = '00000000-0000-0000-0000-000000000000';
let a: ApiApp;
let t: TestApp;
let api: ApiClient;
let account: IAccount;
let token: string;
let otherToken: string;
let other: IAccount;

beforeAll(async () => {
  a = await startApiApp(RATE_LIMIT);
  ({ t, api, account, other, token, otherToken } = a);
});
afterAll(() => t.stop());

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
    // A space that is not where an offset's + would be: the answer says how to send a +.
    expect(
      (await bad('/api/v1/people', { updated_since: '2026-11-30 09:00:00 01:00' })).errors[0].detail,
    ).toMatch(/A \+ in a query string reads as a space: write it as %2B\./);
    expect((await bad('/api/v1/contacts', { role: 'client' })).errors[0].detail).toMatch(
      /role is not a parameter of \/api\/v1\/contacts/,
    );
    expect((await bad('/api/v1/audit-events', { since: 'last week' })).errors[0].parameter).toBe('since');
    const garbled = await api.get('/api/v1/people?status=%ZZ', { token });
    expect(garbled.status).toBe(400);
    expect(garbled.body.detail).toMatch(/not correctly encoded/);
    const repeated = await api.get('/api/v1/people?status=active&status=invited', { token });
    expect(repeated.status).toBe(400);
    expect(repeated.body.errors[0].detail).toMatch(/Give status once/);
  });

  it('takes an audit event id past 2^53 exactly as given', async () => {
    // 9007199254740993 read as a Number is 9007199254740992: another event.
    const detail = (await bad('/api/v1/audit-events', { since: '09007199254740993' })).detail;
    expect(detail).toContain('9007199254740993');
    expect(detail).not.toContain('9007199254740992');
  });

  it('answers API requests the HTTP parser refuses as problems, not pages', async () => {
    const port = Number(new URL(t.url).port);
    const raw = (text: string) =>
      new Promise<string>((resolve, reject) => {
        let out = '';
        const socket = connect(port, '127.0.0.1', () => socket.write(text));
        socket.on('data', (d) => {
          out += d;
        });
        socket.on('end', () => resolve(out));
        socket.on('error', reject);
      });
    const answers = [
      `GET /api/v1/people HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\nX-Trace: ${'a'.repeat(20_000)}\r\n\r\n`,
      `GET /api/v1/people HTTP/1.1\r\nHost: x\r\nAuthorization Bearer ${token}\r\n\r\n`,
    ];
    for (const request of answers) {
      const answer = await raw(request);
      const [head, body] = answer.split('\r\n\r\n');
      expect(head!.split('\r\n')[0]).toBe('HTTP/1.1 400 Bad Request');
      expect(head).toMatch(/\r\ncontent-type: application\/problem\+json\r\n/);
      expect(JSON.parse(body!)).toMatchObject({ status: 400, title: 'Bad Request' });
    }
    // A page's request refused the same way is still answered with a page.
    const page = await raw(`GET /join/x HTTP/1.1\r\nHost: x\r\nX-Trace: ${'a'.repeat(20_000)}\r\n\r\n`);
    expect(page).toMatch(/\r\ncontent-type: text\/html; charset=utf-8\r\n/);
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
    await addPerson(t, account, 'first@acme.test');
    await addPerson(t, account, 'second@acme.test');
    await settled(t);
    const first = await api.get('/api/v1/people', { token, query: { status: 'active', limit: '1' } });
    expect(first.body.data).toHaveLength(1);
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

  it('refuses a time before year 1 or after 9999 as a bad filter, not as a failure of Roster', async () => {
    for (const q of [
      '0000-01-01',
      '0000-01-01T00:00:00Z',
      // Year 1 in its own zone, year 0 in UTC; and the other way round at the far end.
      '0001-01-01T00:30:00%2B01:00',
      '9999-12-31T23:59:59-14:00',
    ]) {
      const people = await api.get(`/api/v1/people?updated_since=${q}`, { token });
      expect([people.status, people.body.errors?.[0]?.parameter]).toEqual([400, 'updated_since']);
      expect(people.body.errors[0].detail).toMatch(/from year 0001 to 9999/);
      const events = await api.get(`/api/v1/audit-events?since=${q}`, { token });
      expect([events.status, events.body.errors?.[0]?.parameter]).toEqual([400, 'since']);
    }
    const edges = ['0001-01-01T00:00:00Z', '9999-12-31T23:59:59Z'];
    for (const q of edges) {
      expect((await api.get('/api/v1/contacts', { token, query: { updated_since: q } })).status).toBe(200);
    }
  });

  it('refuses a cursor issued to another account’s token, which would skip that account’s first rows', async () => {
    await addPerson(t, other, 'theirs-first@other.test');
    await addPerson(t, account, 'ours-later@acme.test');
    await settled(t);
    const ours = await allPages(api, '/api/v1/people', token, {});
    const answer = await api.get('/api/v1/people', { token: otherToken, query: { cursor: ours.cursor } });
    expect(answer.status).toBe(400);
    const refused = answer.body;
    expect(refused.type).toBe('urn:roster:problem:invalid-cursor');
    expect(refused.detail).toMatch(/another account/);
    // Their own cursor from the start lists the person an outside cursor would have skipped.
    const theirs = await allPages(api, '/api/v1/people', otherToken, {});
    expect(theirs.rows.map((p) => p.email)).toContain('theirs-first@other.test');
    const again = await api.get('/api/v1/people', { token: otherToken, query: { cursor: theirs.cursor } });
    expect([again.status, again.body.data]).toEqual([200, []]);
    // A cursor issued before cursors named their account still works, so no client has to start over.
    const body = Buffer.from(JSON.stringify({ v: 1, k: 'people', f: '[]', x: '0', i: NO_ID })).toString(
      'base64url',
    );
    const key = cursorSigningKey(SIGNING_SECRET);
    const legacy = `${body}.${createHmac('sha256', key).update(body).digest('base64url')}`;
    const resumed = await api.get('/api/v1/people', { token: otherToken, query: { cursor: legacy } });
    expect(resumed.status).toBe(200);
    expect(resumed.body.data.map((p: any) => p.email)).toContain('theirs-first@other.test');
    // Such a cursor standing on a row of another account is refused too, not read from that point on.
    const legacyOf = (cursor: string) => {
      const { a: _account, ...rest } = JSON.parse(Buffer.from(cursor.split('.')[0]!, 'base64url').toString());
      const unbound = Buffer.from(JSON.stringify(rest)).toString('base64url');
      return `${unbound}.${createHmac('sha256', key).update(unbound).digest('base64url')}`;
    };
    const outside = await api.get('/api/v1/people', {
      token: otherToken,
      query: { cursor: legacyOf(ours.cursor) },
    });
    expect([outside.status, outside.body.type]).toEqual([400, 'urn:roster:problem:invalid-cursor']);
    expect(outside.body.detail).toMatch(/another account/);
    const inside = await api.get('/api/v1/people', { token, query: { cursor: legacyOf(ours.cursor) } });
    expect([inside.status, inside.body.data]).toEqual([200, []]);
  });

  it('answers unknown API paths and other methods as problems too', async () => {
    const unknown = await api.get('/api/v1/users', { token });
    expect(unknown.status).toBe(404);
    // A base URL ending in a slash doubles it: still a problem, saying so.
    const doubled = await api.get('//api/v1/people', { token });
    expect([doubled.status, doubled.headers.get('content-type')]).toEqual([404, 'application/problem+json']);
    expect(doubled.body.detail).toBe(
      '//api/v1/people begins with a doubled slash: the base URL ends in one. Ask for /api/v1/people.',
    );
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
    const before = a.logLines.length;
    await api.get('/api/v1/people', { token, query: { limit: 'nope' } });
    await api.get('/api/v1/people', { token: `${token}x` });
    t.roster.deps.logger.info({ headers: { authorization: `Bearer ${token}` } }, `calling with ${token}`);
    t.roster.deps.logger.error({ err: new Error(`failed for ${otherToken}`) }, 'failed');
    const out = a.logLines.slice(before).join('');
    expect(out).toContain('roster_[redacted]');
    expect(out).not.toContain(token.slice(7));
    expect(out).not.toContain(otherToken.slice(7));
    expect(a.logLines.join('')).not.toMatch(/roster_[A-Za-z0-9_-]{20}/);
  });

  it('stores tokens only as SHA-256 hashes, and notes when each was last used', async () => {
    const rows = await query<Record<string, unknown>>(t.em(), sql`select * from api_token`);
    const text = JSON.stringify(rows);
    expect(text).not.toContain(token.slice(7));
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
        'GET /api/v1/people/{id} 401',
        'GET /api/v1/contacts 400',
        'GET /api/v1/audit-events 400',
      ]),
    );
  });
});
