import type { Context } from '@slack/bolt';
import { guestKind } from '../features/directory/directory.service.ts';
import type { AdminDirectory } from '../features/seats/admins.ts';
import type { Actor } from '../features/seats/seat.service.ts';
import { roster } from './context.ts';

/**
 * The person behind a Slack request, with whether they are an admin, checked on every request, and
 * whether the directory knows them as a Slack guest (so a seat request they file says so).
 */
export async function slackActor(
  deps: { admins: Pick<AdminDirectory, 'member' | 'isAdminMember'> },
  context: Context,
  userId: string,
): Promise<Actor> {
  const { em, account } = roster(context);
  const person = await deps.admins.member(em, account, userId);
  const kind = person ? guestKind(person) : null;
  return {
    slackUserId: userId,
    isAdmin: await deps.admins.isAdminMember(em, account, person),
    surface: 'slack',
    ...(kind && kind !== 'unknown' ? { guest: kind } : {}),
  };
}
