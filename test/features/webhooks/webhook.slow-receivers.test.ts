import { randomUUID } from 'node:crypto';
import { query, sql } from '../../../src/db/sql.ts';
import { MAX_ENDPOINTS } from '../../../src/features/webhooks/webhook.endpoints.ts';
import { eventually, startTestApp, type TestApp } from '../../support/app.ts';
import { featuresWith, type Receiver, startReceiver } from './support.ts';

// Receivers that never answer hold their own deliveries for the whole timeout; a healthy endpoint of the
// same account is not kept waiting behind them.
let t: TestApp;
let healthy: Receiver;
const stuck: Receiver[] = [];

beforeAll(async () => {
  healthy = await startReceiver({ path: '/healthy' });
  for (let i = 0; i < MAX_ENDPOINTS - 1; i++) {
    const receiver = await startReceiver({ path: `/stuck${i}` });
    receiver.mode = 'slow';
    stuck.push(receiver);
  }
  t = await startTestApp({
    seatLimit: 10,
    features: featuresWith({ timeoutMs: 6_000, jobBudgetMs: 12_000, sweepMs: 50, retryBaseMs: 100 }),
  });
  const account = await t.account();
  const secret = `whsec_${Buffer.alloc(32, 7).toString('base64')}`;
  healthy.secret = secret;
  for (const receiver of [...stuck, healthy]) {
    await query(
      t.em(),
      sql`insert into webhook_endpoint (id, account_id, url, secret) values (${randomUUID()}, ${account.id}, ${receiver.url}, ${secret})`,
    );
  }
});
afterAll(async () => {
  await t.stop();
  for (const receiver of [healthy, ...stuck]) await receiver.close();
});

it('delivers to a healthy endpoint at once while every other endpoint of the account never answers', async () => {
  const changes = () => healthy.received.filter((r) => r.type === 'seat_limit.changed').length;
  // Every endpoint gets the first event: the stuck ones hold it until their timeout.
  await t.slack.command('/seats', '11', { user: 'UADMIN' });
  await healthy.waitFor((r) => r.type === 'seat_limit.changed', 5_000);
  await t.slack.command('/seats', '12', { user: 'UADMIN' });
  const started = Date.now();
  await healthy.waitFor(() => changes() >= 2, 5_000);
  expect(Date.now() - started).toBeLessThan(3_000);
  // The stuck ones were tried too (they hold their deliveries, not the healthy one's): on a busy machine
  // the last of their jobs may start only after the healthy endpoint's second delivery.
  await eventually(() => stuck.every((r) => r.hits >= 1), 10_000);
});
