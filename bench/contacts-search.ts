/**
 * Contact search at size: 100,000 contacts (and 2,000 users) in one account, searched by the start of a
 * name, a surname, an email and a company. Prints the database's own execution time (EXPLAIN ANALYZE)
 * per query. It creates a scratch database on the server, migrates it, and drops it at the end.
 *
 *   node bench/contacts-search.ts                              # Postgres at postgres@127.0.0.1:5432
 *   DATABASE_URL=postgres://user@host:5432/db node bench/contacts-search.ts   # that server instead
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { initORM } from '../src/db/orm.ts';
import { ensureAccount } from '../src/features/accounts/account.service.ts';
import { searchStatement } from '../src/features/contacts/contact.search.ts';
import { ContactService } from '../src/features/contacts/contact.service.ts';

const adminUrl = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const dbName = `roster_bench_${randomBytes(4).toString('hex')}`;
const admin = new pg.Client({ connectionString: adminUrl });
await admin.connect();
await admin.query(`create database "${dbName}"`);
const url = new URL(adminUrl);
url.pathname = `/${dbName}`;

try {
  const orm = await initORM(url.toString(), { migrate: true });
  const em = orm.em.fork();
  const account = await ensureAccount(em, 'T_BENCH');
  const conn = em.getConnection();
  const started = performance.now();
  await conn.execute(
    `insert into contact (id, account_id, name, email, company, title)
     select gen_random_uuid(), ?,
       (array['Ana','Bo','Cy','Dee','Eve','Fay','Gus','Hal','Ida','Jo'])[1 + i % 10] || ' ' || md5(i::text),
       'person' || i || '@' || (array['acme','globex','initech','umbrella','hooli'])[1 + i % 5] || '.test',
       (array['Acme','Globex','Initech','Umbrella','Hooli','Stark','Wayne','Wonka'])[1 + i % 8] || ' ' || (i % 500),
       'Title'
     from generate_series(1, 100000) i`,
    [account.id],
  );
  await conn.execute(
    `insert into app_user (id, account_id, email, first_name, last_name, role, status)
     select gen_random_uuid(), ?, 'user' || i || '@acme.test', 'User', 'Number' || i, 'client', 'active'
     from generate_series(1, 2000) i`,
    [account.id],
  );
  await conn.execute('analyze contact; analyze app_user');
  console.log(
    `seeded 100,000 contacts and 2,000 users in ${((performance.now() - started) / 1000).toFixed(1)} s`,
  );

  const service = new ContactService({} as never, {} as never);

  // From the rarest prefix to the commonest: 'p' starts every contact's email, 'a' one name in ten and
  // many surnames (hex), '3f' a surname prefix ("Ana 3f…").
  const cases: [string, number][] = [
    ['person4242', 0],
    ['globex 12', 0],
    ['user19', 0],
    ['zzz', 0],
    ['3f', 0],
    ['ana', 0],
    ['wonka', 0],
    ['a', 0],
    ['p', 0],
    ['p', 90], // the tenth page of Show more
  ];
  const client = new pg.Client({ connectionString: url.toString() });
  await client.connect();
  console.log('query            rows  p50 ms  p95 ms  max ms   (execution time inside Postgres, 30 runs)');
  for (const [text, offset] of cases) {
    const { hits } = await service.find(em, account, text, offset);
    // The exact statement the service ran, timed inside Postgres.
    const statement = searchStatement(account.id, text, offset).compile();
    const times: number[] = [];
    for (let run = 0; run < 30; run++) {
      const res = await client.query(`explain (analyze, format json) ${statement.text}`, statement.values);
      times.push(res.rows[0]['QUERY PLAN'][0]['Execution Time']);
    }
    times.sort((a, b) => a - b);
    const pick = (q: number) => times[Math.min(times.length - 1, Math.floor(q * times.length))]!.toFixed(2);
    console.log(
      `${(offset ? `${text} +${offset}` : text).padEnd(16)} ${String(hits.length).padStart(4)}  ${pick(0.5).padStart(6)}  ${pick(0.95).padStart(6)}  ${times.at(-1)!.toFixed(2).padStart(6)}`,
    );
  }
  await client.end();
  await orm.close(true);
} finally {
  await admin.query(`drop database if exists "${dbName}" with (force)`);
  await admin.end();
}
