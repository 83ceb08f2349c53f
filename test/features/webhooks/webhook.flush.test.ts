import { randomUUID } from 'node:crypto';
import { initORM, type ORM } from '../../../src/db/orm.ts';
import { query, sql } from '../../../src/db/sql.ts';
import { ensureAccount } from '../../../src/features/accounts/account.service.ts';
import { DEFAULT_POLICY, WebhookSender } from '../../../src/features/webhooks/webhook.delivery.ts';
import { createLogger } from '../../../src/shared/logger.ts';
import { createTestDatabase, type TestDatabase } from '../../support/database.ts';

// Successes are recorded many at a time: an endpoint deleted while one of its deliveries was in flight
// must not fail the whole batch, which would leave the others pending and send them again.

let db: TestDatabase;
let orm: ORM;
beforeAll(async () => {
  db = await createTestDatabase();
  orm = await initORM(db.url);
});
afterAll(async () => {
  await orm.close(true);
  await db.drop();
});

it('records every other success of a batch when one endpoint was deleted meanwhile', async () => {
  const em = orm.em.fork();
  const account = await ensureAccount(em, 'T_FLUSH');
  const secret = `whsec_${Buffer.alloc(32, 1).toString('base64')}`;
  const endpoint = async () => {
    const id = randomUUID();
    await query(
      em,
      sql`insert into webhook_endpoint (id, account_id, url, secret) values (${id}, ${account.id}, 'https://example.com/h', ${secret})`,
    );
    return id;
  };
  const delivery = async (endpointId: string, n: number) => {
    const [row] = await query<{ id: string }>(
      em,
      sql`insert into webhook_delivery (endpoint_id, account_id, msg_id, event_type, subject, payload, attempts)
          values (${endpointId}, ${account.id}, ${`msg_${n}`}, 'webhook.test', ${`s${n}`}, '{}'::jsonb, 1) returning id`,
    );
    return {
      id: String(row!.id),
      account_id: account.id,
      msg_id: `msg_${n}`,
      event_type: 'webhook.test',
      payload: { type: 'webhook.test', timestamp: new Date().toISOString(), data: {} },
      attempts: 1,
    };
  };
  const [first, kept, deleted] = [await endpoint(), await endpoint(), await endpoint()];
  const rows = [await delivery(first, 1), await delivery(kept, 2), await delivery(deleted, 3)];
  await query(em, sql`delete from webhook_endpoint where id = ${deleted}`);

  const sender = new WebhookSender({
    policy: DEFAULT_POLICY,
    logger: createLogger('silent'),
    onDisabled: async () => {},
  });
  const ok = { ok: true, status: 200, error: null, durationMs: 5 };
  // The first success is being written while the other two arrive: those two are written together.
  const writing = sender.record(orm.em.fork(), first, rows[0]!, ok);
  const together = [
    sender.record(orm.em.fork(), kept, rows[1]!, ok),
    sender.record(orm.em.fork(), deleted, rows[2]!, ok),
  ];
  await writing;
  await Promise.all(together);

  const statuses = await query<{ endpoint_id: string; status: string }>(
    em,
    sql`select endpoint_id, status from webhook_delivery order by id`,
  );
  expect(statuses).toEqual([
    { endpoint_id: first, status: 'delivered' },
    { endpoint_id: kept, status: 'delivered' },
  ]);
  const attempts = await query<{ endpoint_id: string }>(
    em,
    sql`select endpoint_id from webhook_attempt order by id`,
  );
  expect(attempts.map((a) => a.endpoint_id)).toEqual([first, kept]);
});
