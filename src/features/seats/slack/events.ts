import type { App } from '@slack/bolt';
import { roster } from '../../../slack/context.ts';
import { isOfWorkspace, memberOf } from '../../directory/directory.service.ts';
import type { Deps } from '../../feature.ts';
import { deactivateFromSlack } from '../../people/people.service.ts';

/** A person deactivated in Slack is deactivated in Roster, and their seat is freed. */
export function registerUserChange(app: App, deps: Deps): void {
  app.event('user_change', async ({ event, context }) => {
    const user = event.user as { id: string; deleted?: boolean; profile?: { email?: string } };
    if (!user.deleted) return;
    const { em, account, log } = roster(context);
    // Someone of another organisation, met through Slack Connect, deleted there: not anyone here, even by email.
    const member = memberOf(event.user as Parameters<typeof memberOf>[0]);
    if (member && !isOfWorkspace(member, account.teamId)) return;
    const count = await deactivateFromSlack(em, deps.seats, account, user.id, user.profile?.email);
    if (count) log.info({ slackUser: user.id, count }, 'deactivated in Slack: deactivated in Roster');
  });
}
