import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { initORM, type ORM } from '../src/db/orm.ts';
import { query, sql } from '../src/db/sql.ts';
import { ensureAccount } from '../src/features/accounts/account.service.ts';
import type { Feature } from '../src/features/feature.ts';
import { asDomainError } from '../src/shared/errors.ts';
import { roster } from '../src/slack/context.ts';
import { startTestApp } from './support/app.ts';
import { createTestDatabase, type TestDatabase } from './support/database.ts';

/*
 * The database refuses, at commit, any transaction that leaves an account with more paid seat holders
 * than its limit, whichever code wrote the rows: the seat service is the first defence, this the last.
 */

let db: TestDatabase;
let orm: ORM;
const clients: pg.Client[] = [];

beforeAll(async () => {
  db = await createTestDatabase();
  orm = await initORM(db.url);
});
afterAll(async () => {
  for (const c of clients) await c.end();
  await orm.close(true);
  await db.drop();
});

async function connect(): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: db.url });
  await client.connect();
  clients.push(client);
  return client;
}

let n = 0;
async function account(limit: number): Promise<string> {
  const id = (await ensureAccount(orm.em.fork(), `T_LIMIT_${++n}`)).id;
  await run(sql`update account set seat_limit = ${limit} where id = ${id}`);
  return id;
}

const run = (statement: ReturnType<typeof sql>) => query<Record<string, any>>(orm.em.fork(), statement);

/** Inserts `count` users in one statement. */
function insertUsers(accountId: string, count: number, role: string, status: string) {
  return sql`insert into app_user (id, account_id, email, role, status)
    select gen_random_uuid(), ${accountId}, ${`${role}-${status}-${randomUUID()}-`} || g || '@example.com', ${role}, ${status}
    from generate_series(1, ${count}::int) g`;
}

async function holders(accountId: string): Promise<number> {
  const [row] = await run(
    sql`select count(*)::int as n from app_user where account_id = ${accountId}
      and role in ('employee', 'contractor') and status in ('not_invited', 'invited', 'active')`,
  );
  return row!.n;
}

describe('the seat limit in the database', () => {
  it('refuses a direct insert of one paid user more than the limit, and keeps nothing of it', async () => {
    const id = await account(2);
    await run(insertUsers(id, 2, 'employee', 'active'));
    await expect(run(insertUsers(id, 1, 'contractor', 'invited'))).rejects.toMatchObject({
      constraint: 'app_user_seat_limit',
      message: expect.stringContaining('3 paid seats would be in use, over the limit of 2'),
    });
    expect(await holders(id)).toBe(2);
  });

  it('refuses giving a seat back to a deactivated user, and making a client paid, over the limit', async () => {
    const id = await account(1);
    await run(insertUsers(id, 1, 'employee', 'active'));
    await run(insertUsers(id, 1, 'employee', 'deactivated'));
    await run(insertUsers(id, 1, 'client', 'active'));
    await expect(
      run(sql`update app_user set status = 'invited' where account_id = ${id} and status = 'deactivated'`),
    ).rejects.toMatchObject({ constraint: 'app_user_seat_limit' });
    await expect(
      run(sql`update app_user set role = 'contractor' where account_id = ${id} and role = 'client'`),
    ).rejects.toMatchObject({ constraint: 'app_user_seat_limit' });
    expect(await holders(id)).toBe(1);
  });

  it('refuses lowering the limit below the seats in use', async () => {
    const id = await account(3);
    await run(insertUsers(id, 3, 'employee', 'not_invited'));
    await expect(run(sql`update account set seat_limit = 2 where id = ${id}`)).rejects.toMatchObject({
      constraint: 'app_user_seat_limit',
    });
    await run(sql`update account set seat_limit = 3 where id = ${id}`);
  });

  it('lets imports of locked users, clients and deactivations through whatever the limit', async () => {
    const id = await account(0);
    await run(insertUsers(id, 2000, 'employee', 'locked'));
    await run(insertUsers(id, 500, 'client', 'active'));
    await run(insertUsers(id, 0, 'employee', 'active'));
    await run(sql`update app_user set status = 'deactivated' where account_id = ${id} and role = 'client'`);
    const [row] = await run(sql`select count(*)::int as n from app_user where account_id = ${id}`);
    expect(row!.n).toBe(2500);
  });

  it('checks a bulk write of thousands of paid users as a whole, at commit', async () => {
    const id = await account(5000);
    await run(insertUsers(id, 5000, 'employee', 'locked'));
    // Unlocking all 5,000 in one statement fits exactly; one more paid user does not.
    await run(sql`update app_user set status = 'not_invited' where account_id = ${id}`);
    expect(await holders(id)).toBe(5000);
    await expect(run(insertUsers(id, 1, 'employee', 'active'))).rejects.toMatchObject({
      constraint: 'app_user_seat_limit',
    });
  });

  it('allows passing over the limit inside a transaction that ends within it', async () => {
    const id = await account(1);
    await run(insertUsers(id, 1, 'employee', 'active'));
    const client = await connect();
    await client.query('begin');
    await client.query(`update app_user set role = 'client' where account_id = $1`, [id]);
    await client.query(
      `insert into app_user (id, account_id, email, role, status) values ($1, $2, 'new@example.com', 'employee', 'active')`,
      [randomUUID(), id],
    );
    await client.query(`update app_user set role = 'employee' where email = 'new@example.com'`);
    await client.query('commit');
    expect(await holders(id)).toBe(1);
  });

  it('refuses the second of two transactions that each take the last seat without the seat lock', async () => {
    const id = await account(1);
    const [a, b] = [await connect(), await connect()];
    const add = (c: pg.Client, email: string) =>
      c.query(
        `insert into app_user (id, account_id, email, role, status) values ($1, $2, $3, 'employee', 'active')`,
        [randomUUID(), id, email],
      );
    await a.query('begin');
    await b.query('begin');
    await add(a, 'first@example.com');
    await add(b, 'second@example.com');
    await a.query('commit');
    await expect(b.query('commit')).rejects.toMatchObject({ constraint: 'app_user_seat_limit' });
    expect(await holders(id)).toBe(1);
  });

  it('is turned into the "no seat" message a person can act on', async () => {
    const id = await account(0);
    const err = await run(insertUsers(id, 1, 'employee', 'active')).catch((e: unknown) => e);
    expect(asDomainError(err)).toMatchObject({
      code: 'no_seat',
      message: expect.stringMatching(/^No paid seat is free/),
    });
    expect(asDomainError(new Error('connection reset'))).toBeUndefined();
  });
});

describe('a write past the limit that reaches Slack', () => {
  it('tells the person no seat is free instead of apologising for an error', async () => {
    // A command standing for a future code path that forgot the seat service.
    const careless: Feature = {
      name: 'careless',
      slack(app) {
        app.command('/careless', async ({ ack, context }) => {
          await ack();
          const { em, account } = roster(context);
          await em.transactional((tx) => query(tx, insertUsers(account.id, 1, 'employee', 'active')));
        });
      },
    };
    const t = await startTestApp({ features: [careless], seatLimit: 0 });
    try {
      await t.slack.command('/careless', '', { user: 'UADMIN' });
      const texts = t.standin.responses.map((r) => String(r.body.text));
      expect(texts).toEqual([expect.stringMatching(/^No paid seat is free, so that change was not made/)]);
      expect(await holders((await t.account()).id)).toBe(0);
    } finally {
      await t.stop();
    }
  });
});
