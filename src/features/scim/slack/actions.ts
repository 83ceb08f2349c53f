import type { App, BlockButtonAction, ViewSubmitAction } from '@slack/bolt';
import type { WebClient } from '@slack/web-api';
import { DomainError } from '../../../shared/errors.ts';
import { slackActor } from '../../../slack/actor.ts';
import { esc, plain, section } from '../../../slack/blocks.ts';
import { roster } from '../../../slack/context.ts';
import { nowOrLater } from '../../../slack/later.ts';
import { auditRefusal } from '../../audit/audit.service.ts';
import type { Deps } from '../../feature.ts';
import type { Actor } from '../../seats/seat.service.ts';
import { parseConnection } from '../scim.service.ts';
import { SCIM_ACTIONS, SCIM_VIEW, SYNC_QUEUED, SYNC_WAITING } from './blocks.ts';
import { scimModal } from './views.ts';

const NOT_ADMIN = 'Only admins can manage SCIM provisioning.';

/** The App Home's SCIM provisioning: the form, Connect, Sync now, Disconnect; each checked as an admin's. */
export function registerScimActions(app: App, deps: Deps): void {
  const { scim } = deps;

  /** The actor, if an admin; otherwise the attempt is recorded and refused. */
  const admin = async (
    context: Parameters<typeof roster>[0],
    userId: string,
    what: string,
  ): Promise<Actor> => {
    const actor = await slackActor(deps, context, userId);
    if (actor.isAdmin) return actor;
    const { em, account } = roster(context);
    await auditRefusal(em, {
      account,
      actor: userId,
      action: 'scim.refused',
      subjectType: 'account',
      subjectId: account.id,
      surface: 'slack',
      data: { what, reason: 'not an admin' },
    });
    throw new DomainError('not_admin', NOT_ADMIN);
  };

  /**
   * Redraws the form with the outcome of what was just done; when Slack asks Roster to slow down, once
   * Slack allows (by DM if the form was closed meanwhile), since the change is already made.
   */
  const refresh = async (
    client: WebClient,
    context: Parameters<typeof roster>[0],
    viewId: string,
    note: string,
  ) => {
    const { em, account, userId } = roster(context);
    await nowOrLater(
      deps.jobs,
      client,
      {
        method: 'views.update',
        args: { view_id: viewId, view: scimModal(await scim.status(em, account.id), note) },
        ...(userId ? { ifClosed: { channel: userId, text: note } } : {}),
      },
      em,
    );
  };

  app.action<BlockButtonAction>(SCIM_ACTIONS.open, async ({ ack, body, context, client }) => {
    await ack();
    await admin(context, body.user.id, 'open');
    const { em, account } = roster(context);
    await client.views.open({
      trigger_id: body.trigger_id,
      view: scimModal(await scim.status(em, account.id)),
    });
  });

  app.view<ViewSubmitAction>(SCIM_VIEW, async ({ ack, view, body, context, client }) => {
    const { em, account } = roster(context);
    const values = view.state.values;
    const input = { url: values.url?.url?.value ?? '', token: values.token?.token?.value ?? '' };
    let actor: Actor;
    try {
      actor = await admin(context, body.user.id, 'connect');
      parseConnection(input);
    } catch (err) {
      if (err instanceof DomainError) {
        await ack({ response_action: 'errors', errors: err.fields ?? { url: err.message } });
        return;
      }
      throw err;
    }
    // The check calls the service, which may take longer than Slack waits for an answer: the form says
    // so at once and shows the outcome when it is known.
    await ack({
      response_action: 'update',
      view: {
        type: 'modal',
        callback_id: SCIM_VIEW,
        title: plain('SCIM provisioning'),
        close: plain('Close'),
        blocks: [section(':hourglass_flowing_sand: Checking the connection…')],
      },
    });
    let note: string;
    try {
      await scim.connect(em, account, actor, input);
      note = ':white_check_mark: Connected. Roster is comparing everyone now; the report comes by DM.';
    } catch (err) {
      if (!(err instanceof DomainError)) throw err;
      note = `:warning: Not connected: ${esc(err.message)}`;
    }
    await refresh(client, context, view.id, note);
  });

  app.action<BlockButtonAction>(SCIM_ACTIONS.syncNow, async ({ ack, body, context, client }) => {
    await ack();
    const actor = await admin(context, body.user.id, 'sync now');
    const { em, account } = roster(context);
    const queued = await scim.syncNow(em, account, actor);
    if (body.view?.id) await refresh(client, context, body.view.id, queued ? SYNC_QUEUED : SYNC_WAITING);
  });

  app.action<BlockButtonAction>(SCIM_ACTIONS.disconnect, async ({ ack, body, context, client }) => {
    await ack();
    const actor = await admin(context, body.user.id, 'disconnect');
    const { em, account } = roster(context);
    const removed = await scim.disconnect(em, account, actor);
    if (body.view?.id) {
      await refresh(
        client,
        context,
        body.view.id,
        removed ? 'Disconnected. Users already in the service stay there.' : 'Nothing was connected.',
      );
    }
  });
}
