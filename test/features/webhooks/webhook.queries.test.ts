import { query, sql } from '../../../src/db/sql.ts';
import { ensureAccount } from '../../../src/features/accounts/account.service.ts';
import { features } from '../../../src/features/index.ts';
import { DUE_ENDPOINTS } from '../../../src/features/webhooks/webhook.delivery.ts';
import { WebhookEndpoints } from '../../../src/features/webhooks/webhook.endpoints.ts';
import { PRUNE_DELIVERIES } from '../../../src/features/webhooks/webhook.jobs.ts';
import { startTestApp, type TestApp } from '../../support/app.ts';

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp({ features: features.filter((f) => f.name !== 'webhooks') });
  const account = await t.account();
  const em = t.em();
  await query(
    em,
    sql`insert into webhook_endpoint (id, account_id, url, secret)
        select gen_random_uuid(), ${account.id}, 'https://hooks.example/' || n, 'whsec_x' from generate_series(1, 5) n`,
  );
  await query(
    em,
    sql`insert into webhook_delivery (endpoint_id, account_id, msg_id, event_type, subject, payload, status,
          next_attempt_at, delivered_at, created_at)
        select e.id, ${account.id}, 'msg_' || n, 'person.updated', 'person:' || (n % 5000), '{}'::jsonb,
          case when n % 100 = 0 then 'pending' when n % 97 = 0 then 'failed' else 'delivered' end,
          now() - make_interval(mins => n % 600) + case when n % 200 = 0 then interval '1 hour' else interval '0' end,
          case when n % 100 = 0 or n % 97 = 0 then null else now() - make_interval(secs => n * 27) end,
          now() - make_interval(secs => n * 27)
        from generate_series(1, 100000) n
        join lateral (select id from webhook_endpoint order by id offset n % 5 limit 1) e on true`,
  );
  await query(em, sql`analyze webhook_delivery`);
  await query(em, sql`analyze webhook_endpoint`);
}, 120_000);
afterAll(() => t.stop());

async function plan(statement: ReturnType<typeof sql>): Promise<string> {
  const rows = await query<{ 'QUERY PLAN': string }>(t.em(), sql`explain ${statement}`);
  return rows.map((r) => r['QUERY PLAN']).join('\n');
}

// A month of deliveries (100,000 here, delivered over 31 days, a few pending or given up): the sweep that
// runs every second and the daily prune must each read what they need, not the month.
describe('the statements over webhook deliveries, on a month of them', () => {
  it('finds endpoints with deliveries due through the pending index, never a scan of the deliveries', async () => {
    const due = await plan(DUE_ENDPOINTS);
    expect(due).toContain('webhook_delivery_pending_index');
    expect(due).not.toMatch(/Seq Scan on webhook_delivery/);
  });

  it('counts an endpoint due only when a claim would take something: not while its subjects wait behind a retry', async () => {
    const account = await t.account();
    const [endpoint] = await query<{ id: string }>(
      t.em(),
      sql`insert into webhook_endpoint (id, account_id, url, secret)
          values (gen_random_uuid(), ${account.id}, 'https://hooks.example/behind', 'whsec_x') returning id`,
    );
    const id = endpoint!.id;
    // A person's first event waits out its backoff for an hour; their next one is due now, behind it.
    await query(
      t.em(),
      sql`insert into webhook_delivery (endpoint_id, account_id, msg_id, event_type, subject, payload, next_attempt_at, attempts)
          values (${id}, ${account.id}, 'msg_head', 'person.updated', 'person:behind', '{}'::jsonb, now() + interval '1 hour', 5),
                 (${id}, ${account.id}, 'msg_next', 'person.updated', 'person:behind', '{}'::jsonb, now(), 0)`,
    );
    const due = async () =>
      (await query<{ endpoint_id: string }>(t.em(), DUE_ENDPOINTS)).map((r) => r.endpoint_id);
    try {
      expect(await due()).not.toContain(id);
      // Once the first is due again, the endpoint is.
      await query(
        t.em(),
        sql`update webhook_delivery set next_attempt_at = now() where msg_id = 'msg_head' and endpoint_id = ${id}`,
      );
      expect(await due()).toContain(id);
    } finally {
      // The other tests count this month's five endpoints.
      await query(t.em(), sql`delete from webhook_delivery where endpoint_id = ${id}`);
      await query(t.em(), sql`delete from webhook_endpoint where id = ${id}`);
    }
  });

  it('prunes by when a delivery ended, through its index, removing only what is over 30 days old', async () => {
    const prune = await plan(PRUNE_DELIVERIES);
    expect(prune).toContain('webhook_delivery_done_index');
    expect(prune).not.toMatch(/Seq Scan on webhook_delivery/);
    const count = async (where: ReturnType<typeof sql>) =>
      (
        await query<{ n: number }>(
          t.em(),
          sql`select count(*)::int as n from webhook_delivery where ${where}`,
        )
      )[0]!.n;
    const old = sql`status <> 'pending' and coalesce(delivered_at, last_attempt_at, created_at) < now() - interval '30 days'`;
    const pending = await count(sql`status = 'pending'`);
    const total = await count(sql`true`);
    const stale = await count(old);
    expect(stale).toBeGreaterThan(0);
    await query(t.em(), PRUNE_DELIVERIES);
    expect(await count(old)).toBe(0);
    expect(await count(sql`status = 'pending'`)).toBe(pending);
    expect(await count(sql`true`)).toBe(total - stale);
  });

  it('keeps no index that no statement reads: every delivery written updates each one', async () => {
    const rows = await query<{ indexname: string }>(
      t.em(),
      sql`select indexname from pg_indexes where tablename = 'webhook_delivery' order by indexname`,
    );
    expect(rows.map((r) => r.indexname)).not.toContain('webhook_delivery_due_index');
  });
});

describe('one endpoint', () => {
  it('is found by id within its account, with its own pending count; another account’s id finds nothing', async () => {
    const endpoints = new WebhookEndpoints();
    const account = await t.account();
    const all = await endpoints.list(t.em(), account);
    expect(all).toHaveLength(5);
    for (const e of all) {
      const one = await endpoints.find(t.em(), account, e.id);
      expect(one).toEqual(e);
    }
    const other = await ensureAccount(t.em(), 'T0OTHER', 'Other');
    expect(await endpoints.find(t.em(), other, all[0]!.id)).toBeNull();
    expect(await endpoints.find(t.em(), account, 'not-an-id')).toBeNull();
  });
});
