/**
 * Paging while rows change, on real Postgres: nothing skipped, changed rows handed out again; changes held
 * back while an older transaction of this database is open, and only of this database; positions after a
 * restore on another server; updated_at kept by the database on every path.
 */
import { Writable } from 'node:stream';
import pg from 'pg';
import { query, sql } from '../../../src/db/sql.ts';
import { encodeCursor } from '../../../src/features/api/api.params.ts';
import { resetPositionsFromElsewhere } from '../../../src/features/api/api.positions.ts';
import { cursorSigningKey } from '../../../src/features/api/web/routes.ts';
import { createLogger } from '../../../src/shared/logger.ts';
import { eventually, SIGNING_SECRET, type TestApp } from '../../support/app.ts';
import { createTestDatabase } from '../../support/database.ts';
import { type ApiApp, addPerson, newAccount, rename, startApiApp } from './fixture.ts';
import { type ApiClient, allPages, settled, tokenFor } from './support.ts';

const RATE_LIMIT = 1000;
let a: ApiApp;
let t: TestApp;
let api: ApiClient;

beforeAll(async () => {
  a = await startApiApp(RATE_LIMIT);
  ({ t, api } = a);
});
afterAll(() => t.stop());

describe('paging while rows change', () => {
  it('never skips a row and hands changed rows out again, later, with their new values', async () => {
    const acct = await newAccount(t, 'T0PAGING');
    const tok = await tokenFor(t, acct, 'Pager');
    const ids: string[] = [];
    for (let i = 0; i < 25; i++)
      ids.push(await addPerson(t, acct, `p${String(i).padStart(2, '0')}@paging.test`));
    await settled(t);

    let added = '';
    const seenFirstPage: string[] = [];
    const { rows, pages } = await allPages(api, '/api/v1/people', tok, { limit: '10' }, async (page) => {
      if (page !== 1) return;
      // After page 1: change a row already handed out and one not yet reached, and add a row.
      const [seen] = (await api.get('/api/v1/people', { token: tok, query: { limit: '10' } })).body.data;
      seenFirstPage.push(seen.id);
      await rename(t, seen.id, 'Seen-then-changed');
      await rename(t, ids[20]!, 'Ahead-and-changed');
      added = await addPerson(t, acct, 'late@paging.test');
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
    const acct = await newAccount(t, 'T0LAG');
    const tok = await tokenFor(t, acct, 'Lag reader');
    const slow = await addPerson(t, acct, 'slow@lag.test');
    const fast = await addPerson(t, acct, 'fast@lag.test');
    await settled(t);
    const start = await allPages(api, '/api/v1/people', tok, {});
    expect(start.rows.map((r) => r.id).sort()).toEqual([slow, fast].sort());

    // A transaction that writes first and commits last, as a long import does.
    const client = new pg.Client({ connectionString: t.db.url });
    await client.connect();
    try {
      await client.query('begin');
      await client.query(`update app_user set title = 'Slow writer' where id = $1`, [slow]);
      await rename(t, fast, 'Fast writer');
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
    const acct = await newAccount(t, 'T0NEIGHBOUR');
    const tok = await tokenFor(t, acct, 'Neighbour reader');
    const elsewhere = await createTestDatabase();
    const client = new pg.Client({ connectionString: elsewhere.url });
    await client.connect();
    try {
      await client.query('begin');
      await client.query('create table busy (n int)');
      await client.query('insert into busy values (1)');
      // Written here after the other database's transaction began, and committed while it stays open.
      const id = await addPerson(t, acct, 'neighbour@acme.test');
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
    const acct = await newAccount(t, 'T0RESTORED');
    const tok = await tokenFor(t, acct, 'Restored reader');
    const ids = [await addPerson(t, acct, 'r1@restored.test'), await addPerson(t, acct, 'r2@restored.test')];
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
    const oldCursor = encodeCursor(cursorSigningKey(SIGNING_SECRET), acct.id, 'people', '[]', {
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

describe('changes made by a CSV import', () => {
  it('reach a client following the cursor, with updated_at moved, like any other change', async () => {
    const acct = await newAccount(t, 'T0IMPORT');
    const tok = await tokenFor(t, acct, 'Import follower');
    const csv = t.roster.deps.csvImports;
    const admin = { slackUserId: 'UADMIN', isAdmin: true, surface: 'slack' as const };
    let files = 0;
    const importFile = async (content: string) => {
      const { csvImport } = await csv.begin(t.em(), acct, {
        uploadedBy: 'UADMIN',
        fileName: 'people.csv',
        fileId: `F${++files}`,
        channelId: 'DUADMIN',
      });
      const summary = await csv.preview(csvImport.id, Buffer.from(content));
      expect(summary.counts.error).toBe(0);
      expect((await csv.start(t.em(), acct, csvImport.id, admin)).status).toBe('started');
      await eventually(async () => {
        const [row] = await query<{ status: string }>(
          t.em(),
          sql`select status from csv_import where id = ${csvImport.id}`,
        );
        return row?.status === 'completed';
      });
      await settled(t);
    };
    await importFile(
      [
        'type,first_name,last_name,email,role,title,company',
        'user,Ada,Lovelace,ada@acme.test,employee,Engineer,',
        'user,Grace,Hopper,grace@acme.test,contractor,Advisor,',
        'contact,Alan,Turing,alan@bletchley.test,,Buyer,Bletchley Ltd',
      ].join('\n'),
    );
    const first = await allPages(api, '/api/v1/people', tok, {});
    expect(first.rows.map((p) => p.email).sort()).toEqual(['ada@acme.test', 'grace@acme.test']);
    const contactsFirst = await allPages(api, '/api/v1/contacts', tok, {});
    expect(contactsFirst.rows.map((c) => c.name)).toEqual(['Alan Turing']);
    const adaBefore = first.rows.find((p) => p.email === 'ada@acme.test');

    // The import's update statements change Ada and Alan in batches of set-based SQL.
    await importFile(
      [
        'type,first_name,last_name,email,role,title,company',
        'user,Ada,Lovelace,ada@acme.test,,Chief Engineer,',
        'contact,Alan,Turing,alan@bletchley.test,,Buyer,Bletchley Park',
      ].join('\n'),
    );
    const changed = await allPages(api, '/api/v1/people', tok, { cursor: first.cursor });
    expect(changed.rows).toHaveLength(1);
    expect(changed.rows[0]).toMatchObject({ id: adaBefore.id, title: 'Chief Engineer' });
    expect(changed.rows[0].updated_at > adaBefore.updated_at).toBe(true);
    const since = await api.get('/api/v1/people', {
      token: tok,
      query: { updated_since: adaBefore.updated_at },
    });
    expect(since.body.data.map((p: any) => p.email)).toContain('ada@acme.test');
    const contactsChanged = await allPages(api, '/api/v1/contacts', tok, { cursor: contactsFirst.cursor });
    expect(contactsChanged.rows).toEqual([
      expect.objectContaining({ name: 'Alan Turing', company: 'Bletchley Park' }),
    ]);
  });
});

describe('updated_at', () => {
  it('moves with every change whatever the SQL, and not for an update that changes nothing', async () => {
    const id = await addPerson(t, a.account, 'touch@acme.test');
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
