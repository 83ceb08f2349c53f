import { UniqueConstraintViolationException } from '@mikro-orm/postgresql';
import { initORM, type ORM } from '../../src/db/orm.ts';
import { query, sql } from '../../src/db/sql.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';

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

describe('the raw SQL helper', () => {
  it("leaves jsonb's ? operator alone and sends values as parameters", async () => {
    const [row] = await query<{ has: boolean; text: string }>(
      orm.em.fork(),
      sql`select '{"a": 1}'::jsonb ? ${'a'} as has, ${"it's ?; drop table account"}::text as text`,
    );
    expect(row).toEqual({ has: true, text: "it's ?; drop table account" });
  });

  it('numbers nested and joined fragments in order', () => {
    const parts = [1, 2, 3].map((n) => sql`(select ${n}::int as n)`);
    const statement = sql`select n from (${sql.join(parts, ' union all ')}) s where n > ${1} order by n`;
    expect(statement.compile()).toEqual({
      text: 'select n from ((select $1::int as n) union all (select $2::int as n) union all (select $3::int as n)) s where n > $4 order by n',
      values: [1, 2, 3, 1],
    });
  });

  it('runs inside the transaction of the EntityManager it is given, and reports errors as the ORM does', async () => {
    const inside = await orm.em.fork().transactional(async (tx) => {
      const [a] = await query<{ x: string | null }>(tx, sql`select txid_current()::text as x`);
      const [b] = await query<{ x: string | null }>(tx, sql`select txid_current_if_assigned()::text as x`);
      return [a!.x, b!.x];
    });
    expect(inside[0]).toBe(inside[1]);
    await query(orm.em.fork(), sql`create table if not exists sql_helper_probe (id int primary key)`);
    await query(orm.em.fork(), sql`insert into sql_helper_probe values (${1})`);
    await expect(
      query(orm.em.fork(), sql`insert into sql_helper_probe values (${1})`),
    ).rejects.toBeInstanceOf(UniqueConstraintViolationException);
  });
});
