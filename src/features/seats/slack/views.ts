import type { App, Context, ViewSubmitAction } from '@slack/bolt';
import type { View } from '@slack/types';
import type { WebClient } from '@slack/web-api';
import { z } from 'zod';
import { DomainError } from '../../../shared/errors.ts';
import { slackActor } from '../../../slack/actor.ts';
import { esc, plain } from '../../../slack/blocks.ts';
import { roster } from '../../../slack/context.ts';
import { ADD_ROSTER } from '../../../slack/errors.ts';
import { afterAck } from '../../../slack/notify.ts';
import { firstTime } from '../../../slack/once.ts';
import { Account, type IAccount } from '../../accounts/account.entity.ts';
import {
  INVITATION_EXPIRY_DAYS,
  JOIN_LINK_EXPIRY_DAYS,
  JOIN_LINK_MAX_USES,
  type SettingsInput,
  type SettingsService,
} from '../../accounts/settings.service.ts';
import type { Deps } from '../../feature.ts';
import { domainsText, MAX_DOMAINS_TEXT } from '../../join-links/join-link.terms.ts';
import { type Decision, type DecisionResult, MAX_REASON } from '../seat.service.ts';
import { type ISeatRequest, SeatRequest } from '../seat-request.entity.ts';
import { decidedPlain, decisionLine, requester } from './blocks.ts';

export const SETTINGS_VIEW = 'settings_modal';
export const REJECT_VIEW = 'seat_reject_modal';

const requestId = z.uuid();

const number = (
  id: string,
  label: string,
  value: number | null,
  min: number,
  max: number,
  optional = false,
) => ({
  type: 'input' as const,
  block_id: id,
  optional,
  label: plain(label),
  hint: plain(`${min} to ${max}.${optional ? ' Empty: no limit.' : ''}`),
  element: {
    type: 'number_input' as const,
    action_id: id,
    is_decimal_allowed: false,
    min_value: String(min),
    max_value: String(max),
    ...(value != null ? { initial_value: String(value) } : {}),
  },
});

/** The settings form, filled with the account's current settings. */
export function settingsModal(account: IAccount): View {
  // What the form shows, kept with it: a field its admin leaves as shown keeps what another admin saved
  // meanwhile (see SettingsService.save), rather than putting back the value the form opened with.
  const shown: SettingsInput = {
    approvalChannelId: account.approvalChannelId ?? null,
    seatLimit: account.seatLimit,
    allowedDomains: account.allowedEmailDomains.length ? domainsText(account.allowedEmailDomains) : '',
    invitationExpiryDays: account.invitationExpiryDays,
    joinLinkExpiryDays: account.joinLinkExpiryDays,
    joinLinkMaxUses: account.joinLinkMaxUses ?? null,
  };
  return {
    type: 'modal',
    callback_id: SETTINGS_VIEW,
    private_metadata: JSON.stringify(shown),
    title: plain('Roster settings'),
    submit: plain('Save'),
    close: plain('Cancel'),
    blocks: [
      {
        type: 'input',
        block_id: 'approval_channel',
        optional: true,
        label: plain('Approval channel'),
        hint: plain('Where seat requests are posted. Empty: a DM to every admin.'),
        element: {
          type: 'conversations_select',
          action_id: 'approval_channel',
          filter: {
            include: ['public', 'private'],
            exclude_bot_users: true,
            exclude_external_shared_channels: true,
          },
          ...(account.approvalChannelId ? { initial_conversation: account.approvalChannelId } : {}),
        },
      },
      number('seat_limit', 'Paid seats', account.seatLimit, 0, 100_000),
      {
        type: 'input',
        block_id: 'allowed_domains',
        optional: true,
        label: plain('Allowed email domains'),
        hint: plain(
          'For example acme.com, acme.co.uk: invitations only to these, and new join links start with them. Empty: any.',
        ),
        element: {
          type: 'plain_text_input',
          action_id: 'allowed_domains',
          max_length: MAX_DOMAINS_TEXT,
          ...(account.allowedEmailDomains.length
            ? { initial_value: domainsText(account.allowedEmailDomains) }
            : {}),
        },
      },
      number(
        'invitation_expiry',
        'Invitations expire after (days)',
        account.invitationExpiryDays,
        INVITATION_EXPIRY_DAYS.min,
        INVITATION_EXPIRY_DAYS.max,
      ),
      number(
        'join_link_expiry',
        'New join links last (days)',
        account.joinLinkExpiryDays,
        JOIN_LINK_EXPIRY_DAYS.min,
        JOIN_LINK_EXPIRY_DAYS.max,
      ),
      number(
        'join_link_max_uses',
        'New join links admit (people)',
        account.joinLinkMaxUses ?? null,
        1,
        JOIN_LINK_MAX_USES,
        true,
      ),
    ] as View['blocks'],
  };
}

/**
 * Whether Roster can post in a channel, or what to do about it: a private channel needs Roster invited,
 * an archived one cannot be used. Public channels take posts through chat:write.public. `withinMs` is for a
 * form, which shows the answer under its field as plain text: the channel is named there by its name, as a
 * mention (`<#C…>`) would show as typed.
 */
export async function channelProblem(
  client: WebClient,
  channelId: string,
  withinMs?: number,
): Promise<string | null> {
  const inForm = withinMs !== undefined;
  try {
    const ask = client.conversations.info({ channel: channelId });
    // Before a form's ack the answer is waited for only so long; without one the channel is taken as chosen,
    // and the approval job falls back to DMs if it cannot post there.
    const info = withinMs === undefined ? await ask : await Promise.race([ask, after(withinMs)]);
    if (!info) return null;
    const channel = info.channel;
    if (channel?.is_archived) return 'That channel is archived. Choose another one.';
    // Seat requests show the requesters' and the people's names and addresses: never to another organisation.
    const shared = channel as { is_ext_shared?: boolean; is_pending_ext_shared?: boolean } | undefined;
    if (shared?.is_ext_shared || shared?.is_pending_ext_shared) {
      return 'That channel is shared with another organisation through Slack Connect, whose people would see the seat requests. Choose a channel of this workspace only.';
    }
    if (channel?.is_private && !channel.is_member) {
      const named = inForm ? (channel.name ? `#${channel.name}` : 'that channel') : `<#${channelId}>`;
      return `Roster is not in the private channel ${named}. First ${ADD_ROSTER}; then save again.`;
    }
    return null;
  } catch (err) {
    const code = (err as { data?: { error?: string } }).data?.error;
    if (code === 'channel_not_found') {
      return `Roster cannot see that channel: it is private and Roster is not in it. First ${ADD_ROSTER}.`;
    }
    throw err;
  }
}

/** The Reject form asks why; the settings form, opened by `/seats settings` or the Home tab, is checked and applied. */
export function registerSeatViews(app: App, deps: Deps, settings: SettingsService): void {
  app.view(REJECT_VIEW, async ({ ack, view, body, context, client }) => {
    const { em, account } = roster(context);
    const id = requestId.safeParse(view.private_metadata);
    const reason = view.state.values.reason?.reason?.value ?? undefined;
    const refuse = (message: string) => ack({ response_action: 'errors', errors: { reason: message } });
    if (!id.success) {
      await refuse('This request no longer exists.');
      return;
    }
    // Read without a lock before the ack: an approval of the same request may hold it while it waits for
    // the account's seats behind an import. The decision is made after the ack, under the lock.
    const request = await em.findOne(SeatRequest, { id: id.data, account });
    if (!request) {
      await refuse('That seat request no longer exists.');
      return;
    }
    if (request.status !== 'pending') {
      await refuse(decidedPlain(request));
      return;
    }
    if (reason && reason.trim().length > MAX_REASON) {
      await refuse(`Keep the reason under ${MAX_REASON} characters (it has ${reason.trim().length}).`);
      return;
    }
    if (!(await deps.admins.isAdmin(em, account, body.user.id))) {
      // Refused and audited at once: no lock is taken for someone who may not decide.
      try {
        await decideAsAdmin(deps, context, body.user.id, id.data, 'reject', reason);
      } catch (err) {
        if (!(err instanceof DomainError)) throw err;
        await refuse(err.message);
        return;
      }
      // Made an admin in between: decided above.
      await ack();
      return;
    }
    await ack();
    await afterAck(
      deps,
      client,
      body.user.id,
      async () => {
        const result = await decideAsAdmin(deps, context, body.user.id, id.data, 'reject', reason);
        // Someone else decided it between the form's check and now: the form is closed, so the admin hears it here.
        return result.outcome === 'already_decided'
          ? `Already decided. ${decisionLine(result.request)}`
          : undefined;
      },
      (m) => `:no_entry: ${m}`,
    );
  });

  app.view<ViewSubmitAction>(SETTINGS_VIEW, async ({ ack, view, body, context, client }) => {
    const { em, account } = roster(context);
    const v = view.state.values;
    const num = (id: string) => {
      const raw = v[id]?.[id]?.value;
      return raw == null || raw === '' ? null : Number(raw);
    };
    const channelId = v.approval_channel?.approval_channel?.selected_conversation ?? null;
    const actor = await slackActor(deps, context, body.user.id);
    if (actor.isAdmin && channelId) {
      const problem = await channelProblem(client, channelId, CHANNEL_CHECK_MS);
      if (problem) {
        await ack({ response_action: 'errors', errors: { approval_channel: problem } });
        return;
      }
    }
    const input = {
      approvalChannelId: channelId,
      seatLimit: num('seat_limit') ?? Number.NaN,
      allowedDomains: v.allowed_domains?.allowed_domains?.value ?? '',
      invitationExpiryDays: num('invitation_expiry') ?? Number.NaN,
      joinLinkExpiryDays: num('join_link_expiry') ?? Number.NaN,
      joinLinkMaxUses: num('join_link_max_uses'),
    };
    const shown = shownSettings(view.private_metadata);
    // Read-only checks before the ack; saving may wait for the account's seats behind an import.
    const problem = await settings.problems(em, account, actor, input, shown);
    if (problem) {
      await ack({
        response_action: 'errors',
        errors: problem.fields ?? { seat_limit: problem.message },
      });
      return;
    }
    await ack();
    if (!(await firstTime(em, `view:${view.id}:${view.hash}`))) return;
    // The form is closed by now: a refusal found under the lock reaches the admin by DM.
    await afterAck(
      deps,
      client,
      body.user.id,
      async () => {
        const changes = await settings.save(em, account, actor, input, shown);
        return changes.length
          ? `:white_check_mark: Settings saved: ${changes.join('; ')}.`
          : 'Settings saved; nothing had changed.';
      },
      (m) => `:no_entry: ${m} The settings were not saved.`,
    );
  });
}

/** What the settings form showed when it opened; null for a form opened before it kept that. */
function shownSettings(metadata: string | undefined): SettingsInput | null {
  try {
    const shown = JSON.parse(metadata || 'null') as SettingsInput | null;
    return shown && typeof shown === 'object' && 'seatLimit' in shown ? shown : null;
  } catch {
    return null;
  }
}

/** How long the settings form waits for Slack to describe the chosen channel before its ack. */
const CHANNEL_CHECK_MS = 1500;

function after(ms: number): Promise<undefined> {
  return new Promise((resolve) => setTimeout(() => resolve(undefined), ms).unref());
}

/** Opens the settings form for an admin; anyone else is told who can. */
export async function openSettings(
  deps: Deps,
  context: Parameters<typeof roster>[0],
  userId: string,
  triggerId: string,
  client: WebClient,
): Promise<void> {
  const { em, account } = roster(context);
  if (!(await deps.admins.isAdmin(em, account, userId))) {
    throw new DomainError('not_admin', 'Only admins can change the settings.');
  }
  await client.views.open({
    trigger_id: triggerId,
    view: settingsModal(await em.findOneOrFail(Account, account.id, { refresh: true })),
  });
}

/** The Reject form: who asked for whom, and an optional reason sent to the requester. */
export function rejectModal(request: ISeatRequest): View {
  return {
    type: 'modal',
    callback_id: REJECT_VIEW,
    private_metadata: request.id,
    title: plain('Reject seat request'),
    submit: plain('Reject'),
    close: plain('Cancel'),
    blocks: [
      {
        type: 'section',
        text: {
          type: 'mrkdwn',
          text: `Reject the request for *${esc(request.email)}* from ${requester(request)}?`,
        },
      },
      {
        type: 'input',
        block_id: 'reason',
        optional: true,
        label: plain('Reason (sent to the requester)'),
        element: {
          type: 'plain_text_input',
          action_id: 'reason',
          multiline: true,
          max_length: MAX_REASON,
        },
      },
    ],
  };
}

/** Decides a seat request as the Slack user who clicked; the service refuses anyone but an admin. */
export async function decideAsAdmin(
  deps: Deps,
  context: Context,
  userId: string,
  id: string,
  decision: Decision,
  reason?: string,
): Promise<DecisionResult> {
  const { em, account } = roster(context);
  const isAdmin = await deps.admins.isAdmin(em, account, userId);
  return deps.seats.decide(em, account, {
    requestId: id,
    actor: { slackUserId: userId, isAdmin, surface: 'slack' },
    decision,
    reason,
  });
}
