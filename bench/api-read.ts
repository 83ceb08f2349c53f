/**
 * The read API at size: 100,000 people in one account, read over HTTP page by page as a product's first sync
 * does, then followed with the last cursor as its later polls do; and what the change trigger (updated_at and
 * the change position, see the api_tokens migration) costs the CSV import's set-based SQL.
 *
 * 1. Full read: every page of GET /api/v1/people?limit=1000 in turn, over real HTTP to Roster (bearer token,
 *    per-token rate limit in Postgres, JSON). Reference: the same page's SQL alone, run in the database
 *    (EXPLAIN ANALYZE), so the HTTP, token and JSON share shows. Target: p99 page under 250 ms.
 * 2. Polls: the last cursor asked again with nothing changed, then after 1,000 people changed.
 *    Target: a poll with nothing new under 20 ms p99, whatever the account's size.
 * 3. The trigger: `update app_user set title = …` of all 100,000 rows, with the trigger and with it disabled
 *    (reference). Target: at most 1.5× the reference.
 *
 *   node bench/api-read.ts        (node_modules/.bin first on PATH; Postgres on 127.0.0.1:5432)
 *   BENCH_PEOPLE (100000), BENCH_ADMIN_URL (postgres://postgres@127.0.0.1:5432/postgres)
 */
import { randomBytes } from 'node:crypto';
import { cpus, loadavg } from 'node:os';
import pg from 'pg';
import { startRoster } from '../src/app.ts';
import { loadConfig } from '../src/config.ts';
import { Account } from '../src/features/accounts/account.entity.ts';
import { SETTLED_BELOW } from '../src/features/api/api.queries.ts';
import { createLogger } from '../src/shared/logger.ts';
import { DEFAULT_MEMBERS } from '../test/support/app.ts';
import { startSlackStandin } from '../test/support/slack-standin.ts';

const PEOPLE = Math.max(1000, Math.min(Number(process.env.BENCH_PEOPLE ?? 100_000), 1_000_000));
const PAGE = 1000;
const POLLS = 200;
const TARGET_PAGE_P99_MS = 250;
const TARGET_POLL_P99_MS = 20;
const TARGET_TRIGGER_RATIO = 1.5;
const TOKEN = 'xoxb-bench';

const adminUrl = process.env.BENCH_ADMIN_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const dbName = `roster_bench_${randomBytes(4).toString('hex')}`;
const admin = new pg.Client({ connectionString: adminUrl });
await admin.connect();
await admin.query(`create database "${dbName}"`);
const dbUrl = new URL(adminUrl);
dbUrl.pathname = `/${dbName}`;
const db = new pg.Client({ connectionString: dbUrl.toString() });

const standin = await startSlackStandin({ members: DEFAULT_MEMBERS, teamId: 'T0001', botToken: TOKEN });
const roster = await startRoster({
  config: loadConfig({
    SLACK_SIGNING_SECRET: 'bench-secret',
    SLACK_BOT_TOKEN: TOKEN,
    SLACK_API_URL: standin.apiUrl,
    DATABASE_URL: dbUrl.toString(),
    PORT: '0',
    // A free port is picked; the links the bench never opens need an address of their own.
    PUBLIC_URL: 'http://localhost',
    LOG_LEVEL: 'silent',
    API_RATE_LIMIT: '100000',
  }),
  logger: createLogger('silent'),
  host: '127.0.0.1',
  processBeforeResponse: false,
});

const pct = (values: number[], p: number) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0;
};
const ms = (v: number) => `${v.toFixed(1)} ms`.padStart(11);

try {
  await db.connect();
  const em = roster.orm.em.fork();
  const account = await em.findOneOrFail(Account, { teamId: 'T0001' });
  await db.query('update account set seat_limit = $1 where id = $2', [PEOPLE, account.id]);
  let started = performance.now();
  await db.query(
    `insert into app_user (id, account_id, email, first_name, last_name, role, status)
     select gen_random_uuid(), $1, 'person' || i || '@acme.test', 'Person', 'Number ' || i,
       (array['employee','contractor','client'])[1 + i % 3], (array['active','invited','deactivated'])[1 + i % 3]
     from generate_series(1, $2::int) i`,
    [account.id, PEOPLE],
  );
  await db.query('analyze app_user');
  console.log(
    `seeded ${PEOPLE.toLocaleString('en')} people in ${((performance.now() - started) / 1000).toFixed(1)} s`,
  );

  const { token } = await roster.deps.apiTokens.create(
    em,
    account,
    { slackUserId: 'UADMIN', isAdmin: true, surface: 'slack' },
    'Bench',
  );
  const get = async (query: string) => {
    const t0 = performance.now();
    const res = await fetch(`${roster.url}/api/v1/people?${query}`, {
      headers: { authorization: `Bearer ${token}` },
    });
    const body = (await res.json()) as { data: unknown[]; has_more: boolean; next_cursor: string };
    if (res.status !== 200) throw new Error(`answered ${res.status}: ${JSON.stringify(body)}`);
    return { body, ms: performance.now() - t0 };
  };

  // Wait until the seeding transaction has settled for the API (no older transaction open anywhere).
  for (let i = 0; (await get('limit=1')).body.data.length === 0; i++) {
    if (i > 500) throw new Error('the seeded rows never became visible');
    await new Promise((r) => setTimeout(r, 20));
  }

  // 1. The full read.
  const pageTimes: number[] = [];
  let cursor = '';
  let rows = 0;
  started = performance.now();
  for (;;) {
    const { body, ms: took } = await get(`limit=${PAGE}${cursor ? `&cursor=${cursor}` : ''}`);
    pageTimes.push(took);
    rows += body.data.length;
    cursor = body.next_cursor;
    if (!body.has_more) break;
  }
  const fullSeconds = (performance.now() - started) / 1000;
  if (rows !== PEOPLE) throw new Error(`read ${rows} people of ${PEOPLE}`);

  // The reference: one page's SQL in the database, from the middle of the list.
  const [middle] = (
    await db.query(
      `select change_xid::text as x, id from app_user where account_id = $1 order by change_xid, id offset $2 limit 1`,
      [account.id, Math.floor(PEOPLE / 2)],
    )
  ).rows;
  const explain = await db.query(
    `explain (analyze, format json) select u.*, (select ps.name from permission_set ps where ps.id = u.permission_set_id)
     from app_user u where u.account_id = $1 and u.change_xid < ${SETTLED_BELOW.compile().text}
       and (u.change_xid, u.id) > ($2::xid8, $3::uuid) order by u.change_xid, u.id limit ${PAGE + 1}`,
    [account.id, middle.x, middle.id],
  );
  const sqlMs = explain.rows[0]['QUERY PLAN'][0]['Execution Time'] as number;
  if (process.env.BENCH_PLAN) console.log(JSON.stringify(explain.rows[0]['QUERY PLAN'][0].Plan, null, 1));

  // 2. Polls with the last cursor: nothing new, then after 1,000 changes.
  const idle: number[] = [];
  for (let i = 0; i < POLLS; i++) {
    const { body, ms: took } = await get(`cursor=${cursor}`);
    if (body.data.length) throw new Error('a poll with nothing changed returned rows');
    idle.push(took);
  }
  await db.query(
    `update app_user set title = 'Changed' where id in (select id from app_user where account_id = $1 limit 1000)`,
    [account.id],
  );
  let changed = 0;
  let changedMs = 0;
  for (let i = 0; changed < 1000 && i < 500; i++) {
    const { body, ms: took } = await get(`limit=${PAGE}&cursor=${cursor}`);
    if (body.data.length) {
      changed += body.data.length;
      changedMs += took;
      cursor = body.next_cursor;
    } else await new Promise((r) => setTimeout(r, 20));
  }

  // 3. The trigger's cost on set-based SQL.
  const bulk = async () => {
    const t0 = performance.now();
    await db.query(`update app_user set title = md5(random()::text) where account_id = $1`, [account.id]);
    return performance.now() - t0;
  };
  // Alternated, best of three each, so table growth between runs favours neither.
  await bulk();
  const on: number[] = [];
  const off: number[] = [];
  for (let i = 0; i < 3; i++) {
    on.push(await bulk());
    await db.query('alter table app_user disable trigger app_user_row_changed');
    off.push(await bulk());
    await db.query('alter table app_user enable trigger app_user_row_changed');
  }
  const withTrigger = Math.min(...on);
  const without = Math.min(...off);

  console.log(`\n${'what'.padEnd(44)}${'Roster'.padStart(11)}${'reference'.padStart(11)}   target`);
  console.log(
    `(machine load average ${loadavg()
      .map((l) => l.toFixed(1))
      .join(', ')} on ${cpus().length} cores)`,
  );
  console.log(
    `${`page of ${PAGE} over HTTP, p50`.padEnd(44)}${ms(pct(pageTimes, 50))}${ms(sqlMs)}   (reference: the page's SQL alone)`,
  );
  console.log(
    `${`page of ${PAGE} over HTTP, p99`.padEnd(44)}${ms(pct(pageTimes, 99))}${''.padStart(11)}   under ${TARGET_PAGE_P99_MS} ms: ${pct(pageTimes, 99) < TARGET_PAGE_P99_MS ? 'met' : 'NOT met'}`,
  );
  console.log(
    `${`full read of ${PEOPLE.toLocaleString('en')} people`.padEnd(44)}${`${fullSeconds.toFixed(1)} s`.padStart(11)}${''.padStart(11)}   ${Math.round(rows / fullSeconds).toLocaleString('en')} people/s`,
  );
  console.log(`${'poll, nothing changed, p50'.padEnd(44)}${ms(pct(idle, 50))}`);
  console.log(
    `${'poll, nothing changed, p90 / p99'.padEnd(44)}${ms(pct(idle, 90))}${ms(pct(idle, 99))}   p99 under ${TARGET_POLL_P99_MS} ms: ${pct(idle, 99) < TARGET_POLL_P99_MS ? 'met' : 'NOT met'}`,
  );
  console.log(
    `${'poll after 1,000 changes (all pages)'.padEnd(44)}${ms(changedMs)}${''.padStart(11)}   ${changed} changed people read`,
  );
  console.log(
    `${`update of ${PEOPLE.toLocaleString('en')} rows, trigger on / off`.padEnd(44)}${ms(withTrigger)}${ms(without)}   at most ${TARGET_TRIGGER_RATIO}×: ${(withTrigger / without).toFixed(2)}× ${withTrigger / without <= TARGET_TRIGGER_RATIO ? 'met' : 'NOT met'}`,
  );
} finally {
  await db.end().catch(() => {});
  await roster.stop();
  await standin.close();
  await admin.query(`drop database if exists "${dbName}" with (force)`);
  await admin.end();
}
