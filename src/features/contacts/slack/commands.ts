import type { App, BlockButtonAction, ViewSubmitAction } from '@slack/bolt';
import { z } from 'zod';
import { DomainError } from '../../../shared/errors.ts';
import { slackActor } from '../../../slack/actor.ts';
import { esc } from '../../../slack/blocks.ts';
import { roster } from '../../../slack/context.ts';
import { permissionSets } from '../../accounts/account.service.ts';
import type { Deps } from '../../feature.ts';
import { grantable } from '../../people/grants.ts';
import type { Role } from '../../people/user.entity.ts';
import { Contact } from '../contact.entity.ts';
import type { ContactService } from '../contact.service.ts';
import {
  CONTACT_ACTIONS,
  CONTACT_VIEW,
  CONVERT_VIEW,
  type ContactFields,
  contactModal,
  convertModal,
  findResults,
} from './views.ts';

const USAGE = [
  '*`/contact`* or *`/contact add`* opens the form to add a contact (`/contact add Ana Lee ana@acme.com` fills it in).',
  '*`/contact find ana`* finds contacts and people whose name, email or company starts with “ana”.',
].join('\n');
const uuid = z.uuid();
/** Longer than any name, email or company a person would start typing. */
const MAX_SEARCH = 100;

/** `/contact add Ana Lee ana@acme.com`: an email-looking word fills the email, the rest the name. */
function prefillFrom(text: string | undefined): ContactFields {
  const words = (text ?? '').trim().split(/\s+/).filter(Boolean);
  const email = words.find((w) => w.includes('@'));
  return { name: words.filter((w) => w !== email).join(' '), email: email ?? '' };
}

/** `/contact`, the *Add contact* and *Save author as contact* shortcuts, find, edit and convert. */
export function registerContactListeners(app: App, deps: Deps, contacts: ContactService): void {
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
      await respond({ response_type: 'ephemeral', ...findResults(query, hits, 0, more) });
    } else {
      await respond({
        response_type: 'ephemeral',
        text: `I did not understand \`/contact ${text}\`.\n${USAGE}`,
      });
    }
  });

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

  app.view<ViewSubmitAction>(CONTACT_VIEW, async ({ ack, view, body, context, client }) => {
    const values = Object.fromEntries(
      Object.entries(view.state.values).map(([block, v]) => [block, Object.values(v)[0]?.value ?? null]),
    );
    const parsed = contacts.parse(values);
    if (!parsed.ok) {
      await ack({ response_action: 'errors', errors: parsed.errors });
      return;
    }
    const { em, account } = roster(context);
    const editing = view.private_metadata || undefined;
    const conflict = await contacts.emailConflict(em, account, parsed.value.email, editing);
    if (conflict) {
      await ack({ response_action: 'errors', errors: { email: conflict } });
      return;
    }
    await ack();
    const actor = await slackActor(deps, context, body.user.id);
    let text: string;
    if (editing) {
      const { contact, changed } = await contacts.edit(em, account, actor, editing, parsed.value);
      text = changed.length
        ? `:white_check_mark: Saved your changes to the contact *${esc(contact.name)}* (${changed.join(', ')}).`
        : `Nothing changed on the contact *${esc(contact.name)}*.`;
    } else {
      const contact = await contacts.add(em, account, actor, parsed.value);
      text = `:white_check_mark: Added the contact *${esc(contact.name)}*${contact.email ? ` (${esc(contact.email)})` : ''}. Find it with \`/contact find ${esc(contact.name.split(' ')[0] ?? '')}\`.`;
    }
    await client.chat.postMessage({ channel: body.user.id, text });
  });

  app.action<BlockButtonAction>(CONTACT_ACTIONS.more, async ({ ack, action, context, respond }) => {
    await ack();
    const { q, o } = z
      .object({ q: z.string().max(MAX_SEARCH), o: z.number().int().min(0).max(10_000) })
      .parse(JSON.parse(action.value ?? '{}'));
    const { em, account } = roster(context);
    const { hits, more } = await contacts.find(em, account, q, o);
    await respond({ response_type: 'ephemeral', replace_original: false, ...findResults(q, hits, o, more) });
  });

  app.action<BlockButtonAction>(CONTACT_ACTIONS.add, async ({ ack, action, body, client }) => {
    await ack();
    const text = action.value ?? '';
    await client.views.open({
      trigger_id: body.trigger_id,
      view: contactModal(prefillFrom(text)),
    });
  });

  app.action<BlockButtonAction>(CONTACT_ACTIONS.edit, async ({ ack, action, body, context, client }) => {
    await ack();
    const { em, account } = roster(context);
    const id = uuid.safeParse(action.value);
    const contact = id.success ? await em.findOne(Contact, { id: id.data, account }) : null;
    if (!contact) throw new DomainError('not_found', 'That contact no longer exists.');
    await client.views.open({ trigger_id: body.trigger_id, view: contactModal(contact, contact.id) });
  });

  app.action<BlockButtonAction>(CONTACT_ACTIONS.convert, async ({ ack, action, body, context, client }) => {
    await ack();
    const { em, account } = roster(context);
    const contact = await contacts.toConvert(em, account, action.value ?? '');
    const actor = await slackActor(deps, context, body.user.id);
    await client.views.open({
      trigger_id: body.trigger_id,
      view: convertModal(contact, grantable(await permissionSets(em, account), actor)),
    });
  });

  app.view<ViewSubmitAction>(CONVERT_VIEW, async ({ ack, view, body, context, client }) => {
    const values = view.state.values;
    const input = {
      role: (values.role?.role?.selected_option?.value ?? '') as Role,
      permissionSetId: values.permission_set?.permission_set?.selected_option?.value ?? null,
      sendNow: (values.send_now?.send_now?.selected_options ?? []).length > 0,
      email: values.email?.email?.value ?? null,
    };
    const { em, account } = roster(context);
    const actor = await slackActor(deps, context, body.user.id);
    const problems = await contacts.convertProblems(em, account, actor, view.private_metadata, input);
    if (problems) {
      // An error for a field the form does not show goes on the role, which every form has.
      const errors: Record<string, string> = {};
      for (const [field, message] of Object.entries(problems)) {
        const block = field in values ? field : 'role';
        errors[block] = errors[block] ? `${errors[block]} ${message}` : message;
      }
      await ack({ response_action: 'errors', errors });
      return;
    }
    await ack();
    const result = await contacts.convert(em, account, actor, view.private_metadata, input);
    await client.chat.postMessage({
      channel: body.user.id,
      text:
        result.status === 'converted'
          ? `:white_check_mark: ${esc(result.user.email)} is now a user${result.user.status === 'invited' ? ' and the invitation is on its way' : ' (not invited yet: `/invite pending` sends the invitation)'}. The contact stays, linked to the user.`
          : `:hourglass_flowing_sand: ${esc(result.email)} takes a paid seat, so an admin has been asked to approve it. You will get a message when they decide.`,
    });
  });
}
