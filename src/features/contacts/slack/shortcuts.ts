import type { App } from '@slack/bolt';
import type { View } from '@slack/types';
import { slackActor } from '../../../slack/actor.ts';
import { roster } from '../../../slack/context.ts';
import type { Deps } from '../../feature.ts';
import { type ContactFields, contactModal } from './views.ts';

/** Slackbot's user id, the same in every workspace. */
const SLACKBOT = 'USLACKBOT';

/** The *Add contact* shortcut, and *Save author as contact* on a message, prefilled from their profile. */
export function registerContactShortcuts(app: App, deps: Pick<Deps, 'admins'>): void {
  app.shortcut('add_contact', async ({ ack, shortcut, client, context }) => {
    await ack();
    // Someone of another organisation (Slack Connect) is refused before any form opens.
    await slackActor(deps, context, shortcut.user.id, { membersOnly: true });
    await client.views.open({ trigger_id: shortcut.trigger_id, view: contactModal({}) });
  });

  app.shortcut('save_author_contact', async ({ ack, shortcut, client, context }) => {
    await ack();
    const message = shortcut.type === 'message_action' ? shortcut.message : undefined;
    const author = message?.user;
    const { em, account, log } = roster(context);
    // Before anything is read: the form would show this workspace's directory (email, phone) to someone of
    // another organisation, whatever author their payload names.
    await slackActor(deps, context, shortcut.user.id, { membersOnly: true });
    // A message posted by an app, a workflow or Slackbot has no person behind it to save. Slackbot's
    // messages carry its user id and no bot_id, and its profile is not flagged as a bot.
    if ((!author && (message?.bot_id || message?.subtype === 'bot_message')) || author === SLACKBOT) {
      await client.views.open({ trigger_id: shortcut.trigger_id, view: notAPersonModal() });
      return;
    }
    // From the directory mirror, asking Slack only about someone it has not seen. Without the profile the
    // form still opens, empty, so the person can type the details in.
    const member = author
      ? await deps.admins.member(em, account, author).catch((err) => {
          log.warn({ err, author }, 'could not read the author profile to prefill a contact');
          return null;
        })
      : null;
    if (member?.isBot) {
      await client.views.open({ trigger_id: shortcut.trigger_id, view: notAPersonModal() });
      return;
    }
    const prefill: ContactFields = {
      name: member?.name ?? '',
      email: member?.email ?? '',
      title: member?.title ?? '',
      phone: member?.phone ?? '',
    };
    await client.views.open({ trigger_id: shortcut.trigger_id, view: contactModal(prefill) });
  });
}

/** Said instead of the contact form when the message's author is an app or a bot. */
function notAPersonModal(): View {
  return {
    type: 'modal',
    title: { type: 'plain_text', text: 'Save as contact' },
    close: { type: 'plain_text', text: 'OK' },
    blocks: [
      {
        type: 'section',
        text: {
          type: 'mrkdwn',
          text: 'That message was posted by an app, not a person, so there is nobody to save as a contact. To add someone it mentions, use *Add contact* or `/contact add`.',
        },
      },
    ],
  };
}
