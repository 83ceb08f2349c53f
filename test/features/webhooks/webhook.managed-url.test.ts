import { query, sql } from '../../../src/db/sql.ts';
import { newSecret } from '../../../src/features/webhooks/webhook.endpoints.ts';
import { WEBHOOK_JOBS } from '../../../src/features/webhooks/webhook.jobs.ts';
import { jobsDrained, startTestApp, type TestApp } from '../../support/app.ts';
import { textOf } from '../../support/views.ts';
import { featuresWith, openWebhooks, type Receiver, startReceiver } from './support.ts';

// WEBHOOK_URL is the deployment's: it serves every workspace, and its path or query string may hold the
// receiver's key (Zapier's /hooks/catch/<id>/<key>/), which the admins of each workspace have no use for.
let t: TestApp;
let deployed: Receiver;
const secret = newSecret();
const KEY = 'operator-key-7f3a9c';
const PATH_KEY = 'path-key-4d81e2';

beforeAll(async () => {
  deployed = await startReceiver({ secret, path: `/deployed/${PATH_KEY}/` });
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

describe('the endpoint set by the deployment, with keys in its path and query string', () => {
  const host = () => `http://${new URL(deployed.url).host}/…`;
  const hidden = (shown: unknown) => {
    expect(JSON.stringify(shown)).not.toContain(KEY);
    expect(JSON.stringify(shown)).not.toContain(PATH_KEY);
  };

  it('gets its events at the whole URL, and shows in Slack by its host alone', async () => {
    await t.slack.command('/seats', '12', { user: 'UADMIN' });
    await deployed.waitFor((r) => r.type === 'seat_limit.changed');

    const list = await openWebhooks(t);
    expect(textOf(list)).toContain('Managed by the deployment (WEBHOOK_URL)');
    expect(textOf(list)).toContain(host());
    hidden(list);

    const [row] = await query<{ id: string }>(t.em(), sql`select id from webhook_endpoint where managed`);
    await t.slack.clickButton(list, { actionId: 'webhooks_log', value: row!.id }, { user: 'UADMIN' });
    const log = t.standin.lastOpenedView();
    expect(log.callback_id).toBe('webhooks_log_modal');
    expect(textOf(log)).toContain(host());
    hidden(log);
  });

  it('is named by its host alone when Roster turns it off, and when an admin turns it back on', async () => {
    const [row] = await query<{ id: string }>(t.em(), sql`select id from webhook_endpoint where managed`);
    // Roster turning it off for failing tells every workspace's admins.
    await query(
      t.em(),
      sql`update webhook_endpoint set enabled = false, disabled_reason = 'failing' where managed`,
    );
    await t.roster.jobs.send(WEBHOOK_JOBS.disabled, { endpointId: row!.id });
    await jobsDrained(t.em());
    const told = await t.standin.waitForMessage(
      (m) => m.channel === 'DUADMIN' && textOf(m).includes('turned off the webhook endpoint'),
    );
    expect(textOf(told)).toContain(host());
    hidden(told);

    const list = await openWebhooks(t);
    await t.slack.clickButton(list, { actionId: 'webhooks_enable', value: row!.id }, { user: 'UADMIN' });
    const redrawn = t.standin.lastOpenedView();
    expect(textOf(redrawn)).toContain(`${host()} is enabled`);
    hidden(redrawn);
  });
});
