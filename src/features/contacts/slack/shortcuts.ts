import type { App } from '@slack/bolt';
import { roster } from '../../../slack/context.ts';
import { type ContactFields, contactModal } from './views.ts';

/** The *Add contact* shortcut, and *Save author as contact* on a message, prefilled from their profile. */
export function registerContactShortcuts(app: App): void {
  app.shortcut('add_contact', async ({ ack, shortcut, client }) => {
    await ack();
    await client.views.open({ trigger_id: shortcut.trigger_id, view: contactModal({}) });
  });

  app.shortcut('save_author_contact', async ({ ack, shortcut, client, context }) => {
    await ack();
    const author = shortcut.type === 'message_action' ? shortcut.message.user : undefined;
    // Without the profile the form still opens, empty, so the person can type the details in.
    const info = author
      ? await client.users.info({ user: author }).catch((err) => {
          roster(context).log.warn({ err, author }, 'could not read the author profile to prefill a contact');
          return null;
        })
      : null;
    const u = info?.user;
    const prefill: ContactFields = {
      name: u?.real_name || u?.profile?.real_name || u?.name || '',
      email: u?.profile?.email ?? '',
      title: u?.profile?.title ?? '',
      phone: u?.profile?.phone ?? '',
    };
    await client.views.open({ trigger_id: shortcut.trigger_id, view: contactModal(prefill) });
  });
}
