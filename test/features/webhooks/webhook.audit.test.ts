import { createHash } from 'node:crypto';
import { AuditEvent } from '../../../src/features/audit/audit-event.entity.ts';
import { features } from '../../../src/features/index.ts';
import type { Actor } from '../../../src/features/seats/seat.service.ts';
import { WebhookEndpoints } from '../../../src/features/webhooks/webhook.endpoints.ts';
import { startTestApp, type TestApp } from '../../support/app.ts';
import { textOf } from '../../support/views.ts';
import { addEndpoint, featuresWith, openWebhooks, type Receiver, startReceiver } from './support.ts';

// A receiver's URL may carry its key in the path (Zapier's /hooks/catch/<id>/<key>/, Slack's
// /services/T…/B…/<secret>) or the query string. The audit log, which read API tokens can list and which
// outlives the endpoint, keeps where events went (the host), not that key.

const admin: Actor = { slackUserId: 'UADMIN', isAdmin: true, surface: 'slack' };

describe('the audit of an endpoint', () => {
  let t: TestApp;
  beforeAll(async () => {
    // Without the sender: the endpoints below are never called.
    t = await startTestApp({ features: features.filter((f) => f.name !== 'webhooks') });
  });
  afterAll(() => t.stop());

  it('keeps its scheme and host, and a fingerprint that tells two endpoints on one host apart', async () => {
    const endpoints = new WebhookEndpoints({ allowPrivate: true });
    const account = await t.account();
    const url =
      'https://hooks.example.com:8443/hooks/catch/123456/PathKey9s3cr3t/?token=s3cr3t-hook&team=acme';
    const { endpoint } = await endpoints.add(t.em(), account, admin, { url, events: [] });
    // The endpoint itself keeps the whole URL: deliveries need it.
    expect(endpoint.url).toBe(url);
    await endpoints.sendTest(t.em(), account, admin, endpoint.id);
    await endpoints.setEnabled(t.em(), account, admin, endpoint.id, false);
    await endpoints.setEnabled(t.em(), account, admin, endpoint.id, true);
    await endpoints.remove(t.em(), account, admin, endpoint.id);
    const other = (
      await endpoints.add(t.em(), account, admin, {
        url: 'https://hooks.example.com:8443/hooks/catch/123456/OtherKey7x/',
        events: [],
      })
    ).endpoint;

    const events = await t.em().find(AuditEvent, { subjectId: endpoint.id }, { orderBy: { id: 'asc' } });
    expect(events.map((e) => e.action)).toEqual([
      'webhook.endpoint_added',
      'webhook.test_sent',
      'webhook.endpoint_disabled',
      'webhook.endpoint_enabled',
      'webhook.endpoint_deleted',
    ]);
    const fingerprint = (events[0]!.data as { urlFingerprint: string }).urlFingerprint;
    expect(fingerprint).toMatch(/^[0-9a-f]{8}$/);
    for (const e of events) {
      expect(JSON.stringify(e.data)).not.toMatch(/PathKey9s3cr3t|s3cr3t-hook|hooks\/catch/);
      expect(e.data).toMatchObject({ url: 'https://hooks.example.com:8443', urlFingerprint: fingerprint });
    }
    const [added] = await t.em().find(AuditEvent, { subjectId: other.id });
    expect(added!.data).toMatchObject({ url: 'https://hooks.example.com:8443' });
    expect((added!.data as { urlFingerprint: string }).urlFingerprint).not.toBe(fingerprint);
    // Not a plain hash of the URL, which anyone could compute from a guess.
    expect(fingerprint).not.toBe(createHash('sha256').update(url).digest('hex').slice(0, 8));
  });
});

describe('a read API token', () => {
  let t: TestApp;
  let receiver: Receiver;
  beforeAll(async () => {
    t = await startTestApp({ features: featuresWith() });
    receiver = await startReceiver({ path: '/hooks/catch/123456/PathKey9s3cr3t/' });
  });
  afterAll(async () => {
    await receiver.close();
    await t.stop();
  });

  it('lists an endpoint added in Slack without the key in its path, which the admins still see', async () => {
    await addEndpoint(t, receiver.url);
    expect(textOf(await openWebhooks(t))).toContain(receiver.url);

    await t.slack.event({ type: 'app_home_opened', user: 'UADMIN', tab: 'home', channel: 'DUADMIN' });
    await t.slack.clickButton(t.standin.homeView('UADMIN')!, 'API tokens', { user: 'UADMIN' });
    const res = await t.slack.submitView(t.standin.lastOpenedView(), { name: 'read' }, { user: 'UADMIN' });
    const token = /roster_[A-Za-z0-9_-]{43}/.exec(textOf(res.json.view))![0];
    const answer = await fetch(`${t.url}/api/v1/audit-events`, {
      headers: { authorization: `Bearer ${token}` },
    });
    expect(answer.status).toBe(200);
    const body = await answer.text();
    expect(body).not.toContain('PathKey9s3cr3t');
    const added = JSON.parse(body).data.find(
      (e: { action: string }) => e.action === 'webhook.endpoint_added',
    );
    expect(added.data.url).toBe(new URL(receiver.url).origin);
  });
});
