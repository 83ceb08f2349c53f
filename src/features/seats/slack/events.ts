import type { RosterApp } from '../../../slack/app.ts';
import { isOfWorkspace, memberOf } from '../../directory/directory.service.ts';
import type { Deps } from '../../feature.ts';
import { deactivateFromSlack } from '../../people/people.service.ts';

/**
 * A person deactivated in Slack is deactivated in Roster, and their seat is freed. Done by a job queued with
 * the event's receipt, so a failure (the database, a stop) is retried; a repeat finds nobody left to
 * deactivate.
 */
export function registerUserChange(app: RosterApp, deps: Deps): void {
  app.durableEvents.on({
    name: 'seats.deactivated-in-slack',
    type: 'user_change',
    wants: (event) => event.user?.deleted === true,
    // Who they are and of which workspace: nothing else of their profile.
    keep: ({ user }) => ({
      user: {
        id: user.id,
        team_id: user.team_id,
        deleted: user.deleted,
        ...(user.enterprise_user ? { enterprise_user: { teams: user.enterprise_user.teams } } : {}),
        ...(user.profile ? { profile: { email: user.profile.email } } : {}),
      },
    }),
    async handle(event, { em, account, log, recordedAt, eventTime }) {
      const user = event.user as { id: string; deleted?: boolean; profile?: { email?: string } };
      // Someone of another organisation, met through Slack Connect, deleted there: not anyone here, even by email.
      const member = memberOf(event.user as Parameters<typeof memberOf>[0]);
      if (member && !isOfWorkspace(member, account.teamId)) return;
      // Slack has told of them since, not deleted (reactivated there): that is the newer news.
      const since = await deps.directory.knownSince(em, account, user.id, { eventTime, recordedAt });
      if (since && !since.deleted) {
        log.info({ slackUser: user.id }, 'reactivated in Slack since this deactivation: left as they are');
        return;
      }
      const count = await deactivateFromSlack(em, deps.seats, account, user.id, user.profile?.email, {
        asOf: recordedAt,
        log,
      });
      if (count) log.info({ slackUser: user.id, count }, 'deactivated in Slack: deactivated in Roster');
    },
  });
}
