import type { Context } from '@slack/bolt';
import type { AdminDirectory } from '../features/seats/admins.ts';
import type { Actor } from '../features/seats/seat.service.ts';
import { roster } from './context.ts';

/** The person behind a Slack request, with whether they are an admin, checked on every request. */
export async function slackActor(
  deps: { admins: Pick<AdminDirectory, 'isAdmin'> },
  context: Context,
  userId: string,
): Promise<Actor> {
  const { em, account } = roster(context);
  return { slackUserId: userId, isAdmin: await deps.admins.isAdmin(em, account, userId), surface: 'slack' };
}
