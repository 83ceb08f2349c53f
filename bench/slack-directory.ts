/**
 * What Roster costs Slack's Web API in a large workspace: the directory sync, one seat request and one
 * 100-address `/invite`, against a Slack stand-in with 1,000 and with 100,000 members that enforces Slack's
 * rate-limit tiers (Tier 2 about 20 calls a minute for users.list, chat.postMessage about 1 a second per
 * channel, …). Prints the calls by method, 429s, what pacing through Postgres cost, and the time.
 *
 * To keep a run short, the stand-in's windows are shortened BENCH_SCALE times (10 by default) and Roster
 * paces itself as many times faster; each time is printed as measured and scaled back to Slack's real
 * limits (measured × BENCH_SCALE: the paced part dominates, so this slightly overstates the real time).
 *
 *   node bench/slack-directory.ts        (node_modules/.bin first on PATH; Postgres on 127.0.0.1:5432)
 *   BENCH_SIZES ("1000,100000"), BENCH_SCALE ("10"; 1 runs at Slack's real pace)
 *
 * Everything runs on 127.0.0.1: Roster in this process, the stand-in, an SMTP sink, a scratch database
 * copied per size and dropped at the end.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { type Roster, startRoster } from '../src/app.ts';
import { loadConfig } from '../src/config.ts';
import { createLogger } from '../src/shared/logger.ts';
import { bucketsFor } from '../src/slack/pacing.ts';
import { DEFAULT_MEMBERS } from '../test/support/app.ts';
import { SlackDriver } from '../test/support/slack-driver.ts';
import { type Member, startSlackStandin } from '../test/support/slack-standin.ts';
import { startSmtpSink } from '../test/support/smtp-sink.ts';

const SIZES = (process.env.BENCH_SIZES ?? '1000,100000').split(',').map(Number);
const TIER2_PER_MINUTE = 20;
const SCALE = Number(process.env.BENCH_SCALE ?? 10);
/**
 * The sync at Slack's real limits: Roster's own pace for users.list (a share of Tier 2, after a small burst)
 * sets it once the pages outnumber the burst, with the work on each page done while waiting for the next
 * turn; the time measured against shortened windows is the floor otherwise.
 */
function syncAtRealPace(pages: number, measuredSeconds: number): string {
  const [bucket] = bucketsFor('users.list', {});
  if (!bucket) return '';
  const paced = (Math.max(0, pages - bucket.burst) / bucket.perMinute) * 60;
  const seconds = SCALE === 1 ? measuredSeconds : Math.max(measuredSeconds, paced + measuredSeconds / pages);
  const how = `Roster paces users.list at ${bucket.perMinute.toFixed(0)} a minute after a burst of ${bucket.burst}`;
  return SCALE === 1
    ? `${seconds.toFixed(1)} s`
    : `${measuredSeconds.toFixed(1)} s measured with windows ${SCALE}× shorter, ≈ ${seconds.toFixed(0)} s (${(seconds / 60).toFixed(1)} min) at Slack's real limits (${how})`;
}
const adminUrl = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const SECRET = 'bench-signing-secret';
const TOKEN = 'xoxb-bench-token';

async function waitFor<T>(
  what: string,
  check: () => Promise<T | undefined | null | false>,
  timeoutMs: number,
): Promise<T> {
  const start = Date.now();
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() - start > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function run(size: number): Promise<void> {
  const dbName = `roster_bench_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  await admin.query(`create database "${dbName}"`);
  const url = new URL(adminUrl);
  url.pathname = `/${dbName}`;
  const crowd: Member[] = Array.from({ length: size }, (_, i) => ({
    id: `UCROWD${String(i).padStart(6, '0')}`,
    name: `person${i}`,
    email: `person${i}@acme.test`,
  }));
  const standin = await startSlackStandin({
    members: [...DEFAULT_MEMBERS, ...crowd],
    teamId: 'T0001',
    botToken: TOKEN,
    tiers: { scale: SCALE },
  });
  const smtp = await startSmtpSink();
  let roster: Roster | undefined;
  try {
    const config = loadConfig({
      SLACK_SIGNING_SECRET: SECRET,
      SLACK_BOT_TOKEN: TOKEN,
      SLACK_API_URL: standin.apiUrl,
      DATABASE_URL: url.toString(),
      SMTP_URL: smtp.url,
      PORT: '0',
      // A free port is picked; the links the bench never opens need an address of their own.
      PUBLIC_URL: 'http://localhost',
      LOG_LEVEL: 'silent',
    });
    const started = performance.now();
    roster = await startRoster({
      config,
      logger: createLogger('silent'),
      host: '127.0.0.1',
      processBeforeResponse: true,
      slackPaceScale: SCALE,
    });
    const app = roster;
    const db = new pg.Client({ connectionString: url.toString() });
    db.on('error', () => {});
    await db.connect();
    await waitFor(
      'the directory sync',
      async () => {
        const { rows } = await db.query('select finished_at from slack_directory_sync');
        return rows[0]?.finished_at;
      },
      600_000,
    );
    const syncSeconds = (performance.now() - started) / 1000;
    const pages = standin.callsTo('users.list').length;
    const slack = new SlackDriver({ appUrl: app.url, signingSecret: SECRET, standin, teamId: 'T0001' });
    await db.query(`update account set seat_limit = 1000`);

    const count = () => {
      const byMethod = new Map<string, number>();
      for (const c of standin.calls) byMethod.set(c.method, (byMethod.get(c.method) ?? 0) + 1);
      return byMethod;
    };
    const pacing = () => ({ ...app.pacer.stats, limited: standin.rateLimited.length });
    const pacedSince = (before: ReturnType<typeof pacing>) => {
      const now = pacing();
      const queries = now.queries - before.queries;
      const ms = now.queryMs - before.queryMs;
      return `429s ${now.limited - before.limited}; pacing: ${queries} bucket queries, ${queries ? (ms / queries).toFixed(2) : '0'} ms each, ${now.waits - before.waits} waits totalling ${((now.waitedMs - before.waitedMs) / 1000).toFixed(1)} s`;
    };
    const syncPacing = pacedSince({ taken: 0, waits: 0, waitedMs: 0, queries: 0, queryMs: 0, limited: 0 });
    // The seat request and the /invite run at Slack's real limits: they are short enough.
    standin.tierScale = 1;
    app.slack.scale = 1;
    const since = (before: Map<string, number>) =>
      [...count()]
        .map(([m, n]) => [m, n - (before.get(m) ?? 0)] as const)
        .filter(([, n]) => n > 0)
        .map(([m, n]) => `${m} ${n}`)
        .join(', ');

    // One seat request: a member invites an employee; it is filed and posted to every admin.
    let before = count();
    let paced = pacing();
    let t0 = performance.now();
    await slack.command('/invite', 'newcomer@acme.test employee', { user: 'UCROWD000042' });
    await slack.submitView(standin.lastOpenedView(), {}, { user: 'UCROWD000042' });
    await waitFor(
      'the seat request posted',
      async () => {
        const { rows } = await db.query(
          `select jsonb_array_length(messages) as n from seat_request where email = 'newcomer@acme.test'`,
        );
        return rows[0]?.n >= 2;
      },
      60_000,
    );
    const requestMs = performance.now() - t0;
    const requestCalls = since(before);
    const requestPacing = pacedSince(paced);

    // One /invite of 100 workspace members by an admin, until every DM is delivered.
    before = count();
    paced = pacing();
    t0 = performance.now();
    const emails = crowd.slice(100, 200).map((m) => m.email);
    await slack.command('/invite', '', { user: 'UADMIN' });
    await slack.submitView(
      standin.lastOpenedView(),
      { emails: emails.join(' '), role: 'client' },
      { user: 'UADMIN' },
    );
    await waitFor(
      '100 DMs delivered',
      async () => {
        const { rows } = await db.query(
          `select count(*)::int as n from invitation where delivered_at is not null`,
        );
        return rows[0]?.n >= 100;
      },
      120_000,
    );
    const inviteMs = performance.now() - t0;
    const inviteCalls = since(before);
    const invitePacing = pacedSince(paced);
    await db.end();

    console.log(`\n${(size + DEFAULT_MEMBERS.length).toLocaleString('en-US')} members`);
    console.log(
      `  directory sync at start: ${pages} users.list pages in ${syncAtRealPace(pages, syncSeconds)} (Slack's own floor, ${TIER2_PER_MINUTE} calls in any minute: ${((Math.max(0, pages - TIER2_PER_MINUTE) / TIER2_PER_MINUTE) * 60).toFixed(0)} s); ${syncPacing}`,
    );
    console.log(
      `  one seat request, filed and posted to the admins, at Slack's real limits: ${(requestMs / 1000).toFixed(1)} s; calls: ${requestCalls}; ${requestPacing}`,
    );
    console.log(
      `  one /invite of 100 members, until every DM is delivered, at Slack's real limits: ${(inviteMs / 1000).toFixed(1)} s; calls: ${inviteCalls}; ${invitePacing}`,
    );
  } catch (err) {
    console.error(`${size} members: the run failed:`, err);
    process.exitCode = 1;
  } finally {
    await roster?.stop();
    await standin.close();
    await smtp.close();
    await admin.query(`drop database if exists "${dbName}" with (force)`);
    await admin.end();
  }
}

console.log(
  `Roster against a Slack stand-in enforcing Slack's tiers${SCALE === 1 ? '' : `, windows shortened ${SCALE} times`}, ${new Date().toISOString()}`,
);
for (const size of SIZES) await run(size);
