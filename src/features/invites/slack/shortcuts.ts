import type { App } from '@slack/bolt';
import { roster } from '../../../slack/context.ts';
import type { Deps } from '../../feature.ts';
import { openInviteModal } from './views.ts';

/** The *Invite people* shortcut, and *Invite author* on a message: both open the invite form. */
export function registerInviteShortcuts(app: App, deps: Deps): void {
  app.shortcut('invite_people', async ({ ack, shortcut, context, client }) => {
    await ack();
    await openInviteModal(deps, client, shortcut.trigger_id, context, shortcut.user.id, {});
  });

  app.shortcut('invite_author', async ({ ack, shortcut, context, client }) => {
    await ack();
    const author = shortcut.type === 'message_action' ? shortcut.message.user : undefined;
    const { em, account } = roster(context);
    const person = author ? await deps.admins.member(em, account, author).catch(() => null) : null;
    await openInviteModal(deps, client, shortcut.trigger_id, context, shortcut.user.id, {
      emailsText: person?.email ?? '',
    });
  });
}
