import type { App } from '@slack/bolt';
import { roster } from '../../../slack/context.ts';
import type { Deps } from '../../feature.ts';
import { deactivateFromSlack } from '../../people/people.service.ts';

/** A person deactivated in Slack is deactivated in Roster, and their seat is freed. */
export function registerUserChange(app: App, deps: Deps): void {
  app.event('user_change', async ({ event, context }) => {
    const user = event.user as { id: string; deleted?: boolean; profile?: { email?: string } };
    if (!user.deleted) return;
    const { em, account, log } = roster(context);
    const count = await deactivateFromSlack(em, deps.seats, account, user.id, user.profile?.email);
    if (count) log.info({ slackUser: user.id, count }, 'deactivated in Slack: deactivated in Roster');
  });
}
