import type { RosterApp } from '../../../slack/app.ts';
import { roster } from '../../../slack/context.ts';
import { renameAccount } from '../../accounts/account.service.ts';
import type { Deps } from '../../feature.ts';
import { memberOf, mirroredFields } from '../directory.service.ts';

/**
 * Someone joined the workspace or changed (an admin flag, an email, a deactivation): the mirror follows, by a
 * job queued with the event's receipt, retried if it fails. The row is written as of when the event happened
 * in Slack (its event_time): a try that comes after a newer change of the same person was written (a later
 * event, a sync that read them later) leaves that change in place, whichever job ran first and however late
 * Slack delivered this one. Someone in Roster with their email and no Slack account yet is linked to
 * theirs (see DirectoryService.linkUsers). The workspace itself was renamed: the account takes the new
 * name, unless it has one Slack gave later (team.info at every start catches a rename missed here).
 */
export function registerDirectoryEvents(app: RosterApp, deps: Deps): void {
  for (const type of ['team_join', 'user_change'] as const) {
    app.durableEvents.on({
      name: `directory.${type}`,
      type,
      wants: (event) => Boolean(event.user && memberOf(event.user)),
      keep: (event) => ({ user: mirroredFields(event.user) }),
      async handle(event, { em, account, recordedAt, eventTime }) {
        const member = memberOf(event.user);
        if (!member) return;
        await deps.directory.upsert(em, account, [member], { asOf: { eventTime, recordedAt } });
        await deps.directory.linkUsers(em, account, [member]);
      },
    });
  }
  app.event('team_rename', async ({ event, body, context }) => {
    const { em, teamId, log } = roster(context);
    const name = (event as { name?: unknown }).name;
    if (typeof name !== 'string') return;
    const eventTime = (body as { event_time?: unknown }).event_time;
    const asOf = typeof eventTime === 'number' ? new Date(eventTime * 1000) : undefined;
    // The request's own workspace, whatever team the event names.
    await renameAccount(em, teamId, name, asOf);
    log.info(
      { team: teamId },
      'workspace renamed in Slack: the account takes the new name unless it has a newer one',
    );
  });
}
