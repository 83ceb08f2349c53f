import { query, sql } from '../../../src/db/sql.ts';
import { User } from '../../../src/features/people/user.entity.ts';
import type { Actor } from '../../../src/features/seats/seat.service.ts';
import { eventually, startTestApp, type TestApp } from '../../support/app.ts';
import { textOf } from '../../support/views.ts';
import { addEndpoint, FAST, featuresWith, openWebhooks, type Receiver, startReceiver } from './support.ts';

const admin: Actor = { slackUserId: 'UADMIN', isAdmin: true, surface: 'slack' };

async function people(t: TestApp, prefix: string, n: number) {
  const em = t.em();
  const account = await t.account();
  const users = Array.from({ length: n }, (_, i) =>
    em.create(User, { account, email: `${prefix}${i}@acme.test`, role: 'client', status: 'active' }),
  );
  await em.flush();
  return users.map((u) => u.id);
}

/** Deactivates and reactivates each person `rounds` times, through the services Slack's buttons call. */
async function churn(t: TestApp, ids: string[], rounds: number) {
  const account = await t.account();
  for (let r = 0; r < rounds; r++) {
    for (const id of ids) {
      await t.roster.deps.person.deactivate(t.em(), account, admin, id);
      await t.roster.deps.people.reactivate(t.em(), account, admin, id);
    }
  }
}

const deliveries = (t: TestApp, endpointId: string) =>
  query<{ status: string; n: number }>(
    t.em(),
    sql`select status, count(*)::int as n from webhook_delivery where endpoint_id = ${endpointId} group by status`,
  );

/** Each person's events arrived once per webhook-id, in the order the changes were made. */
function expectOncePerIdInOrder(hooks: Receiver, ids: string[], rounds: number) {
  const seen = hooks.received.map((r) => r.id);
  expect(new Set(seen).size).toBe(seen.length);
  for (const id of ids) {
    const mine = hooks.received.filter((r) => r.subject === id);
    expect(mine.map((r) => r.type)).toEqual(
      Array.from({ length: rounds }, () => ['person.deactivated', 'person.reactivated']).flat(),
    );
    const auditIds = mine.map((r) => r.body.data.change.audit_event_id as number);
    expect([...auditIds].sort((a, b) => a - b)).toEqual(auditIds);
  }
}

describe('a receiver that is down for a while', () => {
  let t: TestApp;
  let hooks: Receiver;
  let endpointId: string;
  beforeAll(async () => {
    hooks = await startReceiver();
    t = await startTestApp({ seatLimit: 50, features: featuresWith() });
    const added = await addEndpoint(t, hooks.url);
    hooks.secret = added.secret;
    endpointId = added.id;
  });
  afterAll(async () => {
    await t.stop();
    await hooks.close();
  });

  it('answering 500: every event arrives once when it is back, in order per person, same id on retries', async () => {
    hooks.mode = 'fail';
    const ids = await people(t, 'five', 4);
    await churn(t, ids, 2);
    // Retried with backoff while it fails.
    await eventually(() => hooks.failedIds.length >= 12);
    expect(hooks.received).toHaveLength(0);
    hooks.mode = 'ok';
    await eventually(() => hooks.received.length === 16, 15_000);
    expectOncePerIdInOrder(hooks, ids, 2);
    // The ids refused earlier are the ids delivered now: the receiver can drop repeats by webhook-id.
    const delivered = new Set(hooks.received.map((r) => r.id));
    expect(hooks.failedIds.every((id) => delivered.has(id))).toBe(true);
    // The receiver has the last one a moment before Roster records the answer.
    await eventually(async () => (await deliveries(t, endpointId))[0]?.n === 16);
    expect(await deliveries(t, endpointId)).toEqual([{ status: 'delivered', n: 16 }]);
    const [log] = await query<{ retried: number; ok: number }>(
      t.em(),
      sql`select count(*) filter (where outcome = 'retrying')::int as retried,
            count(*) filter (where outcome = 'delivered')::int as ok
          from webhook_attempt where endpoint_id = ${endpointId}`,
    );
    expect(log).toEqual({ retried: hooks.failedIds.length, ok: 16 });
  });

  it('refusing connections: the same, once it listens again', async () => {
    hooks.received.length = 0;
    await hooks.down();
    const ids = await people(t, 'refused', 3);
    await churn(t, ids, 2);
    await eventually(async () => {
      const [row] = await query<{ n: number }>(
        t.em(),
        sql`select count(*)::int as n from webhook_attempt where endpoint_id = ${endpointId} and error = 'ECONNREFUSED'`,
      );
      return row!.n >= 6;
    });
    await hooks.up();
    await eventually(() => hooks.received.length === 12, 15_000);
    expectOncePerIdInOrder(hooks, ids, 2);
  });

  it('shows the attempts in the delivery log, with the answer and how long it took', async () => {
    const list = await openWebhooks(t);
    await t.slack.clickButton(list, { actionId: 'webhooks_log', value: endpointId }, { user: 'UADMIN' });
    const log = t.standin.lastOpenedView();
    expect(log.callback_id).toBe('webhooks_log_modal');
    const text = textOf(log);
    expect(text).toContain('HTTP 204');
    expect(text).toMatch(/\d+ ms · attempt \d+ · delivered/);
    expect(log.blocks.length).toBeLessThanOrEqual(16);
  });

  it('Enable after more than a day off: what waited gets its retries again, not one try', async () => {
    hooks.mode = 'fail';
    const [id] = await people(t, 'waited', 1);
    const failed = hooks.failedIds.length;
    await t.roster.deps.person.deactivate(t.em(), await t.account(), admin, id!);
    await eventually(() => hooks.failedIds.length > failed);
    const msgId = hooks.failedIds.at(-1)!;
    const list = await openWebhooks(t);
    await t.slack.clickButton(list, { actionId: 'webhooks_disable', value: endpointId }, { user: 'UADMIN' });
    const attempts = async () =>
      query<{ outcome: string }>(
        t.em(),
        sql`select a.outcome from webhook_attempt a join webhook_delivery d on d.id = a.delivery_id
            where d.endpoint_id = ${endpointId} and d.msg_id = ${msgId} order by a.id`,
      );
    // No attempt under way any more: the event waits for the endpoint.
    await eventually(async () => {
      const [row] = await query<{ status: string; leased: boolean }>(
        t.em(),
        sql`select status, lease_until > now() as leased from webhook_delivery
            where endpoint_id = ${endpointId} and msg_id = ${msgId}`,
      );
      return row?.status === 'pending' && !row.leased;
    });
    const tried = (await attempts()).length;
    // A day and more goes by while it is off: the event is older than the 25 hours it is retried for.
    await query(
      t.em(),
      sql`update webhook_delivery set created_at = created_at - interval '26 hours'
          where endpoint_id = ${endpointId} and msg_id = ${msgId}`,
    );

    // Fixed, the receiver still fails its first request while it warms up: retried, not given up.
    await t.slack.clickButton(
      t.standin.lastOpenedView(),
      { actionId: 'webhooks_enable', value: endpointId },
      { user: 'UADMIN' },
    );
    const afterEnable = await eventually(async () => {
      const rows = await attempts();
      return rows.length > tried && rows.slice(tried);
    });
    expect(afterEnable[0]!.outcome).toBe('retrying');
    hooks.mode = 'ok';
    const got = await hooks.waitFor((r) => r.id === msgId);
    expect(got.body.data.person.status).toBe('deactivated');
  });
});

describe('a receiver that keeps failing', () => {
  let t: TestApp;
  let hooks: Receiver;
  let endpointId: string;
  beforeAll(async () => {
    hooks = await startReceiver();
    // The day shortened: no answer within 300 ms fails, a delivery is given up at its first failure, and
    // an endpoint that failed for a second is turned off.
    t = await startTestApp({
      seatLimit: 50,
      features: featuresWith({ ...FAST, timeoutMs: 300, retryForMs: 0, disableAfterMs: 1_000 }),
    });
    // With a key in its query string, which the admins' DM leaves out.
    const added = await addEndpoint(t, `${hooks.url}?key=receiver-key-123`);
    hooks.secret = added.secret;
    endpointId = added.id;
  });
  afterAll(async () => {
    await t.stop();
    await hooks.close();
  });

  it('gives deliveries up in order, turns the endpoint off and tells the admins; Enable sends the rest', async () => {
    hooks.mode = 'slow';
    const [id] = await people(t, 'slow', 1);
    // Six events for one person, tried one after the other, each failing after 300 ms.
    await churn(t, [id!], 3);
    const told = await t.standin.waitForMessage(
      (m) => m.channel === 'DUADMIN' && textOf(m).includes('turned off the webhook endpoint'),
      10_000,
    );
    expect(textOf(told)).toContain(`${hooks.url}?[redacted]`);
    expect(textOf(told)).not.toContain('receiver-key-123');
    expect(textOf(told)).toContain('no answer within 300 ms');
    await t.standin.waitForMessage((m) => m.channel === 'DUOWNER' && textOf(m).includes('turned off'));
    const [endpoint] = await query<{ enabled: boolean; disabled_reason: string }>(
      t.em(),
      sql`select enabled, disabled_reason from webhook_endpoint where id = ${endpointId}`,
    );
    expect(endpoint).toMatchObject({
      enabled: false,
      disabled_reason: expect.stringMatching(/^failing since/),
    });
    await jobsIdle(t);
    // Given up one after the other, in the order of the changes; the rest wait for the endpoint.
    const tried = await query<{ event_type: string; outcome: string; audit_event_id: string }>(
      t.em(),
      sql`select d.event_type, a.outcome, d.audit_event_id from webhook_attempt a
          join webhook_delivery d on d.id = a.delivery_id where a.endpoint_id = ${endpointId} order by a.id`,
    );
    expect(tried.length).toBeGreaterThanOrEqual(2);
    expect(tried.every((a) => a.outcome === 'failed')).toBe(true);
    expect(tried.map((a) => a.event_type)).toEqual(
      ['person.deactivated', 'person.reactivated', 'person.deactivated', 'person.reactivated']
        .concat(['person.deactivated', 'person.reactivated'])
        .slice(0, tried.length),
    );
    const waiting = 6 - tried.length;
    expect(await deliveries(t, endpointId)).toEqual(
      [{ status: 'failed', n: tried.length }, ...(waiting ? [{ status: 'pending', n: waiting }] : [])].sort(
        (a, b) => a.status.localeCompare(b.status),
      ),
    );

    // Turned off, nothing new is queued for it.
    await churn(t, [id!], 1);
    expect((await deliveries(t, endpointId)).reduce((n, d) => n + d.n, 0)).toBe(6);

    // Fixed and enabled from Slack: what waited goes out, and so does the next change.
    hooks.mode = 'ok';
    const list = await openWebhooks(t);
    expect(textOf(list)).toContain(':red_circle: Off');
    await t.slack.clickButton(list, { actionId: 'webhooks_enable', value: endpointId }, { user: 'UADMIN' });
    expect(textOf(t.standin.lastOpenedView())).toContain('is enabled');
    await t.roster.deps.person.deactivate(t.em(), await t.account(), admin, id!);
    await eventually(() => hooks.received.length === waiting + 1);
    expect(hooks.received.at(-1)!.body.data.person.status).toBe('deactivated');
  });
});

/** No delivery job waiting or running. */
async function jobsIdle(t: TestApp) {
  await eventually(async () => {
    const [row] = await query<{ n: number }>(
      t.em(),
      sql`select count(*)::int as n from pgboss.job where name = 'webhooks.deliver' and state in ('created', 'retry', 'active')`,
    );
    return row!.n === 0;
  });
}
