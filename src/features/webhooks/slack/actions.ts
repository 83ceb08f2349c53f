import type { EntityManager } from '@mikro-orm/postgresql';
import type { App, BlockButtonAction } from '@slack/bolt';
import type { WebClient } from '@slack/web-api';
import { redactedUrl } from '../../../shared/outbound.ts';
import { slackActor } from '../../../slack/actor.ts';
import { esc } from '../../../slack/blocks.ts';
import { roster } from '../../../slack/context.ts';
import { nowOrLater } from '../../../slack/later.ts';
import type { Deps } from '../../feature.ts';
import type { WebhookEndpoints } from '../webhook.endpoints.ts';
import { addEndpointModal, endpointsModal, logModal, shownUrl, WEBHOOK_ACTIONS } from './blocks.ts';

/**
 * An endpoint as a notice names it: scheme, host and path (the deployment's: scheme and host). A notice may end
 * up as a DM (the modal closed, or no modal), which stays in Slack's history, and the URL's query string may
 * carry the receiver's key.
 */
const shown = (e: { managed: boolean; url: string }) => (e.managed ? shownUrl(e) : esc(redactedUrl(e.url)));

type ButtonArgs = { deps: Deps; body: BlockButtonAction; client: WebClient; em: EntityManager };

/**
 * Shows `notice` where the admin is: the Webhooks modal redrawn when the click came from it, else a DM
 * (a button of a forged or stale payload has no modal to redraw). Either waits for Slack when Slack asks
 * Roster to slow down: the change is already made, so its notice is late rather than lost (by DM, if the
 * modal was closed meanwhile).
 */
async function answer(
  { deps, body, client, em }: ButtonArgs,
  draw: () => Promise<Parameters<typeof endpointsModal>>,
): Promise<void> {
  const [endpoints, notice] = await draw();
  if (body.view?.id) {
    await nowOrLater(
      deps.jobs,
      client,
      {
        method: 'views.update',
        args: { view_id: body.view.id, view: endpointsModal(endpoints, notice) },
        ...(notice ? { ifClosed: { channel: body.user.id, text: notice } } : {}),
      },
      em,
    );
  } else if (notice) {
    await nowOrLater(deps.jobs, client, {
      method: 'chat.postMessage',
      args: { channel: body.user.id, text: notice },
    });
  }
}

/** The Home tab's Webhooks button and the buttons of the Webhooks modal; the service checks admin again. */
export function registerWebhookActions(app: App, deps: Deps, endpoints: WebhookEndpoints): void {
  app.action<BlockButtonAction>(WEBHOOK_ACTIONS.open, async ({ ack, body, context, client }) => {
    await ack();
    const { em, account } = roster(context);
    const actor = await slackActor(deps, context, body.user.id);
    await endpoints.requireAdmin(em, account, actor, 'manage');
    await client.views.open({
      trigger_id: body.trigger_id,
      view: endpointsModal(await endpoints.list(em, account)),
    });
  });

  app.action<BlockButtonAction>(WEBHOOK_ACTIONS.add, async ({ ack, body, context, client }) => {
    await ack();
    const { em, account } = roster(context);
    const actor = await slackActor(deps, context, body.user.id);
    await endpoints.requireAdmin(em, account, actor, 'add');
    await client.views.push({ trigger_id: body.trigger_id, view: addEndpointModal() });
  });

  app.action<BlockButtonAction>(WEBHOOK_ACTIONS.log, async ({ ack, action, body, context, client }) => {
    await ack();
    const { em, account } = roster(context);
    const actor = await slackActor(deps, context, body.user.id);
    const { endpoint, attempts } = await endpoints.attempts(em, account, actor, action.value ?? '');
    await client.views.push({ trigger_id: body.trigger_id, view: logModal(endpoint, attempts) });
  });

  app.action<BlockButtonAction>(WEBHOOK_ACTIONS.test, async ({ ack, action, body, context, client }) => {
    await ack();
    const { em, account } = roster(context);
    const actor = await slackActor(deps, context, body.user.id);
    const msgId = await endpoints.sendTest(em, account, actor, action.value ?? '');
    await answer({ deps, body, client, em }, async () => [
      await endpoints.list(em, account),
      `:outbox_tray: Test event \`${msgId}\` is on its way. *Delivery log* shows how it went.`,
    ]);
  });

  for (const enabled of [true, false]) {
    const id = enabled ? WEBHOOK_ACTIONS.enable : WEBHOOK_ACTIONS.disable;
    app.action<BlockButtonAction>(id, async ({ ack, action, body, context, client }) => {
      await ack();
      const { em, account } = roster(context);
      const actor = await slackActor(deps, context, body.user.id);
      const endpoint = await endpoints.setEnabled(em, account, actor, action.value ?? '', enabled);
      await answer({ deps, body, client, em }, async () => [
        await endpoints.list(em, account),
        enabled
          ? `:large_green_circle: ${shown(endpoint)} is enabled; what was waiting goes out now.`
          : `:red_circle: ${shown(endpoint)} is disabled: no events are queued for it until it is enabled.`,
      ]);
    });
  }

  app.action<BlockButtonAction>(WEBHOOK_ACTIONS.remove, async ({ ack, action, body, context, client }) => {
    await ack();
    const { em, account } = roster(context);
    const actor = await slackActor(deps, context, body.user.id);
    const endpoint = await endpoints.remove(em, account, actor, action.value ?? '');
    await answer({ deps, body, client, em }, async () => [
      await endpoints.list(em, account),
      `:wastebasket: ${shown(endpoint)} was deleted.`,
    ]);
  });
}
