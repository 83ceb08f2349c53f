import { ErrorCode } from '@slack/web-api';
import { TryLater } from '../shared/jobs.ts';
import { TokenRefused } from './token-watch.ts';

/** The error code of a Web API call Slack answered with `ok: false` (`not_in_channel`, …), else undefined. */
export function slackErrorCode(err: unknown): string | undefined {
  const e = err as { code?: string; data?: { error?: string } };
  return e?.code === ErrorCode.PlatformError ? e.data?.error : undefined;
}

/**
 * Whether Slack refused an update or delete of a message because the message is gone or out of reach for
 * good (deleted, its channel archived, deleted or left): no retry changes that answer.
 */
export function messageGone(err: unknown): boolean {
  const code = slackErrorCode(err);
  return code !== undefined && MESSAGE_GONE.has(code);
}

const MESSAGE_GONE = new Set([
  'message_not_found',
  'channel_not_found',
  'is_archived',
  'not_in_channel',
  'cant_update_message',
  'cant_delete_message',
]);

/**
 * What Slack's refusals mean for the person who acted, and what they can do about it. Slack answers a Web
 * API call with an error code (`not_in_channel`, `missing_scope`, …); shown as a bare apology, the person
 * could do nothing with it.
 */
export function slackRefusal(err: unknown): { code: string; text: string } | null {
  const e = err as { code?: string; retryAfter?: number; data?: { error?: string; needed?: string } };
  // Held back because Slack refuses the bot token: said as Slack's refusal, not as a wait.
  if (err instanceof TokenRefused) {
    return { code: err.code, text: (WORDS[err.code] ?? WORDS.token_revoked!)({}) };
  }
  const busy = err instanceof TryLater;
  if (e?.code === ErrorCode.RateLimitedError || busy) {
    // Said at once rather than waited out: a form's trigger would expire meanwhile.
    const seconds = Math.max(1, Math.ceil(busy ? err.retryInMs / 1000 : (e.retryAfter ?? 1)));
    return {
      code: 'ratelimited',
      text: `:hourglass: Slack asked Roster to slow down for ${seconds} second${seconds === 1 ? '' : 's'}. Please try again then.`,
    };
  }
  if (e?.code !== 'slack_webapi_platform_error' || !e.data?.error) return null;
  const code = e.data.error;
  const text = WORDS[code]?.(e.data);
  return text ? { code, text } : null;
}

const RETRY = 'Please try again.';

/**
 * How to add Roster to a channel, the way that works everywhere: typing `/invite @roster` in the channel
 * would open Roster's own invite form, since Roster registers `/invite`.
 */
export const ADD_ROSTER =
  'add Roster to it: open the channel’s details (click its name), then Integrations, then Add an app, and pick Roster';

const WORDS: Record<string, (data: { needed?: string }) => string> = {
  expired_trigger_id: () => `:hourglass: Slack took too long to open the form. ${RETRY}`,
  exchanged_trigger_id: () => `:hourglass: That form was already opened once. ${RETRY}`,
  not_in_channel: () => `:no_entry: Roster is not in that channel. First ${ADD_ROSTER}; then try again.`,
  channel_not_found: () =>
    `:no_entry: Roster cannot see that channel: it is private and Roster is not in it, or it no longer exists. Either ${ADD_ROSTER}, or choose another channel.`,
  is_archived: () => ':no_entry: That channel is archived. Choose another channel.',
  missing_scope: (data) =>
    `:no_entry: Roster lacks a Slack permission${data.needed ? ` (\`${data.needed}\`)` : ''}. A workspace admin reinstalls Roster from its manifest (README: "Create the Slack app") to grant it.`,
  token_revoked: () => ':no_entry: Roster’s Slack token was revoked. A workspace admin reinstalls Roster.',
  invalid_auth: () =>
    ':no_entry: Slack no longer accepts Roster’s token. A workspace admin reinstalls Roster.',
  account_inactive: () =>
    ':no_entry: Roster’s Slack app was deactivated. A workspace admin reinstalls Roster.',
  not_authed: () => ':no_entry: Slack no longer accepts Roster’s token. A workspace admin reinstalls Roster.',
  token_expired: () => ':no_entry: Roster’s Slack token expired. A workspace admin reinstalls Roster.',
  ratelimited: () => `:hourglass: Slack asked Roster to slow down. Wait a minute, then try again.`,
  cannot_dm_bot: () => ':no_entry: That is a bot: Roster cannot send it a message.',
  user_not_found: () => ':no_entry: Slack does not know that person any more.',
  user_disabled: () => ':no_entry: That person is deactivated in Slack.',
};
