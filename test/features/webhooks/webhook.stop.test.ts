import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { initORM, type ORM } from '../../../src/db/orm.ts';
import { query, sql } from '../../../src/db/sql.ts';
import { ensureAccount } from '../../../src/features/accounts/account.service.ts';
import type { Actor } from '../../../src/features/seats/seat.service.ts';
import { DEFAULT_POLICY, WebhookSender } from '../../../src/features/webhooks/webhook.delivery.ts';
import { WebhookEndpoints } from '../../../src/features/webhooks/webhook.endpoints.ts';
import { createLogger } from '../../../src/shared/logger.ts';
import { eventually } from '../../support/app.ts';
import { createTestDatabase, type TestDatabase } from '../../support/database.ts';

// Roster stops while an endpoint's deliveries go out: the sends under way end, nothing more is claimed or
// sent, and what was claimed but not sent goes back to the outbox untouched, for the next start. The same
// when an admin deletes or disables the endpoint meanwhile: nothing more reaches the receiver.

let db: TestDatabase;
let orm: ORM;
let receiver: Server;
let url: string;
let received = 0;
beforeAll(async () => {
  db = await createTestDatabase();
  orm = await initORM(db.url);
  // A receiver that takes a second to answer each delivery.
  receiver = createServer((req, res) => {
    req.resume();
    received += 1;
    setTimeout(() => res.writeHead(200).end(), 1000);
  });
  await new Promise<void>((ok) => receiver.listen(0, '127.0.0.1', ok));
  url = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`;
});
afterAll(async () => {
  receiver.closeAllConnections();
  await new Promise((r) => receiver.close(r));
  await orm.close(true);
  await db.drop();
});

/** An endpoint of a new account `teamId` with twelve deliveries waiting, and a sender two at a time. */
async function twelveWaiting(teamId: string) {
  const em = orm.em.fork();
  const account = await ensureAccount(em, teamId);
  const endpointId = randomUUID();
  const secret = `whsec_${Buffer.alloc(32, 1).toString('base64')}`;
  await query(
    em,
    sql`insert into webhook_endpoint (id, account_id, url, secret) values (${endpointId}, ${account.id}, ${url}, ${secret})`,
  );
  for (let n = 0; n < 12; n++) {
    await query(
      em,
      sql`insert into webhook_delivery (endpoint_id, account_id, msg_id, event_type, subject, payload)
          values (${endpointId}, ${account.id}, ${`msg_${teamId}_${n}`}, 'webhook.test', ${`s${n}`}, '{}'::jsonb)`,
    );
  }
  const sender = new WebhookSender({
    policy: { ...DEFAULT_POLICY, concurrency: 2 },
    logger: createLogger('silent'),
    allowPrivate: true,
    onDisabled: async () => {},
  });
  return { em, account, endpointId, sender };
}

it('ends the sends under way and hands back what was claimed but not sent', async () => {
  const { em, endpointId, sender } = await twelveWaiting('T_WEBHOOK_STOP');
  const stop = new AbortController();
  const running = sender.run(orm.em.fork(), endpointId, stop.signal);
  await eventually(() => received >= 2);
  stop.abort();
  const { attempts, more } = await running;

  const rows = await query<{ status: string; attempts: number; leased: boolean }>(
    em,
    sql`select status, attempts, lease_until is not null as leased from webhook_delivery
        where endpoint_id = ${endpointId} order by id`,
  );
  const delivered = rows.filter((r) => r.status === 'delivered');
  // The two under way were answered and recorded; no other was sent after the stop.
  expect(received).toBe(2);
  expect(attempts).toBe(2);
  expect(delivered).toHaveLength(2);
  expect(more).toBe(true);
  // The others are as they were: pending, no attempt counted, no lease that would hold them back.
  expect(rows.filter((r) => r.status !== 'delivered')).toEqual(
    Array.from({ length: 10 }, () => ({ status: 'pending', attempts: 0, leased: false })),
  );
});

for (const how of ['deleted', 'disabled'] as const) {
  it(`sends nothing more once an admin has ${how} the endpoint, beyond the sends under way`, async () => {
    received = 0;
    const { em, account, endpointId, sender } = await twelveWaiting(`T_WEBHOOK_${how.toUpperCase()}`);
    const running = sender.run(orm.em.fork(), endpointId);
    await eventually(() => received >= 2);

    // The admin clicks Delete, or Disable, while two requests wait for their answer.
    const admin: Actor = { slackUserId: 'UADMIN', isAdmin: true, surface: 'slack' };
    const endpoints = new WebhookEndpoints();
    if (how === 'deleted') await endpoints.remove(orm.em.fork(), account, admin, endpointId);
    else await endpoints.setEnabled(orm.em.fork(), account, admin, endpointId, false);
    const { attempts, more } = await running;

    // Only the two under way reached the receiver, and nothing is left for this run to come back for.
    expect(received).toBe(2);
    expect(attempts).toBe(2);
    expect(more).toBe(false);
    const rows = await query<{ status: string; attempts: number; leased: boolean }>(
      em,
      sql`select status, attempts, lease_until is not null as leased from webhook_delivery
          where endpoint_id = ${endpointId} order by id`,
    );
    if (how === 'deleted') {
      expect(rows).toEqual([]);
    } else {
      // A disabled endpoint's deliveries wait, untried and free to claim, for it to be enabled again.
      expect(rows.filter((r) => r.status !== 'delivered')).toEqual(
        Array.from({ length: 10 }, () => ({ status: 'pending', attempts: 0, leased: false })),
      );
    }
  });
}
