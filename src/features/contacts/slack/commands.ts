import type { App } from '@slack/bolt';
import { slackActor } from '../../../slack/actor.ts';
import { cut, esc } from '../../../slack/blocks.ts';
import { roster } from '../../../slack/context.ts';
import type { Deps } from '../../feature.ts';
import type { ContactService } from '../contact.service.ts';
import { findResults, MAX_SEARCH } from './blocks.ts';
import { contactModal, prefillFrom } from './views.ts';

const USAGE = [
  '*`/contact`* or *`/contact add`* opens the form to add a contact (`/contact add Ana Lee ana@acme.com` fills it in).',
  '*`/contact find ana`* finds contacts and people whose name, email or company starts with “ana”.',
].join('\n');

/** `/contact`: the add form (prefilled with what was typed), `find TEXT` and `help`. */
export function registerContactCommand(app: App, deps: Deps, contacts: ContactService): void {
  app.command('/contact', async ({ ack, command, context, client, respond }) => {
    await ack();
    const text = command.text.trim();
    const find = /^find(?:\s+(.*))?$/is.exec(text);
    const add = /^add(?:\s+(.*))?$/is.exec(text);
    if (text === '' || add) {
      await client.views.open({ trigger_id: command.trigger_id, view: contactModal(prefillFrom(add?.[1])) });
    } else if (/^help$/i.test(text)) {
      await respond({ response_type: 'ephemeral', text: USAGE });
    } else if (find) {
      const query = (find[1] ?? '').trim();
      if (query.length > MAX_SEARCH) {
        await respond({
          response_type: 'ephemeral',
          text: `Search for at most ${MAX_SEARCH} characters: a name, an email or a company's first letters.`,
        });
        return;
      }
      if (!query) {
        await respond({
          response_type: 'ephemeral',
          text: 'What should I look for? Try `/contact find ana`.',
        });
        return;
      }
      const { em, account } = roster(context);
      const { hits, more } = await contacts.find(em, account, query);
      const viewer = await slackActor(deps, context, command.user_id, { membersOnly: true });
      await respond({ response_type: 'ephemeral', ...findResults(query, hits, 0, more, viewer) });
    } else {
      await respond({
        response_type: 'ephemeral',
        // The command's text comes as typed (not escaped by Slack): shown as text, never as a mention.
        text: `I did not understand \`/contact ${cut(esc(text), 200)}\`.\n${USAGE}`,
      });
    }
  });
}
