/**
 * CSV import benchmark: a 100,000-row file (half users, half contacts) previewed and imported end to end
 * through the import service, against a plain Postgres COPY of the same bytes measured in the same run.
 *
 *   node bench/csv-import.ts            (with node_modules/.bin on PATH, for Node 24)
 *
 * It creates its own database on DATABASE_URL's server (default postgres://postgres@127.0.0.1:5432),
 * runs the migrations, and drops the database at the end. It runs under the heap settings Roster's
 * image uses (NODE_OPTIONS in the Dockerfile), starting itself again with them when they are missing.
 * BENCH_ROWS changes the size of the file, BENCH_INVITE_EVERY how often a user asks for an invitation
 * (default one in 200); BENCH_LOG_SLOW=ms logs slower statements in Postgres' log.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { initORM } from '../src/db/orm.ts';
import { ensureAccount } from '../src/features/accounts/account.service.ts';
import { CSV_JOBS, CsvImportService } from '../src/features/csv-import/csv-import.service.ts';
import { INVITE_JOBS } from '../src/features/invites/invitation.service.ts';
import { SeatService } from '../src/features/seats/seat.service.ts';
import { JobQueue } from '../src/shared/jobs.ts';
import { createLogger } from '../src/shared/logger.ts';

/** The heap settings Roster runs with: a small young generation and a bounded old one. */
export const NODE_FLAGS = ['--max-semi-space-size=16', '--max-old-space-size=384'];
const flagsGiven = [...process.execArgv, ...(process.env.NODE_OPTIONS ?? '').split(/\s+/)].some((a) =>
  a.startsWith('--max-semi-space-size'),
);
if (!flagsGiven) {
  const child = spawnSync(
    process.execPath,
    [...NODE_FLAGS, ...process.execArgv, fileURLToPath(import.meta.url)],
    {
      stdio: 'inherit',
    },
  );
  process.exit(child.status ?? 1);
}

const ROWS = Number(process.env.BENCH_ROWS ?? 100_000);
const INVITE_EVERY = Number(process.env.BENCH_INVITE_EVERY ?? 200); // one user in 200 asks for an invitation, through the seat rules
const TARGET_SECONDS = 20;
const TARGET_MB = 300;

const serverUrl = new URL(process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres');
const dbName = `roster_bench_${randomBytes(4).toString('hex')}`;
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
 * The file: users with every column filled, contacts with and (one in five) without an email. Written
 * 1,000 lines at a time into buffers, so making it does not weigh on the memory being measured.
 */
function generate(rows: number): Buffer {
  const roles = ['employee', 'contractor', 'client'];
  const sets = ['Member', 'Manager', 'Client', ''];
  const chunks: Buffer[] = [];
  let lines = [
    'type,first_name,last_name,email,role,permission_set,title,company,phone,notes,send_invitation',
  ];
  const push = (line: string) => {
    lines.push(line);
    if (lines.length === 1000) {
      chunks.push(Buffer.from(`${lines.join('\r\n')}\r\n`, 'utf8'));
      lines = [];
    }
  };
  const users = Math.floor(rows / 2);
  for (let i = 0; i < users; i++) {
    const role = roles[i % 3] as string;
    const set = role === 'client' ? 'Client' : (sets[i % 4] as string);
    const invite = i % INVITE_EVERY === 0 ? 'yes' : 'no';
    push(
      `user,First${i},"Last, ${i}",user${i}@bench.test,${role},${set},Title ${i % 50},,+1 555 ${String(i).padStart(7, '0')},,${invite}`,
    );
  }
  for (let i = 0; i < rows - users; i++) {
    const email = i % 5 === 0 ? '' : `contact${i}@bench.test`;
    push(
      `contact,Contact${i},Person,${email},,,Buyer,Company ${i % 997},+44 20 ${String(i).padStart(8, '0')},"Met at fair ${i % 12}\nfollow up",`,
    );
  }
  if (lines.length) chunks.push(Buffer.from(`${lines.join('\r\n')}\r\n`, 'utf8'));
  return Buffer.concat(chunks);
}

/** COPY ... FROM STDIN with pg's submittable interface (what pg-copy-streams does, without the package). */
class CopyIn {
  readonly done: Promise<void>;
  private settle!: (err?: Error) => void;
  private error?: Error;
  private readonly text: string;
  private readonly data: Buffer;
  constructor(text: string, data: Buffer) {
    this.text = text;
    this.data = data;
    this.done = new Promise((ok, fail) => {
      this.settle = (err) => (err ? fail(err) : ok());
    });
  }
  submit(connection: any) {
    connection.query(this.text);
  }
  handleCopyInResponse(connection: any) {
    for (let i = 0; i < this.data.length; i += 65_536)
      connection.sendCopyFromChunk(this.data.subarray(i, i + 65_536));
    connection.endCopyFrom();
  }
  handleError(err: Error) {
    this.error = err;
  }
  handleReadyForQuery() {
    this.settle(this.error);
  }
  handleCommandComplete() {}
  handleRowDescription() {}
  handleDataRow() {}
  handleEmptyQuery() {}
  handlePortalSuspended() {}
  handleCopyData() {}
}

async function plainCopy(url: string, bytes: Buffer): Promise<number> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(
      `create table bench_copy (type text, first_name text, last_name text, email text, role text,
        permission_set text, title text, company text, phone text, notes text, send_invitation text)`,
    );
    const started = performance.now();
    const copy = new CopyIn(`copy bench_copy from stdin with (format csv, header true)`, bytes);
    client.query(copy as never);
    await copy.done;
    const seconds = (performance.now() - started) / 1000;
    const { rows } = await client.query('select count(*)::int as n from bench_copy');
    if (rows[0]?.n !== ROWS) throw new Error(`COPY loaded ${rows[0]?.n} rows, expected ${ROWS}`);
    return seconds;
  } finally {
    await client.end();
  }
}

async function main() {
  await admin(`create database "${dbName}"`);
  if (process.env.BENCH_LOG_SLOW) {
    await admin(
      `alter database "${dbName}" set log_min_duration_statement = ${Number(process.env.BENCH_LOG_SLOW)}`,
    );
  }
  const url = withDb(dbName);
  let peak = process.memoryUsage().rss;
  const sampler = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage().rss);
  }, 50);
  const logger = createLogger('warn');
  const orm = await initORM(url, { migrate: true });
  const jobs = await JobQueue.start(url, logger);
  try {
    // The benchmark calls the service directly; the queued jobs have nothing to do here.
    await jobs.define(CSV_JOBS.run, async () => {});
    await jobs.define(INVITE_JOBS.deliver, async () => {});
    const seats = new SeatService(jobs);
    const service = new CsvImportService({ orm, jobs, seats });
    const account = await ensureAccount(orm.em.fork(), 'T_BENCH', 'Bench');
    await orm.em
      .fork()
      .getConnection()
      .execute('update account set seat_limit = 100000 where id = ?', [account.id]);

    const bytes = generate(ROWS);
    const fileMb = bytes.length / 1024 / 1024;
    peak = Math.max(peak, process.memoryUsage().rss);

    const started = performance.now();
    const { csvImport } = await service.begin(orm.em.fork(), account, {
      uploadedBy: 'UBENCH',
      fileName: 'bench.csv',
      fileId: 'FBENCH',
    });
    const preview = await service.preview(csvImport.id, bytes);
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
    if (c.created !== ROWS || c.failed !== 0) {
      throw new Error(`expected ${ROWS} rows created, got ${JSON.stringify(c)}`);
    }

    const total = (finished - started) / 1000;
    const copySeconds = await plainCopy(url, bytes);
    const mb = peak / 1024 / 1024;
    const out = (label: string, value: string) => console.log(`${label.padEnd(26)}${value}`);
    out('node flags', [...process.execArgv, process.env.NODE_OPTIONS ?? ''].join(' ').trim());
    out(
      'rows',
      `${ROWS.toLocaleString('en-US')} (${preview.counts.users} users, ${preview.counts.contacts} contacts, ${c.invited} invitations)`,
    );
    out('file', `${fileMb.toFixed(1)} MB`);
    out('preview', `${((previewed - started) / 1000).toFixed(2)} s`);
    out('import', `${((finished - previewed) / 1000).toFixed(2)} s`);
    out('total', `${total.toFixed(2)} s (target ≤ ${TARGET_SECONDS} s)`);
    out('rows per second', Math.round(ROWS / total).toLocaleString('en-US'));
    out('peak RSS', `${mb.toFixed(0)} MB (target < ${TARGET_MB} MB)`);
    out(
      'plain COPY',
      `${copySeconds.toFixed(2)} s (${Math.round(ROWS / copySeconds).toLocaleString('en-US')} rows/s)`,
    );
    out('ratio to COPY', `${(total / copySeconds).toFixed(1)}×`);
    if (total > TARGET_SECONDS || mb >= TARGET_MB) process.exitCode = 1;
  } finally {
    clearInterval(sampler);
    await jobs.stop();
    await orm.close(true);
    await admin(`drop database if exists "${dbName}" with (force)`);
  }
}

await main();
