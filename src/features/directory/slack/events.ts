import type { App } from '@slack/bolt';
import { roster } from '../../../slack/context.ts';
import type { Deps } from '../../feature.ts';
import { memberOf } from '../directory.service.ts';

/** Someone joined the workspace or changed (an admin flag, an email, a deactivation): the mirror follows. */
export function registerDirectoryEvents(app: App, deps: Deps): void {
  for (const type of ['team_join', 'user_change'] as const) {
    app.event(type, async ({ event, context }) => {
      const { em, account } = roster(context);
      const member = memberOf((event as { user: object }).user as Parameters<typeof memberOf>[0]);
      if (member) await deps.directory.upsert(em, account, [member]);
    });
  }
}
