/**
 * What the database's seat count and limit check cost: bulk writes of app_user timed with its triggers
 * enabled and, as the reference, with them disabled, in the same run on the same database; then what
 * reading the seats in use costs an account of BENCH_HOLDERS paid people (default 100,000): the kept
 * count as Roster reads it, beside counting the people as it did before.
 *
 *   node bench/seat-limit.ts            (with node_modules/.bin on PATH, for Node 24)
 *
 * It creates its own database on DATABASE_URL's server (default postgres://postgres@127.0.0.1:5432), runs
 * the migrations, and drops the database at the end. BENCH_ROWS sets the rows per write (default 20,000),
 * BENCH_RUNS the runs per case (default 9).
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { initORM } from '../src/db/orm.ts';

const rows = Number(process.env.BENCH_ROWS ?? 20_000);
const runs = Number(process.env.BENCH_RUNS ?? 9);
const adminUrl = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const dbName = `roster_bench_${randomBytes(4).toString('hex')}`;
const admin = new pg.Client({ connectionString: adminUrl });
await admin.connect();
await admin.query(`create database "${dbName}"`);
const url = new URL(adminUrl);
url.pathname = `/${dbName}`;

const holdersCount = Number(process.env.BENCH_HOLDERS ?? 100_000);
const TRIGGERS = [
  'app_user_seat_change_insert',
  'app_user_seat_change_update',
  'app_user_seat_change_delete',
];

try {
  const orm = await initORM(url.toString(), { migrate: true });
  await orm.close(true);
  const db = new pg.Client({ connectionString: url.toString() });
  await db.connect();

  const cases: [string, (account: string) => string][] = [
    [
      `insert ${rows} locked users`,
      (a) => `insert into app_user (id, account_id, email, role, status)
        select gen_random_uuid(), '${a}', 'u' || g || '@x.test', 'employee', 'locked' from generate_series(1, ${rows}) g`,
    ],
    [
      `insert ${rows} paid users`,
      (a) => `insert into app_user (id, account_id, email, role, status)
        select gen_random_uuid(), '${a}', 'u' || g || '@x.test', 'employee', 'not_invited' from generate_series(1, ${rows}) g`,
    ],
    [`unlock ${rows} users`, (a) => `update app_user set status = 'not_invited' where account_id = '${a}'`],
  ];

  console.log(`case                         with check ms   without ms   (median of ${runs})`);
  for (const [name, statement] of cases) {
    const timings: Record<'with' | 'without', number[]> = { with: [], without: [] };
    for (let run = 0; run < runs; run++) {
      for (const mode of ['with', 'without'] as const) {
        const account = (
          await db.query(
            `insert into account (id, team_id, seat_limit) values (gen_random_uuid(), $1, $2) returning id`,
            [`T_${mode}_${name}_${run}`, rows],
          )
        ).rows[0].id as string;
        if (name.startsWith('unlock')) {
          await db.query(cases[0]![1](account));
        }
        for (const t of TRIGGERS) {
          await db.query(`alter table app_user ${mode === 'with' ? 'enable' : 'disable'} trigger ${t}`);
        }
        await db.query('begin');
        const started = performance.now();
        await db.query(statement(account));
        await db.query('commit');
        timings[mode].push(performance.now() - started);
      }
    }
    const median = (xs: number[]) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)]!.toFixed(0);
    console.log(
      `${name.padEnd(28)} ${median(timings.with).padStart(13)} ${median(timings.without).padStart(12)}`,
    );
  }
  for (const t of TRIGGERS) await db.query(`alter table app_user enable trigger ${t}`);

  const big = (
    await db.query(
      `insert into account (id, team_id, seat_limit) values (gen_random_uuid(), 'T_BIG', $1) returning id`,
      [holdersCount + 1000],
    )
  ).rows[0].id as string;
  await db.query(`insert into app_user (id, account_id, email, role, status)
    select gen_random_uuid(), '${big}', 'big' || g || '@x.test', 'employee', 'invited' from generate_series(1, ${holdersCount}) g`);
  await db.query('vacuum analyze app_user');
  const reads: [string, string][] = [
    [
      'kept count (Roster)',
      `select (coalesce((select used from seat_usage where account_id = $1), 0)
        + coalesce((select sum(delta) from seat_change where account_id = $1), 0))::int as used`,
    ],
    [
      'count(*) of the people',
      `select count(*)::int as used from app_user where account_id = $1
        and role in ('employee', 'contractor') and status in ('not_invited', 'invited', 'active')`,
    ],
  ];
  console.log(
    `\nseats in use of an account with ${holdersCount.toLocaleString('en')} paid people   ms (median of ${runs})`,
  );
  const found: number[] = [];
  for (const [name, text] of reads) {
    const timings: number[] = [];
    for (let run = 0; run < runs; run++) {
      const started = performance.now();
      found.push((await db.query(text, [big])).rows[0].used);
      timings.push(performance.now() - started);
    }
    timings.sort((a, b) => a - b);
    console.log(`  ${name.padEnd(26)} ${timings[Math.floor(runs / 2)]!.toFixed(2).padStart(8)}`);
  }
  if (new Set(found).size !== 1) throw new Error(`the two reads disagree: ${[...new Set(found)].join(', ')}`);
  await db.end();
} finally {
  await admin.query(`drop database if exists "${dbName}" with (force)`);
  await admin.end();
}
