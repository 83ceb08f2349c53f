import type { App } from '@slack/bolt';
import { roster } from '../../../slack/context.ts';
import type { Deps } from '../../feature.ts';
import { type ContactFields, contactModal } from './views.ts';

/** The *Add contact* shortcut, and *Save author as contact* on a message, prefilled from their profile. */
export function registerContactShortcuts(app: App, deps: Pick<Deps, 'admins'>): void {
  app.shortcut('add_contact', async ({ ack, shortcut, client }) => {
    await ack();
    await client.views.open({ trigger_id: shortcut.trigger_id, view: contactModal({}) });
  });

  app.shortcut('save_author_contact', async ({ ack, shortcut, client, context }) => {
    await ack();
    const author = shortcut.type === 'message_action' ? shortcut.message.user : undefined;
    const { em, account, log } = roster(context);
    // From the directory mirror, asking Slack only about someone it has not seen. Without the profile the
    // form still opens, empty, so the person can type the details in.
    const member = author
      ? await deps.admins.member(em, account, author).catch((err) => {
          log.warn({ err, author }, 'could not read the author profile to prefill a contact');
          return null;
        })
      : null;
    const prefill: ContactFields = {
      name: member?.name ?? '',
      email: member?.email ?? '',
      title: member?.title ?? '',
      phone: member?.phone ?? '',
    };
    await client.views.open({ trigger_id: shortcut.trigger_id, view: contactModal(prefill) });
  });
}
