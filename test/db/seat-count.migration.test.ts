import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { initORM, type ORM } from '../../src/db/orm.ts';
import { query, sql } from '../../src/db/sql.ts';
import { ensureAccount } from '../../src/features/accounts/account.service.ts';
import { SeatService } from '../../src/features/seats/seat.service.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';

const MIGRATION = 'Migration20261204000000_seat_count';

let db: TestDatabase;
let orm: ORM;
beforeAll(async () => {
  db = await createTestDatabase();
  orm = await initORM(db.url);
});
afterAll(async () => {
  await orm.close(true);
  await db.drop();
});

const holders = async (accountId: string) => {
  const [row] = await query<{ kept: number; counted: number }>(
    orm.em.fork(),
    sql`select coalesce((select used from seat_usage where account_id = ${accountId}), 0) as kept,
      (select count(*)::int from app_user where account_id = ${accountId} and role in ('employee', 'contractor')
        and status in ('not_invited', 'invited', 'active')) as counted`,
  );
  return row!;
};

describe('the kept seat count', () => {
  it('counts, when first made, a seat holder an instance of the previous version adds meanwhile', async () => {
    const account = (await ensureAccount(orm.em.fork(), 'T_MIGRATE')).id;
    await query(orm.em.fork(), sql`update account set seat_limit = 10 where id = ${account}`);
    await orm.migrator.down({ migrations: [MIGRATION] });
    await query(
      orm.em.fork(),
      sql`insert into app_user (id, account_id, email, role, status)
        values (${randomUUID()}, ${account}, 'before@example.com', 'employee', 'active')`,
    );
    // The previous version adds a seat holder in a transaction still open when the upgrade starts.
    const old = new pg.Client({ connectionString: db.url });
    await old.connect();
    try {
      await old.query('begin');
      await old.query(
        `insert into app_user (id, account_id, email, role, status) values ($1, $2, 'during@example.com', 'employee', 'invited')`,
        [randomUUID(), account],
      );
      const upgrade = orm.migrator.up({ migrations: [MIGRATION] });
      await new Promise((r) => setTimeout(r, 300));
      await old.query('commit');
      await upgrade;
    } finally {
      await old.end();
    }
    expect(await holders(account)).toEqual({ kept: 2, counted: 2 });
  });

  it('is zeroed by a TRUNCATE of the people, and put right by the nightly recount after writes around it', async () => {
    const account = (await ensureAccount(orm.em.fork(), 'T_RECOUNT')).id;
    await query(orm.em.fork(), sql`update account set seat_limit = 10 where id = ${account}`);
    const add = (email: string) =>
      query(
        orm.em.fork(),
        sql`insert into app_user (id, account_id, email, role, status)
          values (${randomUUID()}, ${account}, ${email}, 'employee', 'active')`,
      );
    await add('one@example.com');
    await add('two@example.com');
    // Written around the triggers, as a data-only restore with triggers disabled does.
    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    try {
      await client.query(`set session_replication_role = replica`);
      await client.query(
        `insert into app_user (id, account_id, email, role, status) values ($1, $2, 'restored@example.com', 'employee', 'active')`,
        [randomUUID(), account],
      );
    } finally {
      await client.end();
    }
    expect(await holders(account)).toEqual({ kept: 2, counted: 3 });
    const fixed = await new SeatService({} as never).recount(orm.em.fork());
    expect(fixed).toEqual([{ accountId: account, kept: 2, counted: 3 }]);
    expect(await holders(account)).toEqual({ kept: 3, counted: 3 });
    expect(await new SeatService({} as never).recount(orm.em.fork())).toEqual([]);

    await query(orm.em.fork(), sql`truncate app_user cascade`);
    expect(await holders(account)).toEqual({ kept: 0, counted: 0 });
  });
});
