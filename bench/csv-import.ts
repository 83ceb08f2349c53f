/**
 * CSV import benchmark: Roster's preview + import of a generated file, end to end through the import
 * service, printed beside two references measured in the same run: a plain Postgres `COPY` of the same
 * file into a plain table, and the "Postgres floor", the same rows written by one bare
 * `INSERT ... SELECT` into Roster's own app_user, contact and audit_event tables (their real indexes,
 * constraints and triggers) for a scratch account: what the schema itself costs, whatever the code.
 * The targets are printed next to each figure.
 *
 *   node bench/csv-import.ts            (with node_modules/.bin first on PATH, for Node 24)
 *
 * Two scenarios, each in its own process so each has its own peak RSS:
 *   plain    users (half) and contacts (half), one user in 200 asking for an invitation
 *   invited  users only, every one asking for an invitation (a paid seat each)
 * BENCH_ROWS sets the rows of both (default 100,000); BENCH_SCENARIOS picks some ("plain",
 * "invited"); BENCH_RSS_BASE_MB gives the 100k plain run's peak RSS when BENCH_ROWS is 1,000,000, so
 * the flat-memory target (1M within 1.2x of 100k) is checked; BENCH_LOG_SLOW=ms logs slower statements
 * in Postgres' log and BENCH_EXPLAIN=ms their plans (auto_explain). The file is written to a temporary
 * file and streamed from there, as the download streams it, so making it does not weigh on the memory
 * measured. Each scenario creates its own database on DATABASE_URL's server (default
 * postgres://postgres@127.0.0.1:5432) and drops it at the end, and runs under the heap settings
 * Roster's image uses (NODE_OPTIONS in the Dockerfile).
 */
import { spawnSync } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { createReadStream, createWriteStream, rmSync, statSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { initORM } from '../src/db/orm.ts';
import { ensureAccount } from '../src/features/accounts/account.service.ts';
import { CSV_JOBS, CsvImportService } from '../src/features/csv-import/csv-import.service.ts';
import { FINISH_JOB } from '../src/features/csv-import/import-run.ts';
import { INVITE_JOBS } from '../src/features/invites/invitation.service.ts';
import { SeatService } from '../src/features/seats/seat.service.ts';
import { JobQueue } from '../src/shared/jobs.ts';
import { createLogger } from '../src/shared/logger.ts';

/** The heap settings Roster runs with: a small young generation and a bounded old one. */
export const NODE_FLAGS = ['--max-semi-space-size=16', '--max-old-space-size=384'];

const ROWS = Number(process.env.BENCH_ROWS ?? 100_000);
const SCENARIOS = (process.env.BENCH_SCENARIOS ?? 'plain,invited').split(',').map((s) => s.trim());
const TARGET = {
  ratioToCopy: 10,
  millionSeconds: 60,
  invitedSeconds: 30,
  invitedVsPlain: 2,
  rssMb: 250,
  rssFlat: 1.2,
};

type Result = {
  scenario: string;
  rows: number;
  invitations: number;
  fileMb: number;
  previewS: number;
  importS: number;
  totalS: number;
  rssMb: number;
  /** RSS with the app loaded, just before the preview: what the import adds is the difference. */
  baseRssMb: number;
  copyS: number;
  /** The same rows in one INSERT ... SELECT into Roster's tables (see postgresFloor). */
  floorS: number;
  /** The machine's 1-minute load average when the scenario started and ended (2 cores). */
  load: [number, number];
};

const serverUrl = new URL(process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres');
const withDb = (name: string) => {
  const u = new URL(serverUrl);
  u.pathname = `/${name}`;
  return u.toString();
};

async function admin(sql: string) {
  const client = new pg.Client({ connectionString: withDb('postgres') });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

/**
 * The file, written to disk 1,000 lines at a time. `plain`: users with every column filled, contacts
 * with and (one in five) without an email. `invited`: users only, each asking for an invitation.
 */
async function generate(path: string, rows: number, scenario: string): Promise<void> {
  const roles = ['employee', 'contractor', 'client'];
  const sets = ['Member', 'Manager', 'Client', ''];
  const out = createWriteStream(path);
  const write = (text: string) =>
    out.write(text) ? Promise.resolve() : new Promise<void>((ok) => out.once('drain', () => ok()));
  let lines = [
    'type,first_name,last_name,email,role,permission_set,title,company,phone,notes,send_invitation',
  ];
  const push = async (line: string) => {
    lines.push(line);
    if (lines.length === 1000) {
      await write(`${lines.join('\r\n')}\r\n`);
      lines = [];
    }
  };
  const users = scenario === 'invited' ? rows : Math.floor(rows / 2);
  for (let i = 0; i < users; i++) {
    const role = scenario === 'invited' ? (roles[i % 2] as string) : (roles[i % 3] as string);
    const set = role === 'client' ? 'Client' : (sets[i % 4] as string);
    const invite = scenario === 'invited' || i % 200 === 0 ? 'yes' : 'no';
    await push(
      `user,First${i},"Last, ${i}",user${i}@bench.test,${role},${set},Title ${i % 50},,+1 555 ${String(i).padStart(7, '0')},,${invite}`,
    );
  }
  for (let i = 0; i < rows - users; i++) {
    const email = i % 5 === 0 ? '' : `contact${i}@bench.test`;
    await push(
      `contact,Contact${i},Person,${email},,,Buyer,Company ${i},+44 20 ${String(i).padStart(8, '0')},"Met at fair ${i % 12}\nfollow up",`,
    );
  }
  if (lines.length) await write(`${lines.join('\r\n')}\r\n`);
  await new Promise<void>((ok, fail) => out.end((err?: Error | null) => (err ? fail(err) : ok())));
}

async function plainCopy(url: string, path: string, rows: number): Promise<number> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(
      `create table bench_copy (type text, first_name text, last_name text, email text, role text,
        permission_set text, title text, company text, phone text, notes text, send_invitation text)`,
    );
    const started = performance.now();
    await pipeline(
      createReadStream(path),
      client.query(copyFrom('copy bench_copy from stdin with (format csv, header true)')),
    );
    const seconds = (performance.now() - started) / 1000;
    const { rows: counted } = await client.query('select count(*)::int as n from bench_copy');
    if (counted[0]?.n !== rows) throw new Error(`COPY loaded ${counted[0]?.n} rows, expected ${rows}`);
    return seconds;
  } finally {
    await client.end();
  }
}

/**
 * The rows COPY loaded (bench_copy), written by one statement into Roster's own tables for a scratch
 * account, committed: users as the import makes them (locked, or invited when they ask for an
 * invitation), contacts, and one audit event each. No staging, checks, batches, invitations or jobs:
 * what the schema costs for the same rows, indexes, constraints and triggers included.
 */
async function postgresFloor(url: string, rows: number): Promise<number> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const account = randomUUID();
    await client.query(
      `insert into account (id, team_id, name, seat_limit) values ($1, 'T_FLOOR', 'Floor', $2)`,
      [account, rows + 10],
    );
    await client.query('analyze bench_copy');
    const started = performance.now();
    await client.query('begin');
    const { rows: written } = await client.query(
      `with u as (
         insert into app_user (id, account_id, email, first_name, last_name, title, phone, role, status, added_by)
         select gen_random_uuid(), $1::uuid, b.email, b.first_name, b.last_name, b.title, b.phone,
           coalesce(nullif(b.role, ''), 'employee'),
           case when b.send_invitation = 'yes' then 'invited' else 'locked' end, 'UBENCH'
         from bench_copy b where b.type = 'user'
         returning id, email, status),
       c as (
         insert into contact (id, account_id, name, email, phone, company, title, notes, added_by)
         select gen_random_uuid(), $1::uuid, concat_ws(' ', b.first_name, b.last_name), nullif(b.email, ''),
           b.phone, b.company, b.title, b.notes, 'UBENCH'
         from bench_copy b where b.type = 'contact'
         returning id, email)
       insert into audit_event (account_id, actor, action, subject_type, subject_id, surface, data)
       select $1::uuid, 'UBENCH', 'user.imported', 'user', u.id::text, 'slack',
         jsonb_build_object('email', u.email, 'status', u.status) from u
       union all
       select $1::uuid, 'UBENCH', 'contact.imported', 'contact', c.id::text, 'slack',
         jsonb_build_object('email', c.email) from c
       returning id`,
      [account],
    );
    await client.query('commit');
    const seconds = (performance.now() - started) / 1000;
    if (written.length !== rows) throw new Error(`the floor wrote ${written.length} rows, expected ${rows}`);
    return seconds;
  } finally {
    await client.end();
  }
}

/** One scenario in this process: prints its result as one JSON line for the parent. */
async function runScenario(scenario: string): Promise<void> {
  const dbName = `roster_bench_${randomBytes(4).toString('hex')}`;
  const path = join(tmpdir(), `${dbName}.csv`);
  await admin(`create database "${dbName}"`);
  if (process.env.BENCH_LOG_SLOW) {
    await admin(
      `alter database "${dbName}" set log_min_duration_statement = ${Number(process.env.BENCH_LOG_SLOW)}`,
    );
  }
  if (process.env.BENCH_EXPLAIN) {
    for (const setting of [
      `session_preload_libraries = 'auto_explain'`,
      `auto_explain.log_min_duration = ${Number(process.env.BENCH_EXPLAIN)}`,
      'auto_explain.log_analyze = on',
    ])
      await admin(`alter database "${dbName}" set ${setting}`);
  }
  const url = withDb(dbName);
  const logger = createLogger('warn');
  const orm = await initORM(url, { migrate: true });
  // Deliveries are queued by the import but not worked here: in Roster they go at Slack's pace (180
  // DMs a minute), and working 100,000 empty jobs at database speed would weigh on the import measured.
  const jobs = await JobQueue.start(url, logger, { works: (name) => name !== INVITE_JOBS.deliverBatch });
  let peak = process.memoryUsage().rss;
  const sampler = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage().rss);
  }, 20);
  try {
    // The benchmark calls the service directly; the queued jobs have nothing to do here.
    await jobs.define(CSV_JOBS.run, async () => {});
    await jobs.define(INVITE_JOBS.deliverBatch, async () => {});
    await jobs.define(FINISH_JOB, async () => {});
    const seats = new SeatService(jobs);
    const service = new CsvImportService({ orm, jobs, seats });
    const account = await ensureAccount(orm.em.fork(), 'T_BENCH', 'Bench');
    await orm.em
      .fork()
      .getConnection()
      .execute('update account set seat_limit = ? where id = ?', [ROWS + 10, account.id]);
    await generate(path, ROWS, scenario);
    const fileMb = statSync(path).size / 1024 / 1024;
    peak = process.memoryUsage().rss;
    const baseRssMb = peak / 1024 / 1024;

    const loadAtStart = loadavg()[0] ?? 0;
    const started = performance.now();
    const { csvImport } = await service.begin(orm.em.fork(), account, {
      uploadedBy: 'UBENCH',
      fileName: 'bench.csv',
      fileId: 'FBENCH',
    });
    const preview = await service.preview(csvImport.id, createReadStream(path, { highWaterMark: 64 * 1024 }));
    const previewed = performance.now();
    await service.start(orm.em.fork(), account, csvImport.id, {
      slackUserId: 'UBENCH',
      isAdmin: true,
      surface: 'slack',
    });
    const summary = await service.run(csvImport.id);
    const finished = performance.now();
    clearInterval(sampler);
    peak = Math.max(peak, process.memoryUsage().rss);
    if (!summary) throw new Error('the import did not finish');
    const c = summary.counts;
    if (c.created !== ROWS || c.failed !== 0 || preview.counts.rows !== ROWS) {
      throw new Error(`expected ${ROWS} rows created, got ${JSON.stringify(c)}`);
    }
    const copyS = await plainCopy(url, path, ROWS);
    const floorS = await postgresFloor(url, ROWS);
    const result: Result = {
      scenario,
      rows: ROWS,
      invitations: c.invited,
      fileMb,
      previewS: (previewed - started) / 1000,
      importS: (finished - previewed) / 1000,
      totalS: (finished - started) / 1000,
      rssMb: peak / 1024 / 1024,
      baseRssMb,
      copyS,
      floorS,
      load: [loadAtStart, loadavg()[0] ?? 0],
    };
    console.log(`RESULT ${JSON.stringify(result)}`);
  } finally {
    clearInterval(sampler);
    rmSync(path, { force: true });
    await jobs.stop();
    await orm.close(true);
    await admin(`drop database if exists "${dbName}" with (force)`);
  }
}

function report(results: Result[]): boolean {
  const out = (label: string, value: string) => console.log(`  ${label.padEnd(22)}${value}`);
  const n = (v: number) => Math.round(v).toLocaleString('en-US');
  let ok = true;
  const check = (pass: boolean) => {
    ok &&= pass;
    return pass ? 'met' : 'MISSED';
  };
  console.log(`node flags: ${NODE_FLAGS.join(' ')}`);
  for (const r of results) {
    console.log(
      `\n${r.scenario}: ${n(r.rows)} rows, ${n(r.invitations)} invitations, ${r.fileMb.toFixed(1)} MB (load average ${r.load[0].toFixed(1)} at the start, ${r.load[1].toFixed(1)} at the end, on ${cpus().length} cores)`,
    );
    out('', `${'Roster'.padEnd(40)}${'plain COPY'.padEnd(14)}Postgres floor`);
    out(
      'seconds',
      `${`${r.totalS.toFixed(2)} (preview ${r.previewS.toFixed(2)}, import ${r.importS.toFixed(2)})`.padEnd(40)}${r.copyS.toFixed(2).padEnd(14)}${r.floorS.toFixed(2)}`,
    );
    out(
      'rows per second',
      `${n(r.rows / r.totalS).padEnd(40)}${n(r.rows / r.copyS).padEnd(14)}${n(r.rows / r.floorS)}`,
    );
    const ratio = r.totalS / r.copyS;
    out(
      'ratio to COPY',
      `${ratio.toFixed(1)}x  (target <= ${TARGET.ratioToCopy}x: ${check(ratio <= TARGET.ratioToCopy)})`,
    );
    out('ratio to floor', `${(r.totalS / r.floorS).toFixed(1)}x`);
    if (r.rows >= 1_000_000) {
      out(
        '1M rows',
        `${r.totalS.toFixed(1)} s  (target < ${TARGET.millionSeconds} s: ${check(r.totalS < TARGET.millionSeconds)})`,
      );
    }
    if (r.scenario === 'invited') {
      out(
        'all invited',
        `${r.totalS.toFixed(1)} s  (target < ${TARGET.invitedSeconds} s at 100k: ${check(r.totalS * (100_000 / r.rows) < TARGET.invitedSeconds)})`,
      );
      const plain = results.find((p) => p.scenario === 'plain');
      if (plain) {
        const slower = r.totalS / r.rows / (plain.totalS / plain.rows);
        out(
          'vs plain rows/s',
          `${slower.toFixed(2)}x slower  (target <= ${TARGET.invitedVsPlain}x: ${check(slower <= TARGET.invitedVsPlain)})`,
        );
      }
    }
    out(
      'peak RSS',
      `${r.rssMb.toFixed(0)} MB, ${r.baseRssMb.toFixed(0)} MB before the preview  (target < ${TARGET.rssMb} MB: ${check(r.rssMb < TARGET.rssMb)})`,
    );
    const base = Number(process.env.BENCH_RSS_BASE_MB ?? 0);
    if (base && r.rows >= 1_000_000 && r.scenario === 'plain') {
      out(
        'RSS vs 100k',
        `${(r.rssMb / base).toFixed(2)}x  (target <= ${TARGET.rssFlat}x: ${check(r.rssMb / base <= TARGET.rssFlat)})`,
      );
    }
  }
  return ok;
}

const scenario = process.env.BENCH_SCENARIO;
if (scenario) {
  await runScenario(scenario);
} else {
  const results: Result[] = [];
  for (const name of SCENARIOS) {
    const child = spawnSync(process.execPath, [...NODE_FLAGS, fileURLToPath(import.meta.url)], {
      env: { ...process.env, BENCH_SCENARIO: name },
      stdio: ['ignore', 'pipe', 'inherit'],
      encoding: 'utf8',
      maxBuffer: 16 * 1024 * 1024,
    });
    const line = child.stdout.split('\n').find((l) => l.startsWith('RESULT '));
    if (child.status !== 0 || !line) {
      process.stdout.write(child.stdout);
      throw new Error(`the ${name} scenario failed (exit ${child.status})`);
    }
    results.push(JSON.parse(line.slice('RESULT '.length)) as Result);
  }
  if (!report(results)) process.exitCode = 1;
}
