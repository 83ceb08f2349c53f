import type { App, ViewSubmitAction } from '@slack/bolt';
import { DomainError } from '../../../shared/errors.ts';
import { slackActor } from '../../../slack/actor.ts';
import { roster } from '../../../slack/context.ts';
import { nowOrLater } from '../../../slack/later.ts';
import type { Deps } from '../../feature.ts';
import type { WebhookEndpoints } from '../webhook.endpoints.ts';
import { endpointsModal, secretModal, WEBHOOK_VIEWS } from './blocks.ts';

/** The add-endpoint form: checked, saved, and answered with the signing secret, shown this once. */
export function registerWebhookViews(app: App, deps: Deps, endpoints: WebhookEndpoints): void {
  app.view<ViewSubmitAction>(WEBHOOK_VIEWS.add, async ({ ack, view, body, context, client }) => {
    const { em, account } = roster(context);
    const values = view.state.values;
    const url = values.url?.url?.value ?? '';
    const events = (values.events?.events?.selected_options ?? []).map((o) => o.value);
    const actor = await slackActor(deps, context, body.user.id);
    let added: Awaited<ReturnType<WebhookEndpoints['add']>>;
    try {
      added = await endpoints.add(em, account, actor, { url, events });
    } catch (err) {
      if (err instanceof DomainError) {
        await ack({
          response_action: 'errors',
          errors: { [err.field === 'events' ? 'events' : 'url']: err.message },
        });
        return;
      }
      throw err;
    }
    await ack({ response_action: 'update', view: secretModal(added.endpoint, added.secret) });
    // The list underneath shows the new endpoint when the secret is closed (a little later if Slack asks
    // Roster to slow down), so the admin does not add it again.
    if (view.previous_view_id) {
      await nowOrLater(
        deps.jobs,
        client,
        {
          method: 'views.update',
          args: { view_id: view.previous_view_id, view: endpointsModal(await endpoints.list(em, account)) },
        },
        em,
      ).catch((err) => roster(context).log.warn({ err }, 'could not redraw the webhooks list'));
    }
  });
}
