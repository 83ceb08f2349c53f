import type { App, BlockButtonAction, ViewSubmitAction } from '@slack/bolt';
import { z } from 'zod';
import { DomainError } from '../../../shared/errors.ts';
import { slackActor } from '../../../slack/actor.ts';
import { esc } from '../../../slack/blocks.ts';
import { roster } from '../../../slack/context.ts';
import { nowOrLater } from '../../../slack/later.ts';
import type { Deps } from '../../feature.ts';
import type { TokenLifetime } from '../api-token.service.ts';
import {
  API_TOKEN_ACTIONS,
  API_TOKEN_EXPIRES_BLOCK,
  API_TOKEN_NAME_BLOCK,
  API_TOKENS_VIEW,
} from './blocks.ts';
import { createdModal, tokensModal } from './views.ts';

const tokenId = z.uuid();

/** App Home → API tokens: the list, Revoke, and creating a token; admins only, checked on every request. */
export function registerApiTokenSlack(app: App, deps: Deps): void {
  const service = deps.apiTokens;
  const apiUrl = () => deps.config.publicUrl;

  app.action<BlockButtonAction>(API_TOKEN_ACTIONS.open, async ({ ack, body, context, client }) => {
    await ack();
    const { em, account } = roster(context);
    if (!(await deps.admins.isAdmin(em, account, body.user.id))) {
      throw new DomainError('not_admin', 'Only admins can manage API tokens.');
    }
    await client.views.open({
      trigger_id: body.trigger_id,
      view: tokensModal(await service.list(em, account), apiUrl()),
    });
  });

  app.action<BlockButtonAction>(API_TOKEN_ACTIONS.revoke, async ({ ack, body, action, context, client }) => {
    await ack();
    const { em, account } = roster(context);
    const view = body.view;
    const actor = await slackActor(deps, context, body.user.id);
    let notice: string;
    const id = tokenId.safeParse(action.value);
    try {
      // Whoever may not revoke is refused (and audited) before the value is read, however malformed.
      const revoked = await service.revoke(em, account, actor, id.success ? id.data : null);
      notice = `:white_check_mark: *${esc(revoked.name)}* is revoked: requests with it fail from now on.`;
    } catch (err) {
      // Someone who may not manage tokens is told apart, and no view is redrawn: the view a click names
      // is whatever its payload says, and could be an admin's open modal.
      if (!(err instanceof DomainError) || !actor.isAdmin) throw err;
      notice = `:warning: ${esc(err.message)}`;
    }
    if (!view) return;
    const tokens = await service.list(em, account);
    // The revocation is made: its notice waits for Slack when Slack asks Roster to slow down.
    await nowOrLater(
      deps.jobs,
      client,
      {
        method: 'views.update',
        args: { view_id: view.id, hash: view.hash, view: tokensModal(tokens, apiUrl(), notice) },
        ifClosed: { channel: body.user.id, text: notice },
      },
      em,
    );
  });

  app.view<ViewSubmitAction>(API_TOKENS_VIEW, async ({ ack, view, body, context }) => {
    const { em, account } = roster(context);
    const values = view.state.values;
    const name = values[API_TOKEN_NAME_BLOCK]?.[API_TOKEN_NAME_BLOCK]?.value ?? '';
    const chosen = values[API_TOKEN_EXPIRES_BLOCK]?.[API_TOKEN_EXPIRES_BLOCK]?.selected_option?.value;
    // A menu value no form offered is passed on as it is, for the service to refuse.
    const lifetime = (chosen === 'never' ? null : chosen ? Number(chosen) : Number.NaN) as TokenLifetime;
    const actor = await slackActor(deps, context, body.user.id);
    try {
      const { token, row } = await service.create(em, account, actor, name, lifetime);
      await ack({ response_action: 'update', view: createdModal(row.name, token, row.expiresAt ?? null) });
    } catch (err) {
      if (!(err instanceof DomainError)) throw err;
      const field = err.field === API_TOKEN_EXPIRES_BLOCK ? API_TOKEN_EXPIRES_BLOCK : API_TOKEN_NAME_BLOCK;
      await ack({ response_action: 'errors', errors: { [field]: err.message } });
    }
  });
}
