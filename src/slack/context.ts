import type { EntityManager } from '@mikro-orm/postgresql';
import type { Context } from '@slack/bolt';
import type { IAccount } from '../features/accounts/account.entity.ts';
import type { Logger } from '../shared/logger.ts';

/** What the middleware attaches to every Slack request: its own EntityManager, logger and account. */
export type RosterContext = {
  em: EntityManager;
  log: Logger;
  /**
   * The request's account. Its id is known at once; its settings (name, approval channel, domains, expiry) are
   * loaded when `ack()` returns, or before the handler for events and view submissions: read them after the ack.
   */
  account: IAccount;
  teamId: string;
  userId?: string;
  surface: string;
};

export function roster(context: Context): RosterContext {
  const rc = context.roster as RosterContext | undefined;
  if (!rc) throw new Error('Roster middleware did not run for this request');
  return rc;
}

type AnyBody = Record<string, any>;

/** A short name for what the request is: a command, an action id, a view or shortcut callback, an event type. */
export function surfaceOf(body: AnyBody): string {
  if (body.command) return `command:${body.command}`;
  if (body.type === 'block_actions') return `action:${body.actions?.[0]?.action_id ?? 'unknown'}`;
  if (body.type === 'view_submission' || body.type === 'view_closed') return `view:${body.view?.callback_id}`;
  if (body.type === 'shortcut' || body.type === 'message_action') return `shortcut:${body.callback_id}`;
  if (body.event?.type) return `event:${body.event.type}`;
  if (body.type === 'block_suggestion') return `options:${body.action_id}`;
  return body.type ?? 'unknown';
}

export function userIdOf(body: AnyBody): string | undefined {
  return body.user_id ?? body.user?.id ?? body.event?.user?.id ?? body.event?.user;
}

/**
 * The workspace a request is for. A form opened through a channel shared with another organisation comes
 * with the submitter's team as `team`, and the workspace where Roster is installed as the view's
 * `app_installed_team_id`, which Bolt reads first too: the account, its replays and its log are that one's.
 */
export function teamIdOf(body: AnyBody): string | undefined {
  return (
    body.team_id ??
    body.view?.app_installed_team_id ??
    body.team?.id ??
    body.user?.team_id ??
    body.view?.team_id
  );
}
