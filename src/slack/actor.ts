import type { Context } from '@slack/bolt';
import type { IAccount } from '../features/accounts/account.entity.ts';
import { guestKind, isOfWorkspace } from '../features/directory/directory.service.ts';
import type { AdminDirectory } from '../features/seats/admins.ts';
import type { Actor } from '../features/seats/seat.service.ts';
import { DomainError } from '../shared/errors.ts';
import { roster } from './context.ts';

/**
 * The person behind a Slack request, with whether they are an admin, checked on every request, and
 * whether the directory knows them as a Slack guest (so a seat request they file says so). With
 * `membersOnly`, someone the directory knows as of another organisation (Slack Connect) is refused.
 */
export async function slackActor(
  deps: { admins: Pick<AdminDirectory, 'member' | 'isAdminMember'> },
  context: Context,
  userId: string,
  opts: { membersOnly?: boolean } = {},
): Promise<Actor> {
  const { em, account } = roster(context);
  const person = await deps.admins.member(em, account, userId);
  if (opts.membersOnly && person && !isOfWorkspace(person, account.teamId)) throw outsider(account);
  const kind = person ? guestKind(person) : null;
  return {
    slackUserId: userId,
    isAdmin: await deps.admins.isAdminMember(em, account, person),
    surface: 'slack',
    ...(kind && kind !== 'unknown' ? { guest: kind } : {}),
  };
}

/**
 * Someone of another organisation, met in a channel shared through Slack Connect, pressing a button of a
 * surface that shows or changes this workspace's people: refused, whatever the button names.
 */
function outsider(account: IAccount): DomainError {
  return new DomainError(
    'not_allowed',
    `Roster keeps the people of this Slack workspace${account.name ? ` (${account.name})` : ''}. You are here through Slack Connect, from another organisation, so it has nothing to show you and nothing changed. If you should be a member here, ask one of this workspace's admins to invite you.`,
  );
}
