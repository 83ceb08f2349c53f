import { AuditEvent } from '../../../src/features/audit/audit-event.entity.ts';
import { features } from '../../../src/features/index.ts';
import type { Actor } from '../../../src/features/seats/seat.service.ts';
import { WebhookEndpoints } from '../../../src/features/webhooks/webhook.endpoints.ts';
import { startTestApp, type TestApp } from '../../support/app.ts';

// A receiver's URL may carry its token in the query string (…/hooks?token=…). The audit log, which every
// admin can read and which outlives the endpoint, keeps where events went, not that token.

let t: TestApp;
const admin: Actor = { slackUserId: 'UADMIN', isAdmin: true, surface: 'slack' };

beforeAll(async () => {
  // Without the sender: the endpoint below is never called.
  t = await startTestApp({ features: features.filter((f) => f.name !== 'webhooks') });
});
afterAll(() => t.stop());

it('audits every change of an endpoint with its scheme, host and path only', async () => {
  const endpoints = new WebhookEndpoints({ allowPrivate: true });
  const account = await t.account();
  const url = 'https://hooks.example.com/in/roster?token=s3cr3t-hook&team=acme';
  const { endpoint } = await endpoints.add(t.em(), account, admin, { url, events: [] });
  // The endpoint itself keeps the whole URL: deliveries need it.
  expect(endpoint.url).toBe(url);
  await endpoints.sendTest(t.em(), account, admin, endpoint.id);
  await endpoints.setEnabled(t.em(), account, admin, endpoint.id, false);
  await endpoints.setEnabled(t.em(), account, admin, endpoint.id, true);
  await endpoints.remove(t.em(), account, admin, endpoint.id);

  const events = await t.em().find(AuditEvent, { subjectId: endpoint.id }, { orderBy: { id: 'asc' } });
  expect(events.map((e) => e.action)).toEqual([
    'webhook.endpoint_added',
    'webhook.test_sent',
    'webhook.endpoint_disabled',
    'webhook.endpoint_enabled',
    'webhook.endpoint_deleted',
  ]);
  for (const e of events) {
    expect(JSON.stringify(e.data)).not.toContain('s3cr3t-hook');
    expect((e.data as { url: string }).url).toBe('https://hooks.example.com/in/roster?[redacted]');
  }
});
