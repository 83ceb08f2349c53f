import type { App, BlockButtonAction, ViewSubmitAction } from '@slack/bolt';
import { z } from 'zod';
import { DomainError } from '../../../shared/errors.ts';
import { slackActor } from '../../../slack/actor.ts';
import { esc } from '../../../slack/blocks.ts';
import { roster } from '../../../slack/context.ts';
import { permissionSets } from '../../accounts/account.service.ts';
import type { Deps } from '../../index.ts';
import { ROLES, type Role } from '../../people/user.entity.ts';
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
} from './contact.views.ts';

const USAGE = [
  '*`/contact`* or *`/contact add`* opens the form to add a contact.',
  '*`/contact find ana`* finds contacts and people whose name, email or company starts with “ana”.',
].join('\n');
const uuid = z.uuid();

/** `/contact`, the *Add contact* and *Save author as contact* shortcuts, find, edit and convert. */
export function registerContactListeners(app: App, deps: Deps, contacts: ContactService): void {
  app.command('/contact', async ({ ack, command, context, client, respond }) => {
    await ack();
    const text = command.text.trim();
    const find = /^find(?:\s+(.*))?$/is.exec(text);
    if (text === '' || /^add$/i.test(text)) {
      await client.views.open({ trigger_id: command.trigger_id, view: contactModal({}) });
    } else if (find) {
      const query = (find[1] ?? '').trim();
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

  app.shortcut('save_author_contact', async ({ ack, shortcut, client }) => {
    await ack();
    const author = shortcut.type === 'message_action' ? shortcut.message.user : undefined;
    const info = author ? await client.users.info({ user: author }).catch(() => null) : null;
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
    const saved = editing
      ? await contacts.edit(em, account, actor, editing, parsed.value)
      : await contacts.add(em, account, actor, parsed.value);
    await client.chat.postMessage({
      channel: body.user.id,
      text: `:white_check_mark: ${editing ? 'Saved your changes to' : 'Added'} the contact *${esc(saved.name)}*${saved.email ? ` (${esc(saved.email)})` : ''}. Find it with \`/contact find ${esc(saved.name.split(' ')[0] ?? '')}\`.`,
    });
  });

  app.action<BlockButtonAction>(CONTACT_ACTIONS.more, async ({ ack, action, context, respond }) => {
    await ack();
    const { q, o } = z
      .object({ q: z.string(), o: z.number().int().min(0) })
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
      view: contactModal(text.includes('@') ? { email: text } : { name: text }),
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
    const id = uuid.safeParse(action.value);
    const contact = id.success
      ? await em.findOne(Contact, { id: id.data, account }, { populate: ['user'] })
      : null;
    if (!contact) throw new DomainError('not_found', 'That contact no longer exists.');
    if (contact.user) {
      const user = contact.user.getEntity();
      throw new DomainError(
        'conflict',
        `${contact.name} was already converted: they are user ${user.email} (${user.status.replace('_', ' ')}).`,
      );
    }
    if (!contact.email) {
      throw new DomainError(
        'invalid_input',
        `${contact.name} has no email address. Use Edit to add one, then convert.`,
      );
    }
    await client.views.open({
      trigger_id: body.trigger_id,
      view: convertModal(contact, await permissionSets(em, account)),
    });
  });

  app.view<ViewSubmitAction>(CONVERT_VIEW, async ({ ack, view, body, context, client }) => {
    const values = view.state.values;
    const role = values.role?.role?.selected_option?.value as Role | undefined;
    if (!role || !(ROLES as readonly string[]).includes(role)) {
      await ack({ response_action: 'errors', errors: { role: 'Choose a role.' } });
      return;
    }
    const { em, account } = roster(context);
    try {
      const result = await contacts.convert(
        em,
        account,
        await slackActor(deps, context, body.user.id),
        view.private_metadata,
        {
          role,
          permissionSetId: values.permission_set?.permission_set?.selected_option?.value ?? null,
          sendNow: (values.send_now?.send_now?.selected_options ?? []).length > 0,
        },
      );
      await ack();
      await client.chat.postMessage({
        channel: body.user.id,
        text:
          result.status === 'converted'
            ? `:white_check_mark: ${esc(result.user.email)} is now a user${result.user.status === 'invited' ? ' and the invitation is on its way' : ' (not invited yet: `/invite pending` sends it)'}.`
            : `:hourglass_flowing_sand: ${esc(result.email)} takes a paid seat, so an admin has been asked to approve it. You will get a message when they decide.`,
      });
    } catch (err) {
      if (err instanceof DomainError) {
        await ack({ response_action: 'errors', errors: { role: err.message } });
        return;
      }
      throw err;
    }
  });
}
