import type { Feature } from '../feature.ts';
import { registerWebhookActions } from './slack/actions.ts';
import { registerWebhookViews } from './slack/views.ts';
import { DEFAULT_POLICY, type WebhookPolicy, WebhookSender } from './webhook.delivery.ts';
import { WebhookEndpoints } from './webhook.endpoints.ts';
import { registerWebhookJobs, WEBHOOK_JOBS } from './webhook.jobs.ts';

/**
 * Signed webhooks (Standard Webhooks) for every people change: endpoints managed by admins from the App
 * Home, or one set by the deployment (WEBHOOK_URL); delivery in the job queue with retries, per-subject
 * order and a delivery log. `policy` changes the pacing (tests and benches shorten it).
 */
export function createWebhooksFeature(policy: Partial<WebhookPolicy> = {}): Feature {
  return {
    name: 'webhooks',
    async jobs(deps) {
      await WebhookEndpoints.syncManaged(deps.orm.em.fork(), deps.config.webhook);
      const sender = new WebhookSender({
        policy: { ...DEFAULT_POLICY, ...policy },
        logger: deps.logger.child({ feature: 'webhooks' }),
        allowPrivate: deps.config.allowPrivateUrls ?? false,
        onDisabled: async (tx, endpointId) => {
          await deps.jobs.send(WEBHOOK_JOBS.disabled, { endpointId }, { em: tx });
        },
      });
      return registerWebhookJobs(deps, sender);
    },
    slack(app, deps) {
      const endpoints = new WebhookEndpoints({
        production: deps.config.production,
        allowPrivate: deps.config.allowPrivateUrls ?? false,
      });
      registerWebhookActions(app, deps, endpoints);
      registerWebhookViews(app, deps, endpoints);
    },
  };
}

export const webhooksFeature = createWebhooksFeature();
