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

describe('the seat count the database keeps', () => {
  /** The kept count beside a fresh count of the rows, as another connection sees both after commit. */
  async function kept(accountId: string): Promise<{ kept: number; counted: number }> {
    const [row] = await run(
      sql`select coalesce((select used from seat_usage where account_id = ${accountId}), 0) as kept`,
    );
    return { kept: row!.kept, counted: await holders(accountId) };
  }

  it('follows every kind of write: inserts, status and role changes, moves, deletes and rollbacks', async () => {
    const id = await account(100);
    const other = await account(100);
    await run(insertUsers(id, 10, 'employee', 'active'));
    await run(insertUsers(id, 5, 'contractor', 'locked'));
    await run(insertUsers(id, 5, 'client', 'active'));
    expect(await kept(id)).toEqual({ kept: 10, counted: 10 });

    await run(sql`update app_user set status = 'not_invited' where account_id = ${id} and status = 'locked'`);
    await run(sql`update app_user set role = 'contractor' where account_id = ${id} and role = 'client'`);
    expect(await kept(id)).toEqual({ kept: 20, counted: 20 });

    // A statement that changes nothing about seats, one that swaps roles, and one that frees seats.
    await run(sql`update app_user set first_name = 'Ada' where account_id = ${id}`);
    await run(sql`update app_user set role = case role when 'employee' then 'contractor' else 'employee' end
      where account_id = ${id}`);
    await run(sql`update app_user set status = 'deactivated' where id in
      (select id from app_user where account_id = ${id} order by email limit 4)`);
    expect(await kept(id)).toEqual({ kept: 16, counted: 16 });

    // Moved to another account, and deleted.
    await run(sql`update app_user set account_id = ${other} where id in
      (select id from app_user where account_id = ${id} and status = 'active' order by email limit 3)`);
    await run(sql`delete from app_user where id in
      (select id from app_user where account_id = ${id} and status = 'active' order by email limit 2)`);
    expect(await kept(id)).toEqual({ kept: 11, counted: 11 });
    expect(await kept(other)).toEqual({ kept: 3, counted: 3 });

    // Rolled back, whole or to a savepoint: nothing of it counts.
    const client = await connect();
    await client.query('begin');
    await client.query(`update app_user set status = 'deactivated' where account_id = $1`, [id]);
    await client.query('savepoint s');
    await client.query(
      `insert into app_user (id, account_id, email, role, status) values ($1, $2, 'gone@example.com', 'employee', 'active')`,
      [randomUUID(), id],
    );
    await client.query('rollback to savepoint s');
    await client.query('rollback');
    expect(await kept(id)).toEqual({ kept: 11, counted: 11 });
  });

  it("counts a transaction's own uncommitted changes for it, and for no other", async () => {
    const id = await account(10);
    await run(insertUsers(id, 2, 'employee', 'active'));
    const usedAs = async (c: pg.Client) =>
      (
        await c.query(
          `select (coalesce((select used from seat_usage where account_id = $1), 0)
             + coalesce((select sum(delta) from seat_change where account_id = $1), 0))::int as used`,
          [id],
        )
      ).rows[0].used;
    const [a, b] = [await connect(), await connect()];
    await a.query('begin');
    await a.query(
      `insert into app_user (id, account_id, email, role, status)
       select gen_random_uuid(), $1, 'mine-' || g || '@example.com', 'employee', 'invited' from generate_series(1, 3) g`,
      [id],
    );
    expect(await usedAs(a)).toBe(5);
    expect(await usedAs(b)).toBe(2);
    await a.query('commit');
    expect(await usedAs(b)).toBe(5);
    const [left] = await run(sql`select count(*)::int as n from seat_change where account_id = ${id}`);
    expect(left!.n).toBe(0);
  });

  it('lowers the limit in the same transaction that frees the seats', async () => {
    const id = await account(3);
    await run(insertUsers(id, 3, 'employee', 'active'));
    const client = await connect();
    await client.query('begin');
    await client.query(`update account set seat_limit = 1 where id = $1`, [id]);
    await client.query(
      `update app_user set status = 'deactivated' where id in (select id from app_user where account_id = $1 limit 2)`,
      [id],
    );
    await client.query('commit');
    expect(await kept(id)).toEqual({ kept: 1, counted: 1 });
  });

  it('frees a seat without waiting for the account, so an admin holding it never deadlocks with the person', async () => {
    const id = await account(5);
    await run(insertUsers(id, 1, 'employee', 'active'));
    const [person] = await run(sql`select id from app_user where account_id = ${id}`);
    const [freeing, admin] = [await connect(), await connect()];
    // A deactivation holds the person's row; an admin's change takes the account first, then the person.
    await freeing.query('begin');
    await freeing.query(`update app_user set status = 'deactivated' where id = $1`, [person!.id]);
    await admin.query('begin');
    await admin.query('select id from account where id = $1 for no key update', [id]);
    const adminDone = admin.query('select id from app_user where id = $1 for update', [person!.id]);
    await new Promise((r) => setTimeout(r, 200));
    await freeing.query('commit');
    await adminDone;
    await admin.query('commit');
    expect(await kept(id)).toEqual({ kept: 0, counted: 0 });
  });

  it('stays exact when many transactions take and free seats at once', async () => {
    const id = await account(40);
    const workers = await Promise.all(Array.from({ length: 8 }, () => connect()));
    await Promise.all(
      workers.map(async (c, w) => {
        for (let i = 0; i < 10; i++) {
          await c.query('begin');
          await c.query(
            `insert into app_user (id, account_id, email, role, status) values ($1, $2, $3, 'employee', 'invited')`,
            [randomUUID(), id, `w${w}-${i}@example.com`],
          );
          if (i % 2)
            await c.query(`update app_user set status = 'deactivated' where email = $1`, [
              `w${w}-${i - 1}@example.com`,
            ]);
          await c.query('commit').catch(() => c.query('rollback'));
        }
      }),
    );
    const { kept: k, counted } = await kept(id);
    expect(k).toBe(counted);
    expect(counted).toBe(40);
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
