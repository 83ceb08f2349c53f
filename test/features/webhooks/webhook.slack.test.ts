import { randomUUID } from 'node:crypto';
import { query, sql } from '../../../src/db/sql.ts';
import { ensureAccount } from '../../../src/features/accounts/account.service.ts';
import { AuditEvent } from '../../../src/features/audit/audit-event.entity.ts';
import { newSecret, WebhookEndpoints } from '../../../src/features/webhooks/webhook.endpoints.ts';
import { createLogger } from '../../../src/shared/logger.ts';
import { eventually, jobsDrained, startTestApp, type TestApp } from '../../support/app.ts';
import { textOf } from '../../support/views.ts';
import { addEndpoint, featuresWith, openWebhooks, type Receiver, startReceiver } from './support.ts';

/** Everything the app logs, to check that no secret ever reaches the log. */
const logged: string[] = [];
const logger = createLogger('debug', {
  write(line: string) {
    logged.push(line);
  },
});

let t: TestApp;
let hooks: Receiver;

beforeAll(async () => {
  hooks = await startReceiver();
  t = await startTestApp({ seatLimit: 10, features: featuresWith(), logger });
});
afterAll(async () => {
  await t.stop();
  await hooks.close();
});

const endpointRows = () =>
  query<{ id: string; url: string; secret: string; enabled: boolean; events: string[] | null }>(
    t.em(),
    sql`select id, url, secret, enabled, events from webhook_endpoint order by created_at`,
  );
/** Every view Roster opened, pushed, updated or published since the start, as Slack received them. */
const viewsSent = () =>
  ['views.open', 'views.push', 'views.update', 'views.publish'].flatMap((m) =>
    t.standin.callsTo(m).map((c) => JSON.stringify(c.args)),
  );

describe('managing webhook endpoints from the App Home', () => {
  let endpointId: string;
  let secret: string;

  it('adds an endpoint and shows its signing secret once, in the whsec_ form', async () => {
    const list = await openWebhooks(t);
    expect(textOf(list)).toContain('No endpoints yet');
    const added = await addEndpoint(t, hooks.url);
    ({ secret, id: endpointId } = added);
    hooks.secret = secret;
    expect(secret).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/);
    expect(textOf(added.view)).toContain('Roster will not show it again');
    const [row] = await endpointRows();
    expect(row).toMatchObject({ id: endpointId, url: hooks.url, secret, enabled: true, events: null });
    // The list underneath was redrawn with the new endpoint, without the secret.
    const redrawn = t.standin.callsTo('views.update').at(-1)!;
    expect(JSON.stringify(redrawn.args)).toContain(hooks.url);
    expect(JSON.stringify(redrawn.args)).not.toContain(secret);
    // Never again: reopened, the list does not hold it; nor do the audit log or the app's log.
    const again = await openWebhooks(t);
    expect(textOf(again)).toContain(hooks.url);
    expect(textOf(again)).toContain('every event');
    expect(viewsSent().filter((v) => v.includes(secret))).toHaveLength(0);
    const audit = await t.em().findOneOrFail(AuditEvent, { action: 'webhook.endpoint_added' });
    expect(JSON.stringify(audit.data)).not.toContain(secret);
    expect(audit.data).toMatchObject({ url: new URL(hooks.url).origin });
    expect(logged.join('\n')).not.toContain(secret.slice(6, 30));
  });

  it('refuses a URL that is not https (or local), and one too long, on the field', async () => {
    const list = await openWebhooks(t);
    for (const [url, words] of [
      ['http://example.com/hooks', 'must start with https://'],
      ['ftp://127.0.0.1/x', 'must start with https://'],
      ['not a url', 'must be a URL'],
      ['https://user:pw@example.com/', 'must not hold a user name or password'],
      [`https://example.com/${'x'.repeat(500)}`, 'Keep the URL under 500 characters'],
    ] as const) {
      await t.slack.clickButton(list, { actionId: 'webhooks_add' }, { user: 'UADMIN' });
      const res = await t.slack.submitView(t.standin.lastOpenedView(), { url }, { user: 'UADMIN' });
      expect(res.json).toMatchObject({
        response_action: 'errors',
        errors: { url: expect.stringContaining(words) },
      });
    }
    expect(await endpointRows()).toHaveLength(1);
  });

  it('sends a test event the receiver verifies, and says so in the list', async () => {
    const list = await openWebhooks(t);
    await t.slack.clickButton(list, { actionId: 'webhooks_test', value: endpointId }, { user: 'UADMIN' });
    const got = await hooks.waitFor((r) => r.type === 'webhook.test');
    expect(got.body.data).toMatchObject({
      endpoint: { id: endpointId, url: hooks.url },
      account: { team_id: 'T0001' },
      change: { actor: 'UADMIN', surface: 'slack' },
    });
    const redrawn = t.standin.lastOpenedView();
    expect(textOf(redrawn)).toContain(`Test event \`${got.id}\` is on its way`);
    // The delivery log shows it.
    await eventually(async () => {
      await t.slack.clickButton(redrawn, { actionId: 'webhooks_log', value: endpointId }, { user: 'UADMIN' });
      return textOf(t.standin.lastOpenedView()).includes(got.id);
    });
  });

  it('disables and enables: disabled, no event is queued for it', async () => {
    const list = await openWebhooks(t);
    await t.slack.clickButton(list, { actionId: 'webhooks_disable', value: endpointId }, { user: 'UADMIN' });
    expect(textOf(t.standin.lastOpenedView())).toContain(':red_circle: Off (disabled by an admin)');
    const [{ n: before }] = (await query<{ n: number }>(
      t.em(),
      sql`select count(*)::int as n from webhook_delivery where endpoint_id = ${endpointId}`,
    )) as [{ n: number }];
    await t.slack.command('/seats', '11', { user: 'UADMIN' });
    const [{ n: after }] = (await query<{ n: number }>(
      t.em(),
      sql`select count(*)::int as n from webhook_delivery where endpoint_id = ${endpointId}`,
    )) as [{ n: number }];
    expect(after).toBe(before);
    await t.slack.clickButton(
      t.standin.lastOpenedView(),
      { actionId: 'webhooks_enable', value: endpointId },
      {
        user: 'UADMIN',
      },
    );
    expect((await endpointRows())[0]!.enabled).toBe(true);
    await t.slack.command('/seats', '12', { user: 'UADMIN' });
    await hooks.waitFor((r) => r.type === 'seat_limit.changed' && r.body.data.seats.to === 12);
    expect(hooks.ofType('seat_limit.changed').map((r) => r.body.data.seats.to)).toEqual([12]);
  });

  it('tells an admin whose click came from a message by DM, even while Slack refuses posts for a while', async () => {
    const notices = () =>
      t.standin.messages.filter(
        (m) =>
          m.method === 'chat.postMessage' &&
          m.channel === 'DUADMIN' &&
          /is disabled: no events/.test(String(m.text)),
      );
    const before = notices().length;
    const limitedBefore = t.standin.rateLimited.length;
    t.standin.limitRate('chat.postMessage', { max: 0, windowMs: 60_000, retryAfter: 3 });
    // A button of a message (no modal to redraw): the notice goes by DM, which Slack refuses for now.
    await t.slack.blockAction({
      user: 'UADMIN',
      actions: [{ type: 'button', action_id: 'webhooks_disable', block_id: 'b', value: endpointId }],
      channel: 'DUADMIN',
    });
    expect((await endpointRows())[0]!.enabled).toBe(false);
    expect(t.standin.rateLimited.slice(limitedBefore).some((c) => c.method === 'chat.postMessage')).toBe(
      true,
    );
    t.standin.clearRateLimit('chat.postMessage');
    // The change was made: its notice comes once Slack allows, once.
    await eventually(() => notices().length > before, 20_000);
    await jobsDrained(t.em(), { timeoutMs: 30_000 });
    expect(notices()).toHaveLength(before + 1);
    const list = await openWebhooks(t);
    await t.slack.clickButton(list, { actionId: 'webhooks_enable', value: endpointId }, { user: 'UADMIN' });
    expect((await endpointRows())[0]!.enabled).toBe(true);
  }, 60_000);

  it('redraws the modal with the notice once the Retry-After has passed, once, when Slack refuses the redraw', async () => {
    const list = await openWebhooks(t);
    const redraws = () =>
      t.standin
        .callsTo('views.update')
        .filter(
          (c) =>
            c.args.view_id === list.id &&
            /is disabled: no events/.test(JSON.stringify(c.args.view)) &&
            !t.standin.rateLimited.includes(c),
        );
    const limitedBefore = t.standin.rateLimited.length;
    // Longer than the one second the client that answers people waits out itself.
    t.standin.limitRate('views.update', { max: 0, windowMs: 60_000, retryAfter: 2 });
    await t.slack.clickButton(list, { actionId: 'webhooks_disable', value: endpointId }, { user: 'UADMIN' });
    expect((await endpointRows())[0]!.enabled).toBe(false);
    const refused = t.standin.rateLimited.slice(limitedBefore).find((c) => c.method === 'views.update');
    expect(refused?.args.view_id).toBe(list.id);
    t.standin.clearRateLimit('views.update');

    await eventually(() => redraws().length > 0, 20_000);
    expect(redraws()[0]!.at).toBeGreaterThanOrEqual(refused!.at + 2000);
    expect(textOf(t.standin.views.get(list.id)!)).toContain('is disabled: no events are queued');
    await jobsDrained(t.em(), { timeoutMs: 30_000 });
    expect(redraws()).toHaveLength(1);
    // The change was made: the admin is not asked to try it again.
    expect(t.standin.messages.some((m) => /slow down/.test(String(m.text)))).toBe(false);
    expect(t.standin.responses.some((r) => /slow down/.test(String(r.body.text)))).toBe(false);
    await t.slack.clickButton(
      t.standin.views.get(list.id)!,
      { actionId: 'webhooks_enable', value: endpointId },
      { user: 'UADMIN' },
    );
    expect((await endpointRows())[0]!.enabled).toBe(true);
  }, 60_000);

  it('tells the notice by DM when the modal was closed before Slack allowed its redraw', async () => {
    const list = await openWebhooks(t);
    const notices = () =>
      t.standin.messages.filter(
        (m) =>
          m.method === 'chat.postMessage' &&
          m.channel === 'DUADMIN' &&
          /is disabled: no events/.test(String(m.text)),
      );
    const before = notices().length;
    const limitedBefore = t.standin.rateLimited.length;
    t.standin.limitRate('views.update', { max: 0, windowMs: 60_000, retryAfter: 2 });
    await t.slack.clickButton(list, { actionId: 'webhooks_disable', value: endpointId }, { user: 'UADMIN' });
    expect(t.standin.rateLimited.slice(limitedBefore).some((c) => c.method === 'views.update')).toBe(true);
    // The admin closes the modal: Slack no longer knows the view.
    t.standin.views.delete(list.id);
    t.standin.clearRateLimit('views.update');
    await eventually(() => notices().length > before, 20_000);
    await jobsDrained(t.em(), { timeoutMs: 30_000 });
    expect(notices()).toHaveLength(before + 1);
    const again = await openWebhooks(t);
    await t.slack.clickButton(again, { actionId: 'webhooks_enable', value: endpointId }, { user: 'UADMIN' });
    expect((await endpointRows())[0]!.enabled).toBe(true);
  }, 60_000);

  it('names an endpoint without its query string in a notice sent by DM, the modal closed or absent', async () => {
    const keyed = `${hooks.url}?key=sekrit-receiver-key#frag`;
    const { id } = await addEndpoint(t, keyed);
    const dms = () =>
      t.standin.messages.filter((m) => m.method === 'chat.postMessage' && m.channel === 'DUADMIN');
    const before = dms().length;
    const list = await openWebhooks(t);
    t.standin.limitRate('views.update', { max: 0, windowMs: 60_000, retryAfter: 2 });
    await t.slack.clickButton(list, { actionId: 'webhooks_disable', value: id }, { user: 'UADMIN' });
    // The admin closes the modal: the notice goes by DM.
    t.standin.views.delete(list.id);
    t.standin.clearRateLimit('views.update');
    await eventually(
      () =>
        dms()
          .slice(before)
          .some((m) => /is disabled/.test(String(m.text))),
      20_000,
    );
    // A button of a message (no modal): the notice goes by DM at once.
    await t.slack.blockAction({
      user: 'UADMIN',
      actions: [{ type: 'button', action_id: 'webhooks_delete', block_id: 'b', value: id }],
      channel: 'DUADMIN',
    });
    await jobsDrained(t.em(), { timeoutMs: 30_000 });
    const told = dms()
      .slice(before)
      .map((m) => String(m.text));
    expect(told).toEqual([
      expect.stringContaining(`${new URL(hooks.url).host}`),
      expect.stringContaining('was deleted'),
    ]);
    expect(told.join('\n')).not.toMatch(/sekrit|frag/);
    expect(told[1]).toContain('?[redacted]');
  }, 60_000);

  it('refuses everything to a non-admin, even with forged payloads, and records the refusal', async () => {
    // The Home tab of a member has no Webhooks button.
    await t.slack.event({ type: 'app_home_opened', user: 'UMEMBER', tab: 'home', channel: 'DUMEMBER' });
    expect(JSON.stringify(t.standin.homeView('UMEMBER'))).not.toContain('webhooks_open');
    const opened = t.standin.callsTo('views.open').length;
    const forged = (actionId: string) =>
      t.slack.blockAction({
        user: 'UMEMBER',
        actions: [{ type: 'button', action_id: actionId, block_id: 'b', value: endpointId }],
        channel: 'DUMEMBER',
      });
    for (const action of ['webhooks_open', 'webhooks_add']) {
      await forged(action);
    }
    expect(t.standin.callsTo('views.open').length).toBe(opened);
    for (const action of ['webhooks_delete', 'webhooks_disable', 'webhooks_test', 'webhooks_log']) {
      await forged(action);
    }
    await t.standin.waitForResponse((r) =>
      String(r.body.text).includes('Only admins can manage webhook endpoints'),
    );
    await t.standin.waitForResponse((r) =>
      String(r.body.text).includes('Only admins can delete webhook endpoints'),
    );
    expect(await endpointRows()).toMatchObject([{ id: endpointId, enabled: true }]);
    expect(hooks.ofType('webhook.test')).toHaveLength(1);
    // A forged submission of the add form.
    const res = await t.slack.viewSubmission({
      user: 'UMEMBER',
      view: {
        callback_id: 'webhooks_add_modal',
        state: { values: { url: { url: { type: 'plain_text_input', value: 'https://evil.example/hook' } } } },
      },
    });
    expect(res.json).toMatchObject({
      response_action: 'errors',
      errors: { url: 'Only admins can add webhook endpoints.' },
    });
    expect(await endpointRows()).toHaveLength(1);
    // Every forged click and the forged form, each recorded with what was tried.
    const refused = await t.em().find(AuditEvent, { action: 'webhook.change_refused', actor: 'UMEMBER' });
    expect(refused.map((e) => (e.data as { attempted: string }).attempted).sort()).toEqual(
      ['add', 'add', 'delete', 'disable', 'manage', 'read the log of', 'test'].sort(),
    );
  });

  it("finds no endpoint of another account, whatever id an admin's payload carries", async () => {
    const other = await ensureAccount(t.em(), 'T_OTHER');
    const foreignId = randomUUID();
    await query(
      t.em(),
      sql`insert into webhook_endpoint (id, account_id, url, secret) values (${foreignId}, ${other.id}, 'https://other.example/h', ${newSecret()})`,
    );
    await t.slack.blockAction({
      user: 'UADMIN',
      actions: [{ type: 'button', action_id: 'webhooks_delete', block_id: 'b', value: foreignId }],
      channel: 'DUADMIN',
    });
    await t.standin.waitForResponse((r) =>
      String(r.body.text).includes('That webhook endpoint no longer exists.'),
    );
    const list = await openWebhooks(t);
    expect(textOf(list)).not.toContain('other.example');
    const [row] = await query(t.em(), sql`select id from webhook_endpoint where id = ${foreignId}`);
    expect(row).toBeDefined();
  });

  it('takes only the chosen events, and deletes an endpoint after confirmation', async () => {
    const only = await startReceiver({ path: '/limits' });
    try {
      const added = await addEndpoint(t, only.url, ['seat_limit.changed']);
      only.secret = added.secret;
      expect(textOf(await openWebhooks(t))).toContain('`seat_limit.changed`');
      await t.slack.command('/seats', '13', { user: 'UADMIN' });
      await t.slack.command('/contact', 'add', { user: 'UADMIN' });
      await t.slack.submitView(t.standin.lastOpenedView(), { name: 'Zed' }, { user: 'UADMIN' });
      await hooks.waitFor((r) => r.type === 'contact.created');
      await only.waitFor((r) => r.type === 'seat_limit.changed');
      expect(only.received.map((r) => r.type)).toEqual(['seat_limit.changed']);

      const list = await openWebhooks(t);
      const button = list.blocks
        .flatMap((b: any) => b.elements ?? [])
        .find((e: any) => e.action_id === 'webhooks_delete' && e.value === added.id);
      expect(button.confirm.title.text).toBe('Delete this endpoint?');
      await t.slack.clickButton(list, { actionId: 'webhooks_delete', value: added.id }, { user: 'UADMIN' });
      expect(textOf(t.standin.lastOpenedView())).toContain('was deleted');
      expect((await endpointRows()).map((r) => r.url)).not.toContain(only.url);
    } finally {
      await only.close();
    }
  });

  it('adds one endpoint when a signed submission is sent again, and shows the secret only the first time', async () => {
    const url = 'https://replayed.example/hooks';
    const list = await openWebhooks(t);
    await t.slack.clickButton(list, { actionId: 'webhooks_add' }, { user: 'UADMIN' });
    const first = await t.slack.submitView(t.standin.lastOpenedView(), { url }, { user: 'UADMIN' });
    expect(JSON.stringify(first.json)).toMatch(/whsec_/);
    const again = await first.resend();
    expect(again.status).toBe(200);
    expect(again.body).not.toMatch(/whsec_/);
    expect((await endpointRows()).filter((r) => r.url === url)).toHaveLength(1);
    expect(
      await t.em().count(AuditEvent, { action: 'slack.replay_refused', actor: 'UADMIN' }),
    ).toBeGreaterThanOrEqual(1);
  });

  it('holds at most ten endpoints per account, and the list stays within Block Kit limits', async () => {
    for (let i = (await endpointRows()).filter((r) => !r.url.includes('other.example')).length; i < 10; i++) {
      await addEndpoint(t, `https://hooks${i}.example/${'x'.repeat(400)}`);
    }
    const list = await openWebhooks(t);
    expect(JSON.stringify(list)).not.toContain('webhooks_add"');
    // Forged past the missing button: refused.
    const res = await t.slack.viewSubmission({
      user: 'UADMIN',
      view: {
        callback_id: 'webhooks_add_modal',
        state: { values: { url: { url: { type: 'plain_text_input', value: 'https://eleven.example/' } } } },
      },
    });
    expect(res.json.errors.url).toContain('10 webhook endpoints');
    expect(t.standin.refusedBlocks).toEqual([]);
  });
});

describe('the endpoint set by the deployment (WEBHOOK_URL, WEBHOOK_SECRET)', () => {
  let d: TestApp;
  let deployed: Receiver;
  const secret = newSecret();

  beforeAll(async () => {
    deployed = await startReceiver({ secret, path: '/deployed' });
    d = await startTestApp({
      seatLimit: 10,
      features: featuresWith(),
      env: { WEBHOOK_URL: deployed.url, WEBHOOK_SECRET: secret },
    });
  });
  afterAll(async () => {
    await d.stop();
    await deployed.close();
  });

  it('gets every event, signed with WEBHOOK_SECRET, and shows in Slack as managed by the deployment', async () => {
    await d.slack.command('/seats', '15', { user: 'UADMIN' });
    const got = await deployed.waitFor((r) => r.type === 'seat_limit.changed');
    expect(got.body.data.seats.limit).toBe(15);

    const list = await openWebhooks(d);
    expect(textOf(list)).toContain('Managed by the deployment (WEBHOOK_URL)');
    expect(JSON.stringify(list)).not.toContain('webhooks_delete');
    const [row] = await query<{ id: string }>(d.em(), sql`select id from webhook_endpoint where managed`);
    await d.slack.clickButton(list, { actionId: 'webhooks_test', value: row!.id }, { user: 'UADMIN' });
    await deployed.waitFor((r) => r.type === 'webhook.test');

    // Not deletable, even by a forged button.
    await d.slack.blockAction({
      user: 'UADMIN',
      actions: [{ type: 'button', action_id: 'webhooks_delete', block_id: 'b', value: row!.id }],
      channel: 'DUADMIN',
    });
    await d.standin.waitForResponse((r) => String(r.body.text).includes('managed by the deployment'));
    expect(await query(d.em(), sql`select id from webhook_endpoint where managed`)).toHaveLength(1);

    // Nor turned off for every workspace by one workspace's admin, even by a forged button.
    expect(JSON.stringify(list)).not.toContain('webhooks_disable');
    const before = d.standin.responses.length;
    await d.slack.blockAction({
      user: 'UADMIN',
      actions: [{ type: 'button', action_id: 'webhooks_disable', block_id: 'b', value: row!.id }],
      channel: 'DUADMIN',
    });
    await d.standin.waitForResponse(
      (r) =>
        d.standin.responses.indexOf(r) >= before &&
        String(r.body.text).includes('can only be turned off there'),
    );
    const [still] = await query<{ enabled: boolean }>(
      d.em(),
      sql`select enabled from webhook_endpoint where managed`,
    );
    expect(still!.enabled).toBe(true);
    expect(deployed.rejected).toEqual([]);
  });

  /** A seat limit change whose event the deployment's receiver failed, sitting idle between two tries. */
  async function failedEvent(limit: number): Promise<string> {
    deployed.mode = 'fail';
    const failed = deployed.failedIds.length;
    await d.slack.command('/seats', String(limit), { user: 'UADMIN' });
    await eventually(() => deployed.failedIds.length > failed);
    const msgId = deployed.failedIds.at(-1)!;
    await eventually(async () => {
      const [row] = await query<{ status: string; leased: boolean }>(
        d.em(),
        sql`select status, lease_until > now() as leased from webhook_delivery where msg_id = ${msgId}`,
      );
      return row?.status === 'pending' && !row.leased;
    });
    return msgId;
  }

  /**
   * The deployment sets a new WEBHOOK_SECRET and restarts, the receiver still failing at first: how the
   * event's first try after that ended.
   */
  async function firstTryAfterNewSecret(msgId: string): Promise<string | undefined> {
    const attempts = () =>
      query<{ outcome: string }>(
        d.em(),
        sql`select a.outcome from webhook_attempt a join webhook_delivery w on w.id = a.delivery_id
            where w.msg_id = ${msgId} order by a.id`,
      );
    const tried = (await attempts()).length;
    const next = newSecret();
    await WebhookEndpoints.syncManaged(d.em(), { url: deployed.url, secret: next });
    deployed.secret = next;
    const afterRestart = await eventually(async () => {
      const rows = await attempts();
      return rows.length > tried && rows.slice(tried);
    });
    return afterRestart[0]?.outcome;
  }

  it('turned on again by a new WEBHOOK_SECRET after a day off: what waited gets its retries again', async () => {
    const msgId = await failedEvent(16);
    // A day of failures later Roster turned it off; the event waited over a day.
    await query(
      d.em(),
      sql`update webhook_endpoint set enabled = false, failing_since = now() - interval '25 hours',
            disabled_reason = 'failing since yesterday' where managed`,
    );
    await query(
      d.em(),
      sql`update webhook_delivery set created_at = created_at - interval '26 hours',
            next_attempt_at = now() + interval '1 hour' where msg_id = ${msgId}`,
    );
    expect(await firstTryAfterNewSecret(msgId)).toBe('retrying');
    const [endpoint] = await query<{ enabled: boolean }>(
      d.em(),
      sql`select enabled from webhook_endpoint where managed`,
    );
    expect(endpoint!.enabled).toBe(true);
    deployed.mode = 'ok';
    const got = await deployed.waitFor((r) => r.id === msgId);
    expect(got.body.data.seats.limit).toBe(16);
  });

  it('given a new WEBHOOK_SECRET while on and failing for want of it: what waited is sent at once, retried', async () => {
    const msgId = await failedEvent(17);
    // Twenty hours of failures (the receiver refusing the old secret): still on, not yet turned off.
    await query(
      d.em(),
      sql`update webhook_endpoint set failing_since = now() - interval '20 hours' where managed`,
    );
    await query(
      d.em(),
      sql`update webhook_delivery set created_at = now() - interval '24 hours 30 minutes',
            next_attempt_at = now() + interval '55 minutes' where msg_id = ${msgId}`,
    );
    expect(await firstTryAfterNewSecret(msgId)).toBe('retrying');
    deployed.mode = 'ok';
    const got = await deployed.waitFor((r) => r.id === msgId);
    expect(got.body.data.seats.limit).toBe(17);
  });
});
