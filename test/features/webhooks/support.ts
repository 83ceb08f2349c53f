import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Webhook } from 'standardwebhooks';
import { features } from '../../../src/features/index.ts';
import { createWebhooksFeature } from '../../../src/features/webhooks/index.ts';
import type { WebhookPolicy } from '../../../src/features/webhooks/webhook.delivery.ts';
import { eventually, type TestApp } from '../../support/app.ts';

/** Delivery pacing for tests: retries after a tenth of a second instead of seconds, a sweep every 50 ms. */
export const FAST: Partial<WebhookPolicy> = {
  retryBaseMs: 100,
  retryMaxMs: 400,
  sweepMs: 50,
  timeoutMs: 2_000,
  jobBudgetMs: 5_000,
};

/** Every feature of Roster, with webhooks paced by `policy`. */
export function featuresWith(policy: Partial<WebhookPolicy> = FAST) {
  return features.map((f) => (f.name === 'webhooks' ? createWebhooksFeature(policy) : f));
}

export type Received = {
  id: string;
  timestamp: number;
  type: string;
  body: any;
  /** Subject the event is about: the person's, contact's, request's or import's id. */
  subject: string | undefined;
};

/**
 * A webhook receiver on 127.0.0.1, as a customer would write one: it verifies each request with the
 * `standardwebhooks` Webhook class and keeps what verified. It can answer 500 (`fail`), or stop listening
 * so connections are refused (`down`), and come back on the same port (`up`).
 */
export type Receiver = {
  url: string;
  secret: string | undefined;
  received: Received[];
  /** Requests that did not verify. */
  rejected: { headers: IncomingMessage['headers']; body: string; reason: string }[];
  /** Every request that arrived, whatever the answer. */
  hits: number;
  /** The webhook-id of each request answered 500. */
  failedIds: string[];
  mode: 'ok' | 'fail' | 'slow';
  down(): Promise<void>;
  up(): Promise<void>;
  close(): Promise<void>;
  ofType(type: string): Received[];
  waitFor(predicate: (r: Received) => boolean, timeoutMs?: number): Promise<Received>;
};

export async function startReceiver(opts: { secret?: string; path?: string } = {}): Promise<Receiver> {
  let server: Server;
  let port = 0;
  const receiver: Receiver = {
    url: '',
    secret: opts.secret,
    received: [],
    rejected: [],
    hits: 0,
    failedIds: [],
    mode: 'ok',
    async down() {
      await new Promise<void>((ok) => {
        server.close(() => ok());
        server.closeAllConnections();
      });
    },
    async up() {
      server = make();
      await new Promise<void>((ok) => server.listen(port, '127.0.0.1', () => ok()));
    },
    async close() {
      if (server.listening) await receiver.down();
    },
    ofType: (type) => receiver.received.filter((r) => r.type === type),
    waitFor: (predicate, timeoutMs = 10_000) =>
      eventually(() => receiver.received.find(predicate), timeoutMs),
  };
  const make = () =>
    createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        receiver.hits += 1;
        const body = Buffer.concat(chunks).toString('utf8');
        if (receiver.mode === 'fail') {
          receiver.failedIds.push(String(req.headers['webhook-id']));
          res.writeHead(500).end('down for maintenance');
          return;
        }
        if (receiver.mode === 'slow') return; // never answers: the sender's timeout ends it
        try {
          if (!receiver.secret) throw new Error('the receiver has no secret yet');
          const payload = new Webhook(receiver.secret).verify(
            body,
            req.headers as Record<string, string>,
          ) as any;
          const data = payload.data ?? {};
          receiver.received.push({
            id: String(req.headers['webhook-id']),
            timestamp: Number(req.headers['webhook-timestamp']),
            type: payload.type,
            body: payload,
            subject: (
              {
                person: data.person,
                contact: data.contact,
                seat_request: data.seat_request,
                import: data.import,
                webhook: data.endpoint,
              } as Record<string, { id?: string } | undefined>
            )[String(payload.type).split('.')[0]!]?.id,
          });
          res.writeHead(204).end();
        } catch (err) {
          receiver.rejected.push({ headers: req.headers, body, reason: (err as Error).message });
          res.writeHead(400).end('bad signature');
        }
      });
    });
  server = make();
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', () => ok()));
  port = (server.address() as AddressInfo).port;
  receiver.url = `http://127.0.0.1:${port}${opts.path ?? '/hooks'}`;
  return receiver;
}

/** Opens the App Home as `user` and clicks Webhooks: the Webhooks modal. */
export async function openWebhooks(t: TestApp, user = 'UADMIN') {
  await t.slack.event({ type: 'app_home_opened', user, tab: 'home', channel: `D${user}` });
  const home = t.standin.homeView(user);
  if (!home) throw new Error('no Home tab published');
  await t.slack.clickButton(home, { actionId: 'webhooks_open' }, { user });
  const list = t.standin.lastOpenedView();
  expect(list.callback_id).toBe('webhooks_modal');
  return list;
}

/** Adds an endpoint through the App Home as an admin; returns the secret the modal showed once, and the id. */
export async function addEndpoint(t: TestApp, url: string, events: string[] = [], user = 'UADMIN') {
  const list = await openWebhooks(t, user);
  await t.slack.clickButton(list, { actionId: 'webhooks_add' }, { user });
  const form = t.standin.lastOpenedView();
  expect(form.callback_id).toBe('webhooks_add_modal');
  const res = await t.slack.submitView(form, { url, events }, { user });
  expect(res.json?.response_action).toBe('update');
  const shown = JSON.stringify(res.json.view.blocks);
  const secret = shown.match(/whsec_[A-Za-z0-9+/=]+/)?.[0];
  if (!secret) throw new Error(`no secret shown: ${shown}`);
  const rows = await t.em().getConnection().execute(`select id from webhook_endpoint where url = ?`, [url]);
  return { secret, id: String(rows[0]?.id), view: res.json.view, list };
}
