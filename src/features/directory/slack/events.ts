import type { App } from '@slack/bolt';
import { roster } from '../../../slack/context.ts';
import { renameAccount } from '../../accounts/account.service.ts';
import type { Deps } from '../../feature.ts';
import { memberOf } from '../directory.service.ts';

/**
 * Someone joined the workspace or changed (an admin flag, an email, a deactivation): the mirror follows.
 * The workspace itself was renamed: the account takes the new name.
 */
export function registerDirectoryEvents(app: App, deps: Deps): void {
  for (const type of ['team_join', 'user_change'] as const) {
    app.event(type, async ({ event, context }) => {
      const { em, account } = roster(context);
      const member = memberOf((event as { user: object }).user as Parameters<typeof memberOf>[0]);
      if (member) await deps.directory.upsert(em, account, [member]);
    });
  }
  app.event('team_rename', async ({ event, context }) => {
    const { em, teamId, log } = roster(context);
    const name = (event as { name?: unknown }).name;
    if (typeof name !== 'string') return;
    // The request's own workspace, whatever team the event names.
    await renameAccount(em, teamId, name);
    log.info({ team: teamId }, 'workspace renamed in Slack: the account takes the new name');
  });
}
