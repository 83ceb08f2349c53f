/**
 * How fast Roster's signed webhooks reach a receiver on this machine, next to what that receiver takes
 * from a plain HTTP client loop.
 *
 * The receiver verifies every request with the `standardwebhooks` Webhook class, as a customer's would.
 * People changes are real ones (deactivate, reactivate) made through Roster's services, so each goes
 * through the audit log, the outbox trigger and the delivery jobs. Two runs of BENCH_CHANGES changes
 * (default 10,000, over BENCH_PEOPLE people, 5 changes each by default):
 *
 * - backlog: the changes are made while no instance delivers webhooks (Roster runs without the webhooks
 *   feature), then an instance with it starts: events delivered per second while it drains the outbox.
 * - live: the changes are made while it delivers: the delay from each change (its audit time) to its
 *   arrival at the receiver, p50 and p99, and the rate.
 * - reference: the same bodies POSTed and signed by a plain loop of `fetch` calls, as many at once as
 *   Roster sends to one endpoint (16).
 *
 *   node bench/webhooks.ts            (with node_modules/.bin on PATH, for Node 24; Postgres on 127.0.0.1)
 *   BENCH_CHANGES=2000 node bench/webhooks.ts
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import pg from 'pg';
import { Webhook } from 'standardwebhooks';
import { type Roster, startRoster } from '../src/app.ts';
import { loadConfig } from '../src/config.ts';
import { query, sql } from '../src/db/sql.ts';
import { Account } from '../src/features/accounts/account.entity.ts';
import { features } from '../src/features/index.ts';
import type { Actor } from '../src/features/seats/seat.service.ts';
import { createWebhooksFeature } from '../src/features/webhooks/index.ts';
import { newSecret } from '../src/features/webhooks/webhook.endpoints.ts';
import { createLogger } from '../src/shared/logger.ts';
import { DEFAULT_MEMBERS } from '../test/support/app.ts';
import { startSlackStandin } from '../test/support/slack-standin.ts';
import { startSmtpSink } from '../test/support/smtp-sink.ts';

const CHANGES = Math.max(100, Math.min(Number(process.env.BENCH_CHANGES ?? 10_000), 100_000));
const PEOPLE = Math.max(1, Number(process.env.BENCH_PEOPLE ?? Math.ceil(CHANGES / 5)));
const WRITERS = 8;
const CONCURRENCY = 16;
const TARGET_RATIO = 0.5;
const TARGET_P99_MS = 1000;

const adminUrl = process.env.BENCH_ADMIN_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const dbName = `roster_bench_${randomBytes(4).toString('hex')}`;
const admin = new pg.Client({ connectionString: adminUrl });
await admin.connect();
await admin.query(`create database "${dbName}"`);
const dbUrl = new URL(adminUrl);
dbUrl.pathname = `/${dbName}`;

const secret = newSecret();
const verifier = new Webhook(secret);

/** The receiver: verifies, records each webhook-id's arrival and its delay from the change. */
const arrivals = new Map<string, number>();
const delays: number[] = [];
const bodies: string[] = [];
let duplicates = 0;
let rejected = 0;
const receiver = createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    const body = Buffer.concat(chunks).toString('utf8');
    try {
      const payload = verifier.verify(body, req.headers as Record<string, string>) as any;
      const id = String(req.headers['webhook-id']);
      if (id.startsWith('ref_')) {
        res.writeHead(204).end();
        return;
      }
      if (arrivals.has(id)) duplicates += 1;
      else {
        const now = Date.now();
        arrivals.set(id, now);
        delays.push(now - Date.parse(payload.data.change.at));
        if (bodies.length < CHANGES) bodies.push(body);
      }
      res.writeHead(204).end();
    } catch {
      rejected += 1;
      res.writeHead(400).end();
    }
  });
});
await new Promise<void>((ok) => receiver.listen(0, '127.0.0.1', () => ok()));
const receiverUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hooks`;

const standin = await startSlackStandin({
  members: DEFAULT_MEMBERS,
  teamId: 'T0001',
  botToken: 'xoxb-bench',
});
const smtp = await startSmtpSink();
const start = (withWebhooks: boolean) =>
  startRoster({
    config: loadConfig({
      SLACK_SIGNING_SECRET: 'bench-secret',
      SLACK_BOT_TOKEN: 'xoxb-bench',
      SLACK_API_URL: standin.apiUrl,
      DATABASE_URL: dbUrl.toString(),
      SMTP_URL: smtp.url,
      PORT: '0',
      // A free port is picked; the links the bench never opens need an address of their own.
      PUBLIC_URL: 'http://localhost',
      LOG_LEVEL: 'silent',
      // The receiver is on this machine.
      ALLOW_PRIVATE_URLS: 'true',
    }),
    logger: createLogger('silent'),
    host: '127.0.0.1',
    features: withWebhooks
      ? features.map((f) => (f.name === 'webhooks' ? createWebhooksFeature() : f))
      : features.filter((f) => f.name !== 'webhooks'),
  });

const actor: Actor = { slackUserId: 'UADMIN', isAdmin: true, surface: 'slack' };

/** CHANGES changes, WRITERS at a time, each person's in turn: deactivate, reactivate, deactivate… */
async function makeChanges(roster: Roster, ids: string[], offset: number): Promise<number> {
  const account = await roster.orm.em.fork().findOneOrFail(Account, { teamId: 'T0001' });
  const rounds = Math.ceil(CHANGES / ids.length);
  let made = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: WRITERS }, async (_, w) => {
      for (let r = 0; r < rounds; r++) {
        for (let i = w; i < ids.length; i += WRITERS) {
          if (made >= CHANGES) return;
          made += 1;
          const em = roster.orm.em.fork();
          if ((r + offset) % 2 === 0) await roster.deps.person.deactivate(em, account, actor, ids[i]!);
          else await roster.deps.people.reactivate(em, account, actor, ids[i]!);
        }
      }
    }),
  );
  return (performance.now() - started) / 1000;
}

const waitFor = async (count: number) => {
  while (arrivals.size < count) await new Promise((r) => setTimeout(r, 20));
};
const pct = (xs: number[], p: number) => {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))]!;
};

let roster: Roster | undefined;
try {
  // Setup and the backlog, made with no instance delivering.
  roster = await start(false);
  const em = roster.orm.em.fork();
  const account = await em.findOneOrFail(Account, { teamId: 'T0001' });
  await query(
    em,
    sql`insert into app_user (id, account_id, email, role, status)
        select gen_random_uuid(), ${account.id}, 'p' || g || '@bench.test', 'client', 'active'
        from generate_series(1, ${PEOPLE}) g`,
  );
  const ids = (
    await query<{ id: string }>(em, sql`select id from app_user where account_id = ${account.id}`)
  ).map((r) => r.id);
  await query(
    em,
    sql`insert into webhook_endpoint (id, account_id, url, secret, created_by)
        values (${randomUUID()}, ${account.id}, ${receiverUrl}, ${secret}, 'bench')`,
  );
  const madeIn = await makeChanges(roster, ids, 0);
  await roster.stop();
  console.log(
    `backlog: ${CHANGES} changes over ${ids.length} people made in ${madeIn.toFixed(1)} s (${(CHANGES / madeIn).toFixed(0)}/s), nothing delivered yet`,
  );

  const startedAt = Date.now();
  roster = await start(true);
  const started = Date.now();
  await waitFor(CHANGES);
  // From the first event's arrival to the last's: the instance starts delivering while it starts up.
  const times = [...arrivals.values()];
  const first = Math.min(...times);
  const drain = Math.max(0.001, (Math.max(...times) - first) / 1000);
  const drainRate = CHANGES / drain;
  console.log(
    `backlog drained: ${CHANGES} events in ${drain.toFixed(1)} s from the first one's arrival, ${((first - startedAt) / 1000).toFixed(1)} s after the instance began to start (it was ready in ${((started - startedAt) / 1000).toFixed(1)} s) = ${drainRate.toFixed(0)} events/s`,
  );

  // Live: changes while it delivers.
  delays.length = 0;
  const liveStarted = performance.now();
  // Each person ends the backlog deactivated after an odd number of rounds: the live run starts with the other.
  const liveMade = await makeChanges(roster, ids, Math.ceil(CHANGES / ids.length) % 2);
  await waitFor(2 * CHANGES);
  const live = (performance.now() - liveStarted) / 1000;
  console.log(
    `live: ${CHANGES} changes in ${liveMade.toFixed(1)} s, all delivered after ${live.toFixed(1)} s = ${(CHANGES / live).toFixed(0)} events/s; change → delivery p50 ${pct(delays, 50)} ms, p99 ${pct(delays, 99)} ms (target p99 < ${TARGET_P99_MS} ms)`,
  );

  // Reference: the receiver's rate from a plain signing fetch loop, same bodies, same concurrency.
  const refStarted = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      for (;;) {
        const i = next++;
        if (i >= bodies.length) return;
        const id = `ref_${i}`;
        const now = new Date();
        const res = await fetch(receiverUrl, {
          method: 'POST',
          headers: {
            'content-type': 'application/json',
            'webhook-id': id,
            'webhook-timestamp': String(Math.floor(now.getTime() / 1000)),
            'webhook-signature': verifier.sign(id, now, bodies[i]!),
          },
          body: bodies[i]!,
        });
        await res.arrayBuffer();
      }
    }),
  );
  const refRate = bodies.length / ((performance.now() - refStarted) / 1000);
  console.log(`reference: plain fetch loop, ${CONCURRENCY} at once: ${refRate.toFixed(0)} requests/s`);
  console.log(
    `ratio: backlog drain ${(drainRate / refRate).toFixed(2)}× the plain loop (target ≥ ${TARGET_RATIO}×); duplicates ${duplicates}, bad signatures ${rejected}`,
  );
} finally {
  await roster?.stop();
  await standin.close();
  await smtp.close();
  receiver.closeAllConnections();
  receiver.close();
  await admin.query(`drop database if exists "${dbName}" with (force)`);
  await admin.end();
}
