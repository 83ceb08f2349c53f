import dns from 'node:dns';
import dnsPromises from 'node:dns/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Webhook } from 'standardwebhooks';
import { query, sql } from '../src/db/sql.ts';
import { features } from '../src/features/index.ts';
import { ScimClient, ScimError } from '../src/features/scim/scim.client.ts';
import { ScimConnection } from '../src/features/scim/scim.entity.ts';
import { DEFAULT_POLICY, send, WebhookSender } from '../src/features/webhooks/webhook.delivery.ts';
import { createLogger } from '../src/shared/logger.ts';
import { outboundProblem } from '../src/shared/outbound.ts';
import { connect } from './features/scim/support.ts';
import { FAST, openWebhooks, startReceiver } from './features/webhooks/support.ts';
import { startTestApp } from './support/app.ts';
import { type ScimServer, startScimServer } from './support/scim-server.ts';
import { textOf } from './support/views.ts';

// URLs admins enter (webhook endpoints, SCIM services) may not reach this machine or private networks in
// production: Roster would otherwise call, and report on, services only its own network can see.

describe('which addresses an admin-entered URL may reach', () => {
  it.each([
    'http://127.0.0.1:8080/x',
    'https://10.1.2.3/hooks',
    'https://172.20.0.5/hooks',
    'https://192.168.1.1/hooks',
    'http://169.254.169.254/latest/meta-data/',
    'https://[::1]/hooks',
    'https://[::ffff:127.0.0.1]/hooks',
    'https://[fd00::1]/hooks',
    // IPv4 inside IPv6: NAT64 and 6to4 addresses of 10.0.0.1, an IPv4-compatible one of 127.0.0.1.
    'https://[64:ff9b::a00:1]/hooks',
    'https://[64:ff9b:1::a00:1]/hooks',
    'https://[2002:a00:1::1]/hooks',
    'https://[::7f00:1]/hooks',
    // 127.0.0.1 mapped in hex, and IPv4-translated; a site-local and a discard-only address.
    'https://[::ffff:7f00:1]/hooks',
    'https://[::ffff:0:7f00:1]/hooks',
    'https://[fec0::1]/hooks',
    'https://[100::1]/hooks',
    'https://localhost/hooks',
  ])('refuses %s in production', async (url) => {
    expect(await outboundProblem(url, false)).toMatch(/private network.*ALLOW_PRIVATE_URLS/);
    expect(await outboundProblem(url, true)).toBeNull();
  });

  it('lets public addresses through', async () => {
    expect(await outboundProblem('https://93.184.216.34/hooks', false)).toBeNull();
    expect(await outboundProblem('https://[2606:2800:220:1:248:1893:25c8:1946]/hooks', false)).toBeNull();
  });
});

describe('calls refused before they leave', () => {
  let scim: ScimServer;
  beforeAll(async () => {
    scim = await startScimServer();
  });
  afterAll(() => scim.close());

  it('a SCIM service on this machine gets no call, and the sync is told why', async () => {
    const before = scim.calls.length;
    const client = new ScimClient(scim.url, scim.token, { allowPrivate: false });
    const err = await client.check().catch((e) => e);
    expect(err).toBeInstanceOf(ScimError);
    expect(err.kind).toBe('rejected');
    expect(err.message).toContain('private network');
    expect(scim.calls.length).toBe(before);
    // Allowed, the same client reaches it.
    await new ScimClient(scim.url, scim.token, { allowPrivate: true }).check();
    expect(scim.calls.length).toBeGreaterThan(before);
  });

  it('a SCIM service whose name turns to this machine after the check gets no call, nor the token', async () => {
    const restore = rebind();
    try {
      const before = scim.calls.length;
      const client = new ScimClient(scim.url.replace('127.0.0.1', 'rebind.example'), scim.token, {
        allowPrivate: false,
      });
      const err = await client.check().catch((e) => e);
      expect(err).toBeInstanceOf(ScimError);
      expect(err.kind).toBe('rejected');
      expect(err.message).toContain('rebind.example is on this machine or a private network');
      expect(scim.calls.length).toBe(before);
    } finally {
      restore();
    }
  });

  it('a webhook endpoint on this machine gets no POST; the attempt records why', async () => {
    const receiver = await startReceiver();
    try {
      const secret = `whsec_${Buffer.alloc(32, 7).toString('base64')}`;
      const row = {
        id: '1',
        account_id: 'a',
        msg_id: 'msg_1',
        event_type: 'webhook.test',
        payload: { type: 'webhook.test', timestamp: new Date().toISOString(), data: {} },
        attempts: 1,
      };
      const refused = await send(receiver.url, new Webhook(secret), row, 2000, false);
      expect(refused).toMatchObject({ ok: false, status: null });
      expect(refused.error).toContain('private network');
      expect(receiver.hits).toBe(0);
      receiver.secret = secret;
      expect((await send(receiver.url, new Webhook(secret), row, 2000, true)).ok).toBe(true);
      expect(receiver.hits).toBe(1);
    } finally {
      await receiver.close();
    }
  });
});

/**
 * A name whose DNS answers a public address to whoever checks it and this machine to the connection that
 * follows (DNS rebinding). Both of Node's resolvers are answered for `rebind.example` only: the promise one
 * (a check made apart) with a public address, the callback one (which connections use) with 127.0.0.1.
 */
function rebind(): () => void {
  const lookup = dns.lookup;
  const lookupAsync = dnsPromises.lookup;
  const local = { address: '127.0.0.1', family: 4 };
  const publicAddress = { address: '93.184.216.34', family: 4 };
  (dns as any).lookup = (host: string, options: any, callback?: any) => {
    const cb = typeof options === 'function' ? options : callback;
    const opts =
      typeof options === 'function' ? {} : typeof options === 'number' ? { family: options } : options;
    if (host !== 'rebind.example') return lookup(host, opts, cb);
    process.nextTick(() => (opts.all ? cb(null, [local]) : cb(null, local.address, local.family)));
  };
  (dnsPromises as any).lookup = (host: string, options: any) =>
    host === 'rebind.example'
      ? Promise.resolve(options?.all ? [publicAddress] : publicAddress)
      : lookupAsync(host, options);
  return () => {
    (dns as any).lookup = lookup;
    (dnsPromises as any).lookup = lookupAsync;
  };
}

describe('a name that resolves to this machine by the time Roster connects', () => {
  it('a webhook delivery reaches nothing: the connection refuses it and the delivery log says why', async () => {
    const receiver = await startReceiver();
    // Without Roster's own sender, so only the one below, refusing private addresses, delivers.
    const t = await startTestApp({ features: features.filter((f) => f.name !== 'webhooks') });
    const restore = rebind();
    try {
      const secret = `whsec_${Buffer.alloc(32, 9).toString('base64')}`;
      receiver.secret = secret;
      const url = `http://rebind.example:${new URL(receiver.url).port}/hooks`;
      // Whoever checks the name apart from the connection is told a public address.
      expect(await outboundProblem(url, false)).toBeNull();
      const account = await t.account();
      const [endpoint] = await query<{ id: string }>(
        t.em(),
        sql`insert into webhook_endpoint (id, account_id, url, secret)
            values (gen_random_uuid(), ${account.id}, ${url}, ${secret}) returning id`,
      );
      await query(
        t.em(),
        sql`insert into webhook_delivery (endpoint_id, account_id, msg_id, event_type, subject, payload)
            values (${endpoint!.id}, ${account.id}, 'msg_rebind', 'webhook.test', 'webhook:x',
              ${JSON.stringify({ type: 'webhook.test', timestamp: new Date().toISOString(), data: {} })}::jsonb)`,
      );
      const sender = new WebhookSender({
        // Its retry not due within this run: on a slow machine a retry after 100 ms was made in it too.
        policy: { ...DEFAULT_POLICY, ...FAST, retryBaseMs: 60_000, retryMaxMs: 60_000 },
        logger: createLogger('silent'),
        allowPrivate: false,
        onDisabled: async () => undefined,
      });
      expect(await sender.run(t.em(), endpoint!.id)).toMatchObject({ attempts: 1 });
      expect(receiver.hits).toBe(0);
      const [attempt] = await query<{ outcome: string; error: string; response_status: number | null }>(
        t.em(),
        sql`select outcome, error, response_status from webhook_attempt where endpoint_id = ${endpoint!.id}`,
      );
      expect(attempt).toMatchObject({ outcome: 'retrying', response_status: null });
      expect(attempt!.error).toMatch(/^rebind\.example is on this machine or a private network/);
      const [delivery] = await query<{ status: string; last_error: string }>(
        t.em(),
        sql`select status, last_error from webhook_delivery where endpoint_id = ${endpoint!.id}`,
      );
      expect(delivery).toMatchObject({ status: 'pending', last_error: attempt!.error });
    } finally {
      restore();
      await t.stop();
      await receiver.close();
    }
  });

  it('a webhook to localhost gets no POST when private addresses are not allowed', async () => {
    const receiver = await startReceiver();
    try {
      const row = {
        id: '1',
        account_id: 'a',
        msg_id: 'msg_2',
        event_type: 'webhook.test',
        payload: { type: 'webhook.test', timestamp: new Date().toISOString(), data: {} },
        attempts: 1,
      };
      const url = `http://localhost:${new URL(receiver.url).port}/hooks`;
      const refused = await send(
        url,
        new Webhook(`whsec_${Buffer.alloc(32, 3).toString('base64')}`),
        row,
        2000,
        false,
      );
      expect(refused).toMatchObject({ ok: false, status: null });
      expect(refused.error).toContain('localhost is on this machine or a private network');
      expect(receiver.hits).toBe(0);
    } finally {
      await receiver.close();
    }
  });
});

describe('Roster set up as the quick start says: no NODE_ENV, no ALLOW_PRIVATE_URLS', () => {
  it('refuses webhook endpoints and a SCIM service on this machine or a private network, calling none', async () => {
    const receiver = await startReceiver();
    const scim = await startScimServer();
    // '' is not set at all, as in a .env without the line.
    const t = await startTestApp({ env: { ALLOW_PRIVATE_URLS: '' } });
    try {
      const list = await openWebhooks(t);
      for (const url of [
        receiver.url,
        `http://localhost:${new URL(receiver.url).port}/hooks`,
        'https://169.254.169.254/latest/meta-data/',
        'https://10.0.0.8/hooks',
      ]) {
        await t.slack.clickButton(list, { actionId: 'webhooks_add' }, { user: 'UADMIN' });
        const res = await t.slack.submitView(t.standin.lastOpenedView(), { url }, { user: 'UADMIN' });
        expect(res.json).toMatchObject({
          response_action: 'errors',
          errors: { url: expect.stringMatching(/private network.*ALLOW_PRIVATE_URLS=true/) },
        });
      }
      expect(await query(t.em(), sql`select id from webhook_endpoint`)).toHaveLength(0);
      expect(receiver.hits).toBe(0);

      const form = await connect(t, scim);
      expect(textOf(form)).toMatch(/Not connected: .*private network/);
      expect(scim.calls).toHaveLength(0);
      expect(await t.em().count(ScimConnection, {})).toBe(0);
    } finally {
      await t.stop();
      await scim.close();
      await receiver.close();
    }
  });
});

describe('a SCIM URL that answers with something else', () => {
  let server: Server;
  let url: string;
  beforeAll(async () => {
    server = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end('<html><body>Welcome to our product</body></html>');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise((r) => server.close(r)));

  it('is a refusal that says what to check, not a crash', async () => {
    const err = await new ScimClient(url, 'token', { allowPrivate: true }).check().catch((e) => e);
    expect(err).toBeInstanceOf(ScimError);
    expect(err.kind).toBe('rejected');
    expect(err.message).toMatch(/not JSON; is this the SCIM base URL\?/);
  });
});
