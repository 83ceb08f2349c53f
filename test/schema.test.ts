import { randomUUID } from 'node:crypto';
import { initORM, type ORM } from '../src/db/orm.ts';
import { ensureAccount } from '../src/features/accounts/account.service.ts';
import { createTestDatabase, type TestDatabase } from './support/database.ts';

let db: TestDatabase;
let orm: ORM;
let accountId: string;

beforeAll(async () => {
  db = await createTestDatabase();
  orm = await initORM(db.url);
  accountId = (await ensureAccount(orm.em.fork(), 'T_SCHEMA')).id;
  // The users these checks insert are paid seat holders: give them seats, or the seat limit refuses them.
  await orm.em.getConnection().execute('update account set seat_limit = 10 where id = ?', [accountId]);
});
afterAll(async () => {
  await orm.close(true);
  await db.drop();
});

const sql = (query: string, params: unknown[] = []) =>
  orm.em.getConnection().execute<Record<string, any>[]>(query, params);
const insertUser = (email: string, extra: { role?: string; status?: string } = {}) =>
  sql(`insert into app_user (id, account_id, email, role, status) values (?, ?, ?, ?, ?)`, [
    randomUUID(),
    accountId,
    email,
    extra.role ?? 'employee',
    extra.status ?? 'active',
  ]);

describe('the schema', () => {
  it('gives a new account the four default permission sets, Admin marked as admin', async () => {
    const rows = await sql('select name, is_admin from permission_set where account_id = ? order by name', [
      accountId,
    ]);
    expect(rows).toEqual([
      { name: 'Admin', is_admin: true },
      { name: 'Client', is_admin: false },
      { name: 'Manager', is_admin: false },
      { name: 'Member', is_admin: false },
    ]);
  });

  it('creates an account once even when two requests race to create it', async () => {
    const [a, b] = await Promise.all([
      ensureAccount(orm.em.fork(), 'T_RACE'),
      ensureAccount(orm.em.fork(), 'T_RACE'),
    ]);
    expect(a.id).toBe(b.id);
    const [row] = await sql(
      `select count(*)::int as count from permission_set ps join account a on a.id = ps.account_id where a.team_id = 'T_RACE'`,
    );
    expect(row?.count).toBe(4);
  });

  it('holds one user per account and lower-cased email', async () => {
    await insertUser('Ana@Example.com');
    await expect(insertUser('ana@example.COM')).rejects.toThrow(/app_user_account_email_unique/);
  });

  it('refuses an email with surrounding spaces, so trimmed duplicates cannot slip in', async () => {
    await expect(insertUser(' bo@example.com ')).rejects.toThrow(/app_user_email_check/);
  });

  it('refuses unknown roles and statuses', async () => {
    await expect(insertUser('role@example.com', { role: 'boss' })).rejects.toThrow(/app_user_role_check/);
    await expect(insertUser('status@example.com', { status: 'pending' })).rejects.toThrow(
      /app_user_status_check/,
    );
  });

  it('holds one contact per email but any number without one', async () => {
    const insert = (email: string | null) =>
      sql(`insert into contact (id, account_id, name, email) values (?, ?, 'C', ?)`, [
        randomUUID(),
        accountId,
        email,
      ]);
    await insert(null);
    await insert(null);
    await insert('cy@example.com');
    await expect(insert('CY@example.com')).rejects.toThrow(/contact_account_email_unique/);
  });

  it('stores only SHA-256 hashes in token columns', async () => {
    const link = (hash: string) =>
      sql(
        `insert into join_link (id, account_id, token_hash, expires_at, created_by) values (?, ?, ?, now() + interval '1 day', 'U1')`,
        [randomUUID(), accountId, hash],
      );
    await expect(link('a-raw-token-value')).rejects.toThrow(/join_link_token_hash_check/);
    await link('a'.repeat(64));
  });

  it('never lets a join link count more uses than its maximum', async () => {
    const id = randomUUID();
    await sql(
      `insert into join_link (id, account_id, token_hash, expires_at, created_by, max_uses, uses) values (?, ?, ?, now() + interval '1 day', 'U1', 2, 2)`,
      [id, accountId, 'b'.repeat(64)],
    );
    await expect(sql('update join_link set uses = uses + 1 where id = ?', [id])).rejects.toThrow(
      /join_link_uses_check/,
    );
  });

  it('keeps one pending seat request per email', async () => {
    const request = () =>
      sql(
        `insert into seat_request (id, account_id, kind, email, role, requested_by, expires_at) values (?, ?, 'invite', 'dee@example.com', 'employee', 'U1', now() + interval '14 days')`,
        [randomUUID(), accountId],
      );
    await request();
    await expect(request()).rejects.toThrow(/seat_request_one_pending_per_email/);
  });

  it('refuses a negative seat limit', async () => {
    await expect(sql('update account set seat_limit = -1 where id = ?', [accountId])).rejects.toThrow(
      /account_seat_limit_check/,
    );
  });

  it('stores timestamps with time zone', async () => {
    const rows = await sql(
      `select count(*)::int as n from information_schema.columns where table_schema = 'public' and data_type = 'timestamp without time zone'`,
    );
    expect(rows[0]?.n).toBe(0);
  });
});
