/**
 * What a large CSV import does to everyone else: Roster's `/seats` ack times idle and while a 100,000-row
 * import runs, and how long another admin's `/seats N` takes while an import of 100,000 invitations takes
 * seats batch after batch. Targets (issue "fast at real volume"): ack p99 during the import within 1.2×
 * idle; `/seats 50` by another admin answered in under 1 s.
 *
 * Roster runs in its own process, as in production (processBeforeResponse false, the image's heap
 * settings, its own pg-boss workers running the import and the invitation deliveries in their own thread unless BULK_JOBS says otherwise), bound
 * to 127.0.0.1.
 * This process holds the Slack stand-in, a mail sink that accepts and drops mail, and the load; it drives
 * the import as an admin does: the file shared in the bot's DM, the preview awaited, **Import** clicked.
 *
 * 1. Ack: signed `/seats` commands from a member, sent at a steady rate (open loop: one every 1/rate s
 *    whether or not earlier ones are answered), first for BENCH_IDLE_SECONDS on an idle app, then from the
 *    upload of a 100k-user file (1 in 200 asking for an invitation) until its import is done.
 * 2. `/seats N` by the owner (another admin than the importer), one at a time, about one a second: a few on
 *    the idle app, then from the upload of a 100k-user file where every row asks for an invitation (9 in
 *    10 paid, so every batch takes seats) until its import is done. Alternately `/seats 50`, refused since
 *    more seats are in use (it takes the same seat lock before it counts), and a limit that changes the
 *    database (99,999 and 100,000 in turn, above the seats the import needs). For each: the time until its
 *    reply reaches the response_url, and for the second kind until the new limit is committed.
 * While the imports run, Postgres' lock waits in the bench database are sampled every 100 ms
 * (pg_stat_activity, pg_locks, pg_blocking_pids) and the most frequent waits printed with what blocked them;
 * and per phase, Roster's process reports how long its event loop was held up, its GC pauses and CPU, and
 * (from /proc) how long its main thread waited for a CPU, beside the machine's CPU.
 *
 *   node bench/ack-during-import.ts        (node_modules/.bin first on PATH; Postgres on 127.0.0.1:5432)
 *   BENCH_ROWS (100000, the most), BENCH_RATE (25 acks/s), BENCH_IDLE_SECONDS (30), BENCH_PARTS ("ack,seats"),
 *   BENCH_CPU_PROF=dir (a CPU profile of Roster's process, written there when it stops)
 *   BENCH_SPLIT=1 (two instances on one database: Slack's requests to one that works no import or delivery
 *   jobs, those jobs on the other; tells the import's share of Roster's event loop from the machine's load)
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { SMTPServer } from 'smtp-server';
import { DEFAULT_MEMBERS } from '../test/support/app.ts';
import { SlackDriver } from '../test/support/slack-driver.ts';
import { type PostedMessage, startSlackStandin } from '../test/support/slack-standin.ts';

/** The heap settings of Roster's image (NODE_OPTIONS in the Dockerfile). */
const NODE_FLAGS = ['--max-semi-space-size=16', '--max-old-space-size=384'];
const SECRET = 'bench-secret';
const TOKEN = 'xoxb-bench';
const TEAM = 'T0001';

// At most 100,000: `/seats N` goes up to 100,000, and the invited file's paid rows must fit under it.
const ROWS = Math.min(Number(process.env.BENCH_ROWS ?? 100_000), 100_000);
const RATE = Math.max(1, Math.min(Number(process.env.BENCH_RATE ?? 25), 200));
const IDLE_SECONDS = Math.max(5, Math.min(Number(process.env.BENCH_IDLE_SECONDS ?? 30), 300));
const PARTS = (process.env.BENCH_PARTS ?? 'ack,seats').split(',').map((s) => s.trim());
/** Two instances: Slack's requests to one that works no import jobs, the import on the other. */
const SPLIT = process.env.BENCH_SPLIT === '1';
/** At most this many acks in flight; a send that would pass it is counted as dropped, not queued. */
const MAX_IN_FLIGHT = 200;
/** Every wait for the app (a preview, an import) gives up after this long. */
const PHASE_TIMEOUT_MS = 10 * 60_000;
const TARGET_ACK_RATIO = 1.2;
const TARGET_SEATS_MS = 1000;

/** The child: Roster as in production, on 127.0.0.1, until its stdin closes. */
async function runApp(): Promise<void> {
  const { startRoster } = await import('../src/app.ts');
  const { loadConfig } = await import('../src/config.ts');
  const { createLogger } = await import('../src/shared/logger.ts');
  const config = loadConfig(process.env);
  const roster = await startRoster({
    config,
    logger: createLogger(config.logLevel),
    host: '127.0.0.1',
    processBeforeResponse: false,
  });
  console.log(`READY ${roster.url}`);
  // Every 250 ms: the longest the event loop was held up (what an ack waits behind in this process) and
  // the CPU this process used, so the parent can tell its own work from the machine's.
  const { monitorEventLoopDelay, PerformanceObserver } = await import('node:perf_hooks');
  const delay = monitorEventLoopDelay({ resolution: 10 });
  delay.enable();
  // Garbage collection pauses the loop too: its longest pause and total in each interval.
  let gcMax = 0;
  let gcTotal = 0;
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      gcMax = Math.max(gcMax, e.duration);
      gcTotal += e.duration;
    }
  }).observe({ entryTypes: ['gc'] });
  let cpu = process.cpuUsage();
  setInterval(() => {
    const used = process.cpuUsage(cpu);
    cpu = process.cpuUsage();
    console.log(
      `STAT ${Date.now()} ${(delay.max / 1e6).toFixed(1)} ${((used.user + used.system) / 1000).toFixed(0)} ${gcMax.toFixed(1)} ${gcTotal.toFixed(1)}`,
    );
    delay.reset();
    gcMax = 0;
    gcTotal = 0;
  }, 250).unref();
  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    await roster.stop();
    process.exit(0);
  };
  process.stdin.on('end', () => void stop());
  process.stdin.resume();
  process.on('SIGTERM', () => void stop());
}

type Ack = { phase: string; ms: number; url: string; sentAt: number; ok: boolean };
type SeatsCommand = {
  phase: string;
  kind: 'refused' | 'change';
  text: string;
  ackMs: number;
  replyMs: number | null;
  changedMs: number | null;
  reply: string;
};
type AppStat = {
  at: number;
  stallMs: number;
  cpuMs: number;
  gcMaxMs: number;
  gcMs: number;
  machineBusy: number;
  /** How long Roster's main thread was ready to run but waited for a CPU (the machine's other work). */
  cpuWaitMs: number;
};
type LockWait = {
  waiter: string;
  lock: string;
  blocker: string;
  blockerState: string;
  waitedMs: number;
};

async function main(): Promise<void> {
  const adminUrl = process.env.BENCH_ADMIN_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
  const dbName = `roster_bench_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  await admin.query(`create database "${dbName}"`);
  const dbUrl = new URL(adminUrl);
  dbUrl.pathname = `/${dbName}`;

  const standin = await startSlackStandin({ members: DEFAULT_MEMBERS, teamId: TEAM, botToken: TOKEN });
  // Invitations go out by email while the import runs, as in production; the sink takes and drops them,
  // so parsing mail does not weigh on this process's timings.
  let mails = 0;
  const sink = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS'],
    logger: false,
    closeTimeout: 500,
    onData(stream, _session, callback) {
      stream.on('end', () => {
        mails++;
        callback();
      });
      stream.resume();
    },
  });
  await new Promise<void>((ok) => sink.listen(0, '127.0.0.1', () => ok()));
  const smtpPort = (sink.server.address() as import('node:net').AddressInfo).port;

  const children: ChildProcess[] = [];
  const appStats: AppStat[] = [];
  const phases: { phase: string; at: number }[] = [];
  const db = new pg.Client({ connectionString: dbUrl.toString() });
  const sampler = new pg.Client({ connectionString: dbUrl.toString() });
  const watcher = new pg.Client({ connectionString: dbUrl.toString() });
  const watchdog = setTimeout(() => {
    console.error('the bench ran over 30 minutes; stopping');
    for (const c of children) c.kill('SIGKILL');
    process.exit(2);
  }, 30 * 60_000);
  watchdog.unref();
  try {
    const profile = process.env.BENCH_CPU_PROF
      ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_CPU_PROF}`, '--cpu-prof-interval=1000']
      : [];
    /** Starts one Roster process; `measured` is the one Slack's requests go to, whose stalls are reported. */
    const startApp = (measured: boolean, env: Record<string, string> = {}) => {
      const child = spawn(process.execPath, [...NODE_FLAGS, ...profile, fileURLToPath(import.meta.url)], {
        env: {
          ...process.env,
          BENCH_ROLE: 'app',
          SLACK_SIGNING_SECRET: SECRET,
          SLACK_BOT_TOKEN: TOKEN,
          SLACK_API_URL: standin.apiUrl,
          DATABASE_URL: dbUrl.toString(),
          SMTP_URL: `smtp://127.0.0.1:${smtpPort}`,
          MAIL_FROM: 'Roster <roster@bench.test>',
          PORT: '0',
          // A free port is picked; the links the bench never opens need an address of their own.
          PUBLIC_URL: 'http://localhost',
          LOG_LEVEL: process.env.BENCH_APP_LOG_LEVEL ?? 'error',
          ...env,
        },
        stdio: ['pipe', 'pipe', 'inherit'],
      });
      children.push(child);
      return new Promise<string>((ok, fail) => {
        const lines = createInterface({ input: child.stdout! });
        lines.on('line', (line) => {
          if (line.startsWith('READY ')) ok(line.slice('READY '.length));
          else if (line.startsWith('STAT ')) {
            if (!measured) return;
            const [at, stall, cpuMs, gcMax, gcMs] = line.slice(5).split(' ').map(Number);
            appStats.push({
              at: at ?? 0,
              stallMs: stall ?? 0,
              cpuMs: cpuMs ?? 0,
              gcMaxMs: gcMax ?? 0,
              gcMs: gcMs ?? 0,
              machineBusy: machineBusy(),
              cpuWaitMs: cpuWait(child.pid),
            });
          } else process.stderr.write(`app: ${line}\n`);
        });
        child.once('exit', (code) => fail(new Error(`Roster exited (${code}) before it was ready`)));
      });
    };
    // Split: Slack's requests go to an instance that works no import or delivery jobs, and a second
    // instance on the same database works them, so the acks no longer share an event loop with the import.
    // Split: the jobs on an instance of their own (on its event loop), Slack's requests to one that works none.
    if (SPLIT) await startApp(false, { BULK_JOBS: 'inline' });
    const appUrl = await startApp(true, SPLIT ? { BULK_JOBS: 'off' } : {});
    await db.connect();
    await sampler.connect();
    await watcher.connect();
    // Room for both files' paid seats; `/seats N` changes it between 99,999 and 100,000 later.
    await db.query('update account set seat_limit = 100000 where team_id = $1', [TEAM]);

    const slack = new SlackDriver({ appUrl, signingSecret: SECRET, standin, teamId: TEAM });
    const load = await uptimeLoad();
    const started = new Date();

    /** A signed slash command with a response_url of our own, so its reply can be found. */
    const command = async (user: string, text: string) => {
      const url = standin.responseUrl();
      const form = new URLSearchParams({
        token: 'deprecated-verification-token',
        team_id: TEAM,
        team_domain: 'acme',
        channel_id: 'C0GENERAL',
        channel_name: 'general',
        user_id: user,
        user_name: standin.members.get(user)?.name ?? user.toLowerCase(),
        command: '/seats',
        text,
        api_app_id: 'AROSTER',
        is_enterprise_install: 'false',
        response_url: url,
        trigger_id: standin.issueTriggerId(),
      });
      const sentAt = Date.now();
      const t0 = performance.now();
      const res = await slack.sendSigned(form.toString(), 'application/x-www-form-urlencoded');
      return { url, sentAt, ackMs: performance.now() - t0, ok: res.status === 200 };
    };

    // ---- the import, as an admin does it ----
    let fileNo = 0;
    const importFile = async (
      kind: 'users' | 'invited',
      onPhase: (phase: 'preview' | 'import' | 'done') => void,
    ) => {
      const name = `bench-${kind}-${++fileNo}.csv`;
      const content = generate(kind, ROWS, fileNo);
      const file = standin.addFile({ id: `FBENCH${fileNo}`, name, content, user: 'UADMIN' });
      const t0 = performance.now();
      onPhase('preview');
      await slack.fileShare('UADMIN', file);
      const preview = await waitFor(
        () =>
          lastMessage(
            standin.messages,
            (m) => m.channel === 'DUADMIN' && m.text?.startsWith(`Preview of ${name}`),
          ),
        `the preview of ${name}`,
      );
      const previewS = (performance.now() - t0) / 1000;
      onPhase('import');
      const t1 = performance.now();
      await slack.clickButton(preview, { actionId: 'csv_import_start' }, { user: 'UADMIN' });
      const summary = await waitFor(
        () => lastMessage(standin.messages, (m) => m.text?.startsWith(`Imported ${name}`)),
        `the import of ${name}`,
      );
      onPhase('done');
      return {
        name,
        fileMb: content.length / 1024 / 1024,
        previewS,
        importS: (performance.now() - t1) / 1000,
        summary: summary.text ?? '',
      };
    };

    // ---- lock waits, sampled while the imports run ----
    const waits: Record<string, LockWait[]> = { ack: [], seats: [] };
    let sampling: string | null = null;
    const sampleLoop = (async () => {
      for (;;) {
        if (sampling === 'stop') return;
        if (sampling) {
          const { rows } = await sampler.query<LockWait>(
            `select coalesce(substring(w.query from '/\\* ([^*]+) \\*/'), left(regexp_replace(w.query, '\\s+', ' ', 'g'), 70)) as waiter,
               coalesce((select l.mode || ' on ' || coalesce(l.relation::regclass::text, l.locktype)
                  from pg_locks l where l.pid = w.pid and not l.granted limit 1), w.wait_event) as lock,
               coalesce(substring(b.query from '/\\* ([^*]+) \\*/'), left(regexp_replace(b.query, '\\s+', ' ', 'g'), 70)) as blocker,
               b.state as "blockerState",
               (extract(epoch from now() - w.query_start) * 1000)::int as "waitedMs"
             from pg_stat_activity w
             cross join lateral unnest(pg_blocking_pids(w.pid)) as bp(pid)
             join pg_stat_activity b on b.pid = bp.pid
             where w.datname = current_database() and w.wait_event_type = 'Lock'`,
          );
          waits[sampling]?.push(...rows);
        }
        await sleep(100);
      }
    })();

    const figures: string[] = [];
    const say = (line = '') => {
      figures.push(line);
      console.log(line);
    };
    say(
      `\n${SPLIT ? 'Two Roster instances (Slack to one that works no import or delivery jobs, the jobs on the other), each' : `Roster (BULK_JOBS=${process.env.BULK_JOBS ?? 'thread'})`} in its own process (processBeforeResponse false, ${NODE_FLAGS.join(' ')}), ${ROWS.toLocaleString('en-US')}-row files, started ${started.toISOString()}, load average ${load}`,
    );

    if (PARTS.includes('ack')) {
      const acks: Ack[] = [];
      let phase = 'warm-up';
      let dropped = 0;
      let inFlight = 0;
      const pending: Promise<void>[] = [];
      /** Sends RATE commands a second until `until` holds (or `seconds` pass), each timed on its own. */
      const paced = async (until: () => boolean, seconds: number) => {
        const interval = 1000 / RATE;
        const start = performance.now();
        let next = start;
        while (!until() && performance.now() - start < seconds * 1000) {
          if (inFlight >= MAX_IN_FLIGHT) dropped++;
          else {
            inFlight++;
            const at = phase;
            pending.push(
              command('UMEMBER', '').then(
                (r) => {
                  inFlight--;
                  acks.push({ phase: at, ms: r.ackMs, url: r.url, sentAt: r.sentAt, ok: r.ok });
                },
                () => {
                  inFlight--;
                  acks.push({ phase: at, ms: Number.NaN, url: '', sentAt: 0, ok: false });
                },
              ),
            );
          }
          next += interval;
          await sleep(Math.max(0, next - performance.now()));
        }
        await Promise.all(pending.splice(0));
      };

      await paced(() => false, 5);
      phase = 'idle';
      phases.push({ phase: 'ack idle', at: Date.now() });
      await paced(() => false, IDLE_SECONDS);
      let importDone = false;
      sampling = 'ack';
      const run = importFile('users', (p) => {
        phases.push({ phase: `ack ${p}`, at: Date.now() });
        if (p === 'done') importDone = true;
        else phase = p;
      });
      await paced(() => importDone, PHASE_TIMEOUT_MS / 1000);
      const result = await run;
      sampling = null;
      await sleep(2000);

      const replies = new Map(standin.responses.map((r) => [r.url, r.at]));
      const stats = (p: string) => {
        const list = acks.filter((a) => a.phase === p);
        const ms = list.filter((a) => a.ok).map((a) => a.ms);
        const reply = list.flatMap((a) => {
          const at = replies.get(a.url);
          return at === undefined ? [] : [at - a.sentAt];
        });
        return {
          n: list.length,
          failed: list.filter((a) => !a.ok).length,
          ack: summary(ms),
          reply: summary(reply),
          unanswered: list.length - reply.length,
        };
      };
      const idle = stats('idle');
      const preview = stats('preview');
      const during = stats('import');
      const both = summary(
        acks.filter((a) => a.ok && (a.phase === 'preview' || a.phase === 'import')).map((a) => a.ms),
      );
      say(
        `\n1. /seats acks from a member, ${RATE} a second (open loop), idle ${IDLE_SECONDS} s, then during ${result.name} (${result.fileMb.toFixed(1)} MB: preview ${result.previewS.toFixed(1)} s, import ${result.importS.toFixed(1)} s)`,
      );
      say(`   ${result.summary}`);
      say(
        `   ${''.padEnd(24)}${'idle'.padStart(10)}${'preview'.padStart(10)}${'import'.padStart(10)}${'both'.padStart(10)}`,
      );
      say(
        `   ${'commands'.padEnd(24)}${[idle.n, preview.n, during.n, preview.n + during.n].map((v) => String(v).padStart(10)).join('')}`,
      );
      say(
        `   ${'ack p50'.padEnd(24)}${[idle.ack.p50, preview.ack.p50, during.ack.p50, both.p50].map(ms).join('')}`,
      );
      say(
        `   ${'ack p99'.padEnd(24)}${[idle.ack.p99, preview.ack.p99, during.ack.p99, both.p99].map(ms).join('')}`,
      );
      say(
        `   ${'ack max'.padEnd(24)}${[idle.ack.max, preview.ack.max, during.ack.max, both.max].map(ms).join('')}`,
      );
      say(
        `   ${'reply p50 (handler done)'.padEnd(24)}${[idle.reply.p50, preview.reply.p50, during.reply.p50].map(ms).join('')}`,
      );
      say(
        `   ${'reply p99'.padEnd(24)}${[idle.reply.p99, preview.reply.p99, during.reply.p99].map(ms).join('')}`,
      );
      const ratio = both.p99 / idle.ack.p99;
      say(
        `   ack p99 during the import (preview and import) / idle: ${ratio.toFixed(2)}×   target ≤ ${TARGET_ACK_RATIO}×  ${ratio <= TARGET_ACK_RATIO ? 'met' : 'MISSED'}`,
      );
      const failed = idle.failed + preview.failed + during.failed;
      if (failed || dropped)
        say(`   ${failed} not answered 200, ${dropped} not sent (over ${MAX_IN_FLIGHT} in flight)`);
      printStats(say, appStats, phases, 'ack');
      printWaits(say, waits.ack ?? []);
    }

    if (PARTS.includes('seats')) {
      const commands: SeatsCommand[] = [];
      let phase = 'idle';
      let current = 100_000;
      let refusedNext = true;
      const seatsUsed = async () =>
        (
          await db.query<{ n: number }>(
            `select count(*)::int as n from app_user where role in ('employee', 'contractor')
               and status in ('not_invited', 'invited', 'active')`,
          )
        ).rows[0]?.n ?? 0;
      /** One `/seats N` by the owner: the reply, and for a change the moment it is committed. */
      const one = async () => {
        const at = phase;
        // `/seats 50` only once it is sure to be refused: with 50 seats or fewer in use it would set the limit.
        const refused = refusedNext && (await seatsUsed()) > 50;
        refusedNext = !refusedNext;
        const target = current === 100_000 ? 99_999 : 100_000;
        const text = refused ? '50' : String(target);
        const sent = command('UOWNER', text);
        const { url, sentAt, ackMs } = await sent;
        const reply = standin.waitForResponse((r) => r.url === url, 120_000).then((r) => r);
        let changedMs: number | null = null;
        if (!refused) {
          for (;;) {
            const { rows } = await watcher.query<{ limit: number }>(
              'select seat_limit as limit from account where team_id = $1',
              [TEAM],
            );
            if (rows[0]?.limit === target) {
              changedMs = Date.now() - sentAt;
              current = target;
              break;
            }
            if (Date.now() - sentAt > 120_000) break;
            await sleep(10);
          }
        }
        const r = await reply.catch(() => null);
        commands.push({
          phase: at,
          kind: refused ? 'refused' : 'change',
          text: `/seats ${text}`,
          ackMs,
          replyMs: r ? r.at - sentAt : null,
          changedMs,
          reply: String(r?.body.text ?? 'no reply'),
        });
      };
      const ticks = async (until: () => boolean, count: number) => {
        for (let i = 0; i < count && !until(); i++) {
          const t0 = performance.now();
          await one();
          await sleep(Math.max(0, 1000 - (performance.now() - t0)));
        }
      };
      phases.push({ phase: 'seats idle', at: Date.now() });
      await ticks(() => false, 10);
      let importDone = false;
      sampling = 'seats';
      const run = importFile('invited', (p) => {
        phases.push({ phase: `seats ${p}`, at: Date.now() });
        if (p === 'done') importDone = true;
        else phase = p;
      });
      await ticks(() => importDone, Number.POSITIVE_INFINITY);
      const result = await run;
      sampling = null;

      say(
        `\n2. /seats N by another admin (the owner), one at a time about a second apart, idle, then during ${result.name} (every row invited, 9 in 10 paid: preview ${result.previewS.toFixed(1)} s, import ${result.importS.toFixed(1)} s)`,
      );
      say(`   ${result.summary}`);
      say(`   ${''.padEnd(34)}${'n'.padStart(5)}${'median'.padStart(10)}${'slowest'.padStart(10)}   target`);
      const row = (label: string, values: (number | null)[], target = false) => {
        const got = values.filter((v): v is number => v !== null);
        const s = summary(got);
        const missing = values.length - got.length;
        const verdict =
          target && values.length
            ? `   < ${TARGET_SEATS_MS} ms  ${s.max < TARGET_SEATS_MS && !missing ? 'met' : 'MISSED'}`
            : '';
        say(
          `   ${label.padEnd(34)}${String(got.length).padStart(5)}${ms(s.p50)}${ms(s.max)}${verdict}${missing ? `  (${missing} never came)` : ''}`,
        );
      };
      for (const p of ['idle', 'preview', 'import']) {
        const list = commands.filter((c) => c.phase === p);
        if (!list.length) continue;
        const isImport = p === 'import';
        say(`   ${p === 'idle' ? 'idle app' : `during the ${p}`}`);
        row(
          '  ack',
          list.map((c) => c.ackMs),
        );
        row(
          '  reply, /seats 50 (refused)',
          list.filter((c) => c.kind === 'refused').map((c) => c.replyMs),
          isImport,
        );
        row(
          '  reply, /seats N (changes)',
          list.filter((c) => c.kind === 'change').map((c) => c.replyMs),
          isImport,
        );
        row(
          '  limit committed, /seats N',
          list.filter((c) => c.kind === 'change').map((c) => c.changedMs),
          isImport,
        );
      }
      const odd = commands.filter((c) => c.reply === 'no reply' || /went wrong|apolog/i.test(c.reply));
      if (odd.length) say(`   ${odd.length} commands without a proper reply: ${odd[0]?.reply}`);
      const sample = commands.find((c) => c.kind === 'refused');
      if (sample) say(`   /seats 50 answers: "${sample.reply.slice(0, 110)}"`);
      printStats(say, appStats, phases, 'seats');
      printWaits(say, waits.seats ?? []);
      say(`   invitation mails received during the run: ${mails}`);
    }
    say(`\nload average at the end: ${await uptimeLoad()}`);
    sampling = 'stop';
    await sampleLoop;
  } finally {
    clearTimeout(watchdog);
    for (const child of children) {
      if (child.exitCode !== null) continue;
      const exited = new Promise((ok) => child.once('exit', ok));
      child.stdin?.end();
      await Promise.race([exited, sleep(20_000)]);
      if (child.exitCode === null) child.kill('SIGKILL');
    }
    for (const c of [db, sampler, watcher]) await c.end().catch(() => {});
    await standin.close();
    await new Promise<void>((ok) => sink.close(() => ok()));
    await admin.query(`drop database if exists "${dbName}" with (force)`);
    await admin.end();
  }
}

/** Roster's process per phase: how long its event loop was held up, and its CPU beside the machine's. */
function printStats(
  say: (line: string) => void,
  stats: AppStat[],
  phases: { phase: string; at: number }[],
  part: string,
) {
  const mine = phases.filter((p) => p.phase.startsWith(`${part} `));
  say(
    "   Roster's process, per 250 ms: event loop held up (p50, p99, max; 10 ms resolution), GC, its CPU, its main thread's wait for a CPU, and the machine's CPU (2 cores = 200%)",
  );
  for (let i = 0; i < mine.length - 1; i++) {
    const from = mine[i]?.at ?? 0;
    const to = mine[i + 1]?.at ?? 0;
    const list = stats.filter((s) => s.at > from && s.at <= to);
    if (!list.length) continue;
    const stall = summary(list.map((s) => s.stallMs));
    const cpu = list.reduce((t, s) => t + s.cpuMs, 0) / (list.length * 250);
    const machine = list.reduce((t, s) => t + s.machineBusy, 0) / list.length;
    const gcShare = list.reduce((t, s) => t + s.gcMs, 0) / (list.length * 250);
    const gcMax = Math.max(...list.map((s) => s.gcMaxMs));
    const waited = list.reduce((t, s) => t + s.cpuWaitMs, 0) / (list.length * 250);
    say(
      `   ${(mine[i]?.phase.slice(part.length + 1) ?? '').padEnd(10)} loop held ${stall.p50.toFixed(0)}/${stall.p99.toFixed(0)}/${stall.max.toFixed(0)} ms, GC pauses up to ${gcMax.toFixed(0)} ms (${(gcShare * 100).toFixed(0)}% of the time), Roster CPU ${(cpu * 100).toFixed(0)}%, waiting for a CPU ${(waited * 100).toFixed(0)}%, machine ${machine.toFixed(0)}%`,
    );
  }
}

let lastWait: number | null = null;
/** Run-queue wait of a process's main thread since the last call, in ms (from /proc/PID/schedstat). */
function cpuWait(pid: number | undefined): number {
  if (!pid) return 0;
  try {
    const waited = Number(readFileSync(`/proc/${pid}/schedstat`, 'utf8').split(' ')[1]) / 1e6;
    const before = lastWait;
    lastWait = waited;
    return before === null ? 0 : waited - before;
  } catch {
    return 0;
  }
}

let lastCpu: number[] | null = null;
/** The machine's busy CPU since the last call, in percent of one core (from /proc/stat). */
function machineBusy(): number {
  const fields =
    readFileSync('/proc/stat', 'utf8').split('\n')[0]?.trim().split(/\s+/).slice(1).map(Number) ?? [];
  const idle = (fields[3] ?? 0) + (fields[4] ?? 0);
  const total = fields.reduce((a, b) => a + b, 0);
  const before = lastCpu;
  lastCpu = [idle, total];
  if (!before) return 0;
  const dTotal = total - (before[1] ?? 0);
  return dTotal > 0 ? ((dTotal - (idle - (before[0] ?? 0))) / dTotal) * 100 * cpus().length : 0;
}

/** The lock waits seen, grouped by who waited for what, with the statement that held it. */
function printWaits(say: (line: string) => void, waits: LockWait[]) {
  if (!waits.length) {
    say('   lock waits sampled every 100 ms: none seen');
    return;
  }
  const groups = new Map<string, { n: number; longest: number }>();
  for (const w of waits) {
    const key = `${w.waiter}  waits for ${w.lock}, held by (${w.blockerState}) ${w.blocker}`;
    const g = groups.get(key) ?? { n: 0, longest: 0 };
    g.n++;
    g.longest = Math.max(g.longest, w.waitedMs);
    groups.set(key, g);
  }
  say(`   lock waits sampled every 100 ms (${waits.length} samples; samples, longest wait seen):`);
  for (const [key, g] of [...groups].sort((a, b) => b[1].n - a[1].n).slice(0, 10)) {
    say(`   ${String(g.n).padStart(5)} ${`${g.longest} ms`.padStart(9)}  ${key}`);
  }
}

/**
 * A users file: `users`, 1 in 200 asking for an invitation (as the plain import bench's users); `invited`,
 * every row asking for one, 9 in 10 as employees or contractors (a paid seat each), 1 in 10 as clients.
 * Each file has its own emails, so every row creates a user.
 */
function generate(kind: 'users' | 'invited', rows: number, fileNo: number): Buffer {
  const lines = ['type,first_name,last_name,email,role,permission_set,title,phone,send_invitation'];
  for (let i = 0; i < rows; i++) {
    const role = i % 10 === 9 ? 'client' : i % 2 ? 'contractor' : 'employee';
    const set = role === 'client' ? 'Client' : ['Member', 'Manager', ''][i % 3];
    const invite = kind === 'invited' || i % 200 === 0 ? 'yes' : 'no';
    lines.push(
      `user,First${i},"Last, ${i}",f${fileNo}.user${i}@bench.test,${role},${set},Title ${i % 50},+1 555 ${String(i).padStart(7, '0')},${invite}`,
    );
  }
  return Buffer.from(`${lines.join('\r\n')}\r\n`);
}

function lastMessage(messages: PostedMessage[], match: (m: PostedMessage) => boolean | undefined) {
  return messages.findLast((m) => Boolean(match(m)));
}

async function waitFor<T>(check: () => T | undefined, what: string): Promise<T> {
  const start = Date.now();
  for (;;) {
    const value = check();
    if (value) return value;
    if (Date.now() - start > PHASE_TIMEOUT_MS) throw new Error(`gave up waiting for ${what}`);
    await sleep(50);
  }
}

function summary(values: number[]) {
  const sorted = [...values].sort((a, b) => a - b);
  const q = (p: number) => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? Number.NaN;
  return { p50: q(0.5), p99: q(0.99), max: sorted.at(-1) ?? Number.NaN };
}

function ms(v: number) {
  return `${Number.isNaN(v) ? '-' : v.toFixed(0)} ms`.padStart(10);
}

function sleep(ms: number) {
  return new Promise((r) => setTimeout(r, ms));
}

async function uptimeLoad(): Promise<string> {
  const { loadavg } = await import('node:os');
  return loadavg()
    .map((v) => v.toFixed(1))
    .join(' ');
}

if (process.env.BENCH_ROLE === 'app') {
  await runApp();
} else {
  await main();
}
