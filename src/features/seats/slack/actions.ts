import type { EntityManager } from '@mikro-orm/postgresql';
import type { App, BlockButtonAction } from '@slack/bolt';
import { z } from 'zod';
import { DomainError } from '../../../shared/errors.ts';
import { esc } from '../../../slack/blocks.ts';
import { roster } from '../../../slack/context.ts';
import type { IAccount } from '../../accounts/account.entity.ts';
import { auditRefusal } from '../../audit/audit.service.ts';
import type { Deps } from '../../feature.ts';
import { joinerLeft } from '../../join-links/tell-joiner.ts';
import { type DecisionResult, MAX_SEAT_LIMIT, SEAT_JOBS } from '../seat.service.ts';
import { SeatRequest } from '../seat-request.entity.ts';
import { decisionLine, outsiderLine, SEAT_ACTIONS, SETTINGS_ACTION } from './blocks.ts';
import { decideAsAdmin, openSettings, rejectModal } from './views.ts';

const NOT_ADMIN = 'Only admins can approve seat requests.';
const requestId = z.uuid();

/** Approve, Approve and add a seat, Reject (opening its reason form) on requests; the Home tab's Settings. */
export function registerSeatActions(app: App, deps: Deps): void {
  const describe = async (em: EntityManager, account: IAccount, result: DecisionResult): Promise<string> => {
    // A joiner who has left Slack is told nothing (see tellJoinerOfDecision), and the admin hears so.
    const told = async (who: string) =>
      (await joinerLeft(deps.directory, em, account, result.request))
        ? 'They have left Slack, so nobody was told.'
        : `${who} been told.`;
    switch (result.outcome) {
      case 'approved':
        return `:white_check_mark: Approved: ${result.request.email} has a seat (${result.usage.used} of ${result.usage.limit} used${result.seatAdded ? ', one seat added' : ''}). ${result.detail}`;
      case 'rejected':
        return `:x: Rejected the request for ${result.request.email}. ${
          // A join's requester may be the admin who posted the link; the person joining is who hears.
          await told(result.request.kind === 'join' ? 'They have' : `<@${result.request.requestedBy}> has`)
        }`;
      case 'no_seat':
        return `:warning: No paid seat is free (${result.usage.used} of ${result.usage.limit} used), so ${result.request.email} was not approved. ${
          result.usage.limit >= MAX_SEAT_LIMIT
            ? `The limit is at its most (${MAX_SEAT_LIMIT}): free a seat first.`
            : `Use *Approve and add a seat* to raise the limit to ${result.usage.limit + 1}, or free a seat first.`
        }`;
      case 'outsider':
        return `:no_entry_sign: Not approved: ${outsiderLine(result.request)} The request is closed and no seat was taken.`;
      case 'refused':
        return `:no_entry_sign: Not approved: ${esc(result.reason)} The request is closed. ${await told(
          result.request.kind === 'join' ? 'The person joining has' : `<@${result.request.requestedBy}> has`,
        )}`;
      case 'already_decided':
        return `The request for ${result.request.email} was already decided. ${decisionLine(result.request)}`;
    }
  };

  for (const [actionId, decision] of [
    [SEAT_ACTIONS.approve, 'approve'],
    [SEAT_ACTIONS.approveAddSeat, 'approve_add_seat'],
  ] as const) {
    app.action<BlockButtonAction>(actionId, async ({ ack, action, body, context, respond }) => {
      await ack();
      const id = requestId.safeParse(action.value);
      if (!id.success) throw new DomainError('not_found', 'That seat request no longer exists.');
      try {
        const result = await decideAsAdmin(deps, context, body.user.id, id.data, decision);
        if (result.outcome === 'no_seat') {
          await deps.jobs.send(SEAT_JOBS.refreshRequest, { requestId: id.data });
        }
        const { em, account } = roster(context);
        const text = await describe(em, account, result);
        await respond({ response_type: 'ephemeral', replace_original: false, text });
      } catch (err) {
        if (err instanceof DomainError && err.code === 'not_admin') {
          await respond({ response_type: 'ephemeral', replace_original: false, text: NOT_ADMIN });
          return;
        }
        throw err;
      }
    });
  }

  app.action<BlockButtonAction>(
    SEAT_ACTIONS.reject,
    async ({ ack, action, body, context, client, respond }) => {
      await ack();
      const { em, account } = roster(context);
      const id = requestId.safeParse(action.value);
      const request = id.success ? await em.findOne(SeatRequest, { id: id.data, account }) : null;
      if (!request) throw new DomainError('not_found', 'That seat request no longer exists.');
      if (!(await deps.admins.isAdmin(em, account, body.user.id))) {
        await auditRefusal(em, {
          account,
          actor: body.user.id,
          action: 'seat_request.decision_refused',
          subjectType: 'seat_request',
          subjectId: request.id,
          surface: 'slack',
          data: { decision: 'reject', reason: 'not an admin' },
        });
        await respond({ response_type: 'ephemeral', replace_original: false, text: NOT_ADMIN });
        return;
      }
      if (request.status !== 'pending') {
        await respond({
          response_type: 'ephemeral',
          replace_original: false,
          text: `The request for ${esc(request.email)} was already decided. ${decisionLine(request)}`,
        });
        return;
      }
      await client.views.open({
        trigger_id: body.trigger_id,
        view: rejectModal(request),
      });
    },
  );

  // The Home tab's Settings button; `/seats settings` opens the same form.
  app.action<BlockButtonAction>(SETTINGS_ACTION, async ({ ack, body, context, client }) => {
    await ack();
    await openSettings(deps, context, body.user.id, body.trigger_id, client);
  });
}
