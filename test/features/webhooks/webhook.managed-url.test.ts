import { query, sql } from '../../../src/db/sql.ts';
import { newSecret } from '../../../src/features/webhooks/webhook.endpoints.ts';
import { startTestApp, type TestApp } from '../../support/app.ts';
import { textOf } from '../../support/views.ts';
import { featuresWith, openWebhooks, type Receiver, startReceiver } from './support.ts';

// WEBHOOK_URL is the deployment's: it serves every workspace, and its query string may hold the receiver's
// key, which the admins of each workspace have no use for.
let t: TestApp;
let deployed: Receiver;
const secret = newSecret();
const KEY = 'operator-key-7f3a9c';

beforeAll(async () => {
  deployed = await startReceiver({ secret, path: '/deployed' });
  t = await startTestApp({
    seatLimit: 10,
    features: featuresWith(),
    env: { WEBHOOK_URL: `${deployed.url}?key=${KEY}`, WEBHOOK_SECRET: secret },
  });
});
afterAll(async () => {
  await t.stop();
  await deployed.close();
});

describe('the endpoint set by the deployment, with a key in its query string', () => {
  it('gets its events at the whole URL, and shows in Slack without the query string', async () => {
    await t.slack.command('/seats', '12', { user: 'UADMIN' });
    await deployed.waitFor((r) => r.type === 'seat_limit.changed');

    const list = await openWebhooks(t);
    expect(textOf(list)).toContain('Managed by the deployment (WEBHOOK_URL)');
    expect(textOf(list)).toContain(`${deployed.url}?[redacted]`);
    expect(JSON.stringify(list)).not.toContain(KEY);

    const [row] = await query<{ id: string }>(t.em(), sql`select id from webhook_endpoint where managed`);
    await t.slack.clickButton(list, { actionId: 'webhooks_log', value: row!.id }, { user: 'UADMIN' });
    const log = t.standin.lastOpenedView();
    expect(log.callback_id).toBe('webhooks_log_modal');
    expect(textOf(log)).toContain(`${deployed.url}?[redacted]`);
    expect(JSON.stringify(log)).not.toContain(KEY);
  });
});
