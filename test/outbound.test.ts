import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Webhook } from 'standardwebhooks';
import { ScimClient, ScimError } from '../src/features/scim/scim.client.ts';
import { send } from '../src/features/webhooks/webhook.delivery.ts';
import { outboundProblem } from '../src/shared/outbound.ts';
import { startReceiver } from './features/webhooks/support.ts';
import { type ScimServer, startScimServer } from './support/scim-server.ts';

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
    const err = await new ScimClient(url, 'token').check().catch((e) => e);
    expect(err).toBeInstanceOf(ScimError);
    expect(err.kind).toBe('rejected');
    expect(err.message).toMatch(/not JSON; is this the SCIM base URL\?/);
  });
});
