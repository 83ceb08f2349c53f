/**
 * How fast Roster acknowledges Slack, next to a bare Bolt app of the same Bolt version, in the same run and
 * under the same load. Both run as in production (Slack's HTTP request is answered before the handler's slow
 * work: processBeforeResponse false), against a Slack stand-in on 127.0.0.1 and a scratch database.
 *
 * The load is signed `/seats` slash commands from a member, `CONCURRENCY` at a time, sent in alternating rounds
 * to the bare app and to Roster so that both see the same machine noise. The bare app acks and replies through
 * response_url, as a real command must; Roster does its whole `/seats` (seat count, pending requests, admin
 * check, reply). Each round waits until every reply has reached the stand-in before the next starts, so one
 * app's leftover work never lands in the other's figures.
 *
 *   node bench/slack-ack.ts                  (the machine's Postgres on 127.0.0.1:5432, user postgres)
 *   BENCH_REQUESTS=6000 BENCH_ROUNDS=1 node bench/slack-ack.ts   (one long run instead of alternating rounds)
 */
import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { App, HTTPReceiver, LogLevel } from '@slack/bolt';
import pg from 'pg';
import { startRoster } from '../src/app.ts';
import { loadConfig } from '../src/config.ts';
import { createLogger } from '../src/shared/logger.ts';
import { DEFAULT_MEMBERS } from '../test/support/app.ts';
import { SlackDriver } from '../test/support/slack-driver.ts';
import { startSlackStandin } from '../test/support/slack-standin.ts';
import { startSmtpSink } from '../test/support/smtp-sink.ts';

const REQUESTS = Math.min(Number(process.env.BENCH_REQUESTS ?? 2000), 20_000);
const CONCURRENCY = Math.min(Number(process.env.BENCH_CONCURRENCY ?? 20), 100);
const ROUNDS = Math.max(1, Math.min(Number(process.env.BENCH_ROUNDS ?? 4), 20));
const TARGET_P99_RATIO = 2;
const TARGET_THROUGHPUT_RATIO = 0.5;
const SECRET = 'bench-secret';
const TOKEN = 'xoxb-bench';

const adminUrl = process.env.BENCH_ADMIN_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const dbName = `roster_bench_${randomBytes(4).toString('hex')}`;
const admin = new pg.Client({ connectionString: adminUrl });
await admin.connect();
await admin.query(`create database "${dbName}"`);
const dbUrl = new URL(adminUrl);
dbUrl.pathname = `/${dbName}`;

const standin = await startSlackStandin({ members: DEFAULT_MEMBERS, teamId: 'T0001', botToken: TOKEN });
const smtp = await startSmtpSink();
const roster = await startRoster({
  config: loadConfig({
    SLACK_SIGNING_SECRET: SECRET,
    SLACK_BOT_TOKEN: TOKEN,
    SLACK_API_URL: standin.apiUrl,
    DATABASE_URL: dbUrl.toString(),
    SMTP_URL: smtp.url,
    PORT: '0',
    // A free port is picked; the links the bench never opens need an address of their own.
    PUBLIC_URL: 'http://localhost',
    LOG_LEVEL: 'silent',
  }),
  logger: createLogger('silent'),
  host: '127.0.0.1',
  processBeforeResponse: false,
});

// The reference: Bolt as its README shows it, with the same version, receiver and production setting.
const bareReceiver = new HTTPReceiver({ signingSecret: SECRET, processBeforeResponse: false });
const bare = new App({
  token: TOKEN,
  receiver: bareReceiver,
  logLevel: LogLevel.ERROR,
  clientOptions: { slackApiUrl: standin.apiUrl },
});
bare.command('/seats', async ({ ack, respond }) => {
  await ack();
  await respond({ response_type: 'ephemeral', text: 'Paid seats: 0 of 0 used, 0 free.' });
});
const bareServer = (await bare.start({ port: 0, host: '127.0.0.1' })) as import('node:http').Server;
const bareUrl = `http://127.0.0.1:${(bareServer.address() as AddressInfo).port}`;

const drivers = {
  bare: new SlackDriver({ appUrl: bareUrl, signingSecret: SECRET, standin }),
  roster: new SlackDriver({ appUrl: roster.url, signingSecret: SECRET, standin }),
};
type Name = keyof typeof drivers;
const acks: Record<Name, number[]> = { bare: [], roster: [] };
const busy: Record<Name, number> = { bare: 0, roster: 0 };
const done: Record<Name, number> = { bare: 0, roster: 0 };
let failures = 0;

async function waitForReplies(expected: number, timeoutMs = 120_000): Promise<void> {
  const start = Date.now();
  while (standin.responses.length < expected) {
    if (Date.now() - start > timeoutMs)
      throw new Error(`only ${standin.responses.length} of ${expected} replies`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** Sends `n` commands to one app, `CONCURRENCY` in flight; records ack times and the time until all replies. */
async function round(name: Name, n: number): Promise<void> {
  const driver = drivers[name];
  const expected = standin.responses.length + n;
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < n) {
        next++;
        const t0 = performance.now();
        const res = await driver.command('/seats', '', { user: 'UMEMBER' });
        acks[name].push(performance.now() - t0);
        if (res.status !== 200) failures++;
      }
    }),
  );
  busy[name] += performance.now() - started;
  await waitForReplies(expected);
  done[name] += performance.now() - started;
}

const quantile = (sorted: number[], p: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!;

try {
  // Warm both up (JIT, pools, caches) outside the figures.
  await round('bare', 200);
  await round('roster', 200);
  for (const name of ['bare', 'roster'] as const) {
    acks[name] = [];
    busy[name] = 0;
    done[name] = 0;
  }
  const per = Math.ceil(REQUESTS / ROUNDS);
  for (let r = 0; r < ROUNDS; r++) {
    await round('bare', per);
    await round('roster', per);
  }

  const figures = (name: Name) => {
    const sorted = [...acks[name]].sort((a, b) => a - b);
    return {
      p50: quantile(sorted, 0.5),
      p99: quantile(sorted, 0.99),
      acksPerSecond: (sorted.length / busy[name]) * 1000,
      repliesPerSecond: (sorted.length / done[name]) * 1000,
    };
  };
  const b = figures('bare');
  const r = figures('roster');
  const ms = (v: number) => `${v.toFixed(1)} ms`.padStart(10);
  const rate = (v: number) => `${v.toFixed(0)}/s`.padStart(10);
  const ratio = (v: number) => `${v.toFixed(2)}×`.padStart(8);
  console.log(
    `\n${per * ROUNDS} signed /seats commands per app, ${CONCURRENCY} concurrent, ${ROUNDS === 1 ? 'one round each' : `${ROUNDS} alternating rounds`}, processBeforeResponse false\n`,
  );
  console.log(`${''.padEnd(22)}${'bare Bolt'.padStart(10)}${'Roster'.padStart(10)}   ratio   target`);
  const p99Ok = r.p99 <= TARGET_P99_RATIO * b.p99;
  const tputOk = r.acksPerSecond >= TARGET_THROUGHPUT_RATIO * b.acksPerSecond;
  console.log(`${'ack p50'.padEnd(22)}${ms(b.p50)}${ms(r.p50)}${ratio(r.p50 / b.p50)}`);
  console.log(
    `${'ack p99'.padEnd(22)}${ms(b.p99)}${ms(r.p99)}${ratio(r.p99 / b.p99)}   ≤ ${TARGET_P99_RATIO}×  ${p99Ok ? 'met' : 'MISSED'}`,
  );
  console.log(
    `${'acks per second'.padEnd(22)}${rate(b.acksPerSecond)}${rate(r.acksPerSecond)}${ratio(r.acksPerSecond / b.acksPerSecond)}   ≥ ${TARGET_THROUGHPUT_RATIO}×  ${tputOk ? 'met' : 'MISSED'}`,
  );
  console.log(
    `${'replies per second'.padEnd(22)}${rate(b.repliesPerSecond)}${rate(r.repliesPerSecond)}${ratio(r.repliesPerSecond / b.repliesPerSecond)}   (whole handler done; no target)`,
  );
  console.log('\nAck p99 during a 100k-row import against idle (target 1.2×): bench/ack-during-import.ts.');
  if (failures) console.log(`${failures} requests were not answered 200`);
} finally {
  await bare.stop();
  await roster.stop();
  await standin.close();
  await smtp.close();
  await admin.query(`drop database if exists "${dbName}" with (force)`);
  await admin.end();
}
