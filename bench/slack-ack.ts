/**
 * How fast Roster acknowledges Slack: the app runs as in production (Slack's HTTP request is answered before
 * the handler's slow work), against a Slack stand-in and a scratch database, and this script sends signed
 * slash commands, button clicks and events, printing the acknowledgement latency Slack would see.
 *
 *   node bench/slack-ack.ts          (uses the machine's Postgres on 127.0.0.1:5432, user postgres)
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { startRoster } from '../src/app.ts';
import { loadConfig } from '../src/config.ts';
import { Account } from '../src/features/accounts/account.entity.ts';
import { createLogger } from '../src/shared/logger.ts';
import { DEFAULT_MEMBERS } from '../test/support/app.ts';
import { SlackDriver } from '../test/support/slack-driver.ts';
import { startSlackStandin } from '../test/support/slack-standin.ts';
import { startSmtpSink } from '../test/support/smtp-sink.ts';

const adminUrl = process.env.BENCH_ADMIN_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const dbName = `roster_bench_${randomBytes(4).toString('hex')}`;
const admin = new pg.Client({ connectionString: adminUrl });
await admin.connect();
await admin.query(`create database "${dbName}"`);
const dbUrl = new URL(adminUrl);
dbUrl.pathname = `/${dbName}`;

const standin = await startSlackStandin({
  members: DEFAULT_MEMBERS,
  teamId: 'T0001',
  botToken: 'xoxb-bench',
});
const smtp = await startSmtpSink();
const roster = await startRoster({
  config: loadConfig({
    SLACK_SIGNING_SECRET: 'bench-secret',
    SLACK_BOT_TOKEN: 'xoxb-bench',
    SLACK_API_URL: standin.apiUrl,
    DATABASE_URL: dbUrl.toString(),
    SMTP_URL: smtp.url,
    PORT: '0',
    LOG_LEVEL: 'silent',
  }),
  logger: createLogger('silent'),
  host: '127.0.0.1',
});
const slack = new SlackDriver({ appUrl: roster.url, signingSecret: 'bench-secret', standin });

async function measure(
  label: string,
  n: number,
  concurrency: number,
  send: (i: number) => Promise<{ status: number }>,
) {
  const times: number[] = [];
  let next = 0;
  let failed = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < n) {
        const i = next++;
        const t0 = performance.now();
        const res = await send(i);
        times.push(performance.now() - t0);
        if (res.status !== 200) failed++;
      }
    }),
  );
  const total = (performance.now() - started) / 1000;
  times.sort((a, b) => a - b);
  const q = (p: number) => times[Math.min(times.length - 1, Math.floor(p * times.length))]!.toFixed(1);
  console.log(
    `${label.padEnd(34)} ${String(n).padStart(4)} req  conc ${String(concurrency).padStart(2)}  p50 ${q(0.5).padStart(6)} ms  p95 ${q(0.95).padStart(6)} ms  max ${times.at(-1)!.toFixed(1).padStart(6)} ms  ${(n / total).toFixed(0)} req/s${failed ? `  ${failed} not 200` : ''}`,
  );
}

try {
  const account = await roster.orm.em.fork().findOneOrFail(Account, { teamId: 'T0001' });
  await roster.deps.seats.setLimit(roster.orm.em.fork(), account, 1000, {
    slackUserId: 'UADMIN',
    isAdmin: true,
    surface: 'system',
  });
  await measure('/seats (warm-up)', 50, 1, () => slack.command('/seats', '', { user: 'UMEMBER' }));
  console.log('acknowledgement latency, as Slack sees it:');
  await measure('/seats', 300, 1, () => slack.command('/seats', '', { user: 'UMEMBER' }));
  await measure('/seats', 300, 10, () => slack.command('/seats', '', { user: 'UMEMBER' }));
  await measure('/invite (opens the modal)', 300, 10, () =>
    slack.command('/invite', 'ana@example.com', { user: 'UADMIN' }),
  );
  const view = standin.lastOpenedView();
  await measure('invite modal submitted (1 address)', 200, 10, (i) =>
    slack.submitView(
      { ...view, id: `VB${i}`, hash: `h${i}` },
      { emails: `bench${i}@example.com` },
      { user: 'UADMIN' },
    ),
  );
  await measure('app_home_opened event', 300, 10, () =>
    slack.event({ type: 'app_home_opened', user: 'UADMIN', tab: 'home' }),
  );
} finally {
  await roster.stop();
  await standin.close();
  await smtp.close();
  await admin.query(`drop database if exists "${dbName}" with (force)`);
  await admin.end();
}
