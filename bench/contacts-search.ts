/**
 * Contact search at size: 100,000 contacts (and 2,000 users) in one account, searched by the start of a
 * name, an email and a company. Prints the database's own execution time (EXPLAIN ANALYZE) per query.
 *
 *   node bench/contacts-search.ts            # on the machine's Postgres (postgres@127.0.0.1:5432)
 *   BENCH_ADMIN_URL=postgres://… node bench/contacts-search.ts
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { initORM } from '../src/db/orm.ts';
import { ensureAccount } from '../src/features/accounts/account.service.ts';
import { ContactService } from '../src/features/contacts/contact.service.ts';

const adminUrl = process.env.BENCH_ADMIN_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
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

  const service = new ContactService({ register() {} } as never, {} as never);
  // Capture the exact SQL the service runs, then time it inside Postgres.
  const queries: { sql: string; params: unknown[] }[] = [];
  const original = conn.execute.bind(conn);
  (conn as unknown as { execute: typeof conn.execute }).execute = ((sql: string, params: unknown[]) => {
    queries.push({ sql, params });
    return original(sql, params);
  }) as typeof conn.execute;

  const cases = ['ana', 'person4242', 'globex 12', 'wonka', 'user19', 'zzz'];
  const client = new pg.Client({ connectionString: url.toString() });
  await client.connect();
  console.log('query            rows  p50 ms  p95 ms  max ms   (execution time inside Postgres, 30 runs)');
  for (const text of cases) {
    queries.length = 0;
    const { hits } = await service.find(em, account, text);
    const { sql, params } = queries[0]!;
    let i = 0;
    const numbered = sql.replace(/\?/g, () => `$${++i}`);
    const times: number[] = [];
    for (let run = 0; run < 30; run++) {
      const res = await client.query(`explain (analyze, format json) ${numbered}`, params as unknown[]);
      times.push(res.rows[0]['QUERY PLAN'][0]['Execution Time']);
    }
    times.sort((a, b) => a - b);
    const pick = (q: number) => times[Math.min(times.length - 1, Math.floor(q * times.length))]!.toFixed(2);
    console.log(
      `${text.padEnd(16)} ${String(hits.length).padStart(4)}  ${pick(0.5).padStart(6)}  ${pick(0.95).padStart(6)}  ${times.at(-1)!.toFixed(2).padStart(6)}`,
    );
  }
  await client.end();
  await orm.close(true);
} finally {
  await admin.query(`drop database if exists "${dbName}" with (force)`);
  await admin.end();
}
