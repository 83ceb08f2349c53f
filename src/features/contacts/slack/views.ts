import type { App, ViewSubmitAction } from '@slack/bolt';
import type { View } from '@slack/types';
import { z } from 'zod';
import { slackActor } from '../../../slack/actor.ts';
import { clip, esc, plain, section } from '../../../slack/blocks.ts';
import { roster } from '../../../slack/context.ts';
import {
  detailInput,
  permissionSetInput,
  roleInput,
  sendNowInput,
  shownPrint,
  untouchedFields,
} from '../../../slack/inputs.ts';
import { afterAck } from '../../../slack/notify.ts';
import { firstTime } from '../../../slack/once.ts';
import type { IPermissionSet } from '../../accounts/account.entity.ts';
import type { Deps } from '../../feature.ts';
import { FIELD_MAX } from '../../people/field-limits.ts';
import type { Role } from '../../people/user.entity.ts';
import type { ContactService } from '../contact.service.ts';

export const CONTACT_VIEW = 'contact_modal';
export const CONVERT_VIEW = 'contact_convert_modal';

const FIELDS = [
  { id: 'name', label: 'Name', optional: false, multiline: false, max: FIELD_MAX.name },
  { id: 'email', label: 'Email', optional: true, multiline: false, max: FIELD_MAX.email },
  { id: 'phone', label: 'Phone', optional: true, multiline: false, max: FIELD_MAX.phone },
  { id: 'company', label: 'Company', optional: true, multiline: false, max: FIELD_MAX.company },
  { id: 'title', label: 'Title', optional: true, multiline: false, max: FIELD_MAX.title },
  { id: 'notes', label: 'Notes', optional: true, multiline: true, max: FIELD_MAX.notes },
] as const;

export type ContactFields = Partial<Record<(typeof FIELDS)[number]['id'], string | null>>;

/**
 * Add or edit a contact; `contactId` in private_metadata means edit. Editing shows the stored values, and
 * one too long for its field is left out and kept (`detailInput`); adding starts from a suggestion (a
 * command's text, a Slack profile), which is cut to the field, as nothing is stored yet.
 */
export function contactModal(prefill: ContactFields, contactId?: string): View {
  return {
    type: 'modal',
    callback_id: CONTACT_VIEW,
    // Editing: the contact, and what each field showed, so a field left as it was keeps what the contact
    // holds when the form is submitted (someone may have changed it meanwhile).
    private_metadata: contactId
      ? JSON.stringify({
          id: contactId,
          f: Object.fromEntries(FIELDS.map((f) => [f.id, shownPrint(prefill[f.id], f.max)])),
        })
      : '',
    title: plain(contactId ? 'Edit contact' : 'Add contact'),
    submit: plain('Save'),
    close: plain('Cancel'),
    blocks: FIELDS.map((f) => {
      const value = prefill[f.id];
      return detailInput(f.id, f.label, contactId ? value : value && clip(value, f.max), f.max, {
        multiline: f.multiline,
        optional: f.optional,
      });
    }),
  };
}

export function convertModal(
  contact: { id: string; name: string; email?: string | null },
  sets: IPermissionSet[],
): View {
  return {
    type: 'modal',
    callback_id: CONVERT_VIEW,
    // The email the form shows, checked on submit: the invitation goes to the address the person saw.
    private_metadata: JSON.stringify({ c: contact.id, e: contact.email ?? null }),
    title: plain('Convert to user'),
    submit: plain('Convert'),
    close: plain('Cancel'),
    blocks: [
      section(
        contact.email
          ? `Give *${esc(contact.name)}* (${esc(contact.email)}) a login. The contact stays, linked to the user.`
          : `Give *${esc(contact.name)}* a login. The contact has no email yet: the one you enter is saved on the contact and becomes their login.`,
      ),
      ...(contact.email
        ? []
        : [
            {
              type: 'input' as const,
              block_id: 'email',
              label: plain('Email'),
              element: {
                type: 'plain_text_input' as const,
                action_id: 'email',
                max_length: 254,
                placeholder: plain('name@example.com'),
              },
            },
          ]),
      roleInput('Role'),
      permissionSetInput(sets),
      sendNowInput(),
    ],
  };
}

const editTarget = z.object({ id: z.string().max(100), f: z.record(z.string(), z.string().max(20)) });

/**
 * The contact an Edit form names and the fingerprints of what it showed; a bare id (a form written before
 * they were kept, or anything else) names the contact alone. Looked up within the account by the service.
 */
export function readEditTarget(meta: string): { contactId?: string; prints?: Record<string, string> } {
  if (!meta) return {};
  try {
    const parsed = editTarget.safeParse(JSON.parse(meta));
    if (parsed.success) return { contactId: parsed.data.id, prints: parsed.data.f };
  } catch {}
  return { contactId: meta };
}

const convertTarget = z.object({ c: z.string().max(100), e: z.string().max(254).nullable() });

/**
 * The contact a Convert form names, and the email it showed (undefined for a form written before it said,
 * whose bare private_metadata is the contact's id). Looked up within the account by the service.
 */
export function readConvertTarget(meta: string): { contactId: string; shownEmail?: string | null } {
  try {
    const parsed = convertTarget.safeParse(JSON.parse(meta));
    if (parsed.success) return { contactId: parsed.data.c, shownEmail: parsed.data.e };
  } catch {}
  return { contactId: meta };
}

/**
 * `/contact add Ana Lee ana@acme.com`: an email-looking word fills the email, the rest the name. As pasted
 * from an email (`"Ana Lee" <ana@acme.com>,`), the quotes around the name and the brackets and commas around
 * the address are left out.
 */
export function prefillFrom(text: string | undefined): ContactFields {
  const words = (text ?? '').trim().split(/\s+/).filter(Boolean);
  const email = words.find((w) => w.includes('@'));
  const name = words
    .filter((w) => w !== email)
    .join(' ')
    .replace(/^["'“”‘’]+|["'“”‘’]+$/g, '')
    .trim();
  const address = (email ?? '').replace(/^[<(["'“‘]*(?:mailto:)?|[>)\]"'”’,;.]*$/gi, '');
  return { name, email: address };
}

/** The add/edit contact form's and the convert form's submissions: field errors, or the change and a DM. */
export function registerContactViews(app: App, deps: Deps, contacts: ContactService): void {
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
    const { contactId: editing, prints } = readEditTarget(view.private_metadata);
    const untouched = untouchedFields(prints, values);
    const actor = await slackActor(deps, context, body.user.id, { membersOnly: true });
    // A contact converted since the form opened is an admin's to edit: said first, on the form, rather
    // than asking to fix the email and then refusing the whole form.
    const refused = editing ? await contacts.editProblem(em, account, actor, editing) : null;
    if (refused) {
      await ack({ response_action: 'errors', errors: { name: refused } });
      return;
    }
    // An email left as the form showed it is checked as it is then, under the contact's edit.
    const conflict = untouched.has('email')
      ? null
      : await contacts.emailConflict(em, account, parsed.value.email, editing);
    if (conflict) {
      await ack({ response_action: 'errors', errors: { email: conflict } });
      return;
    }
    await ack();
    // The same add form submitted twice (a double click) adds once, and is told once. An edit sent again
    // changes nothing more, and says so.
    if (!editing && !(await firstTime(em, `view:${view.id}:${view.hash}`))) return;
    // The outcome by DM, which waits for Slack when it asks Roster to slow down rather than being lost.
    await afterAck(
      deps,
      client,
      body.user.id,
      async () => {
        if (editing) {
          const { contact, changed } = await contacts.edit(em, account, actor, editing, parsed.value, {
            untouched,
          });
          return changed.length
            ? `:white_check_mark: Saved your changes to the contact *${esc(contact.name)}* (${changed.join(', ')}).`
            : `Nothing changed on the contact *${esc(contact.name)}*.`;
        }
        const contact = await contacts.add(em, account, actor, parsed.value);
        return `:white_check_mark: Added the contact *${esc(contact.name)}*${contact.email ? ` (${esc(contact.email)})` : ''}. Find it with \`/contact find ${esc(contact.name.split(' ')[0] ?? '')}\`.`;
      },
      (m) => `:no_entry: ${m} Nothing was saved.`,
    );
  });

  app.view<ViewSubmitAction>(CONVERT_VIEW, async ({ ack, view, body, context, client }) => {
    const values = view.state.values;
    const { contactId, shownEmail } = readConvertTarget(view.private_metadata);
    const input = {
      role: (values.role?.role?.selected_option?.value ?? '') as Role,
      permissionSetId: values.permission_set?.permission_set?.selected_option?.value ?? null,
      sendNow: (values.send_now?.send_now?.selected_options ?? []).length > 0,
      email: values.email?.email?.value ?? null,
      shownEmail,
    };
    const { em, account } = roster(context);
    const actor = await slackActor(deps, context, body.user.id, { membersOnly: true });
    const problems = await contacts.convertProblems(em, account, actor, contactId, input);
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
    await afterAck(
      deps,
      client,
      body.user.id,
      async () => {
        const result = await contacts.convert(em, account, actor, contactId, input);
        return result.status === 'converted'
          ? `:white_check_mark: ${esc(result.user.email)} is now a user${result.user.status === 'invited' ? ' and the invitation is on its way' : ' (not invited yet: `/invite pending` sends the invitation)'}. The contact stays, linked to the user.`
          : `:hourglass_flowing_sand: ${esc(result.email)} takes a paid seat, so an admin has been asked to approve it. You will get a message when they decide.`;
      },
      (m) => `:no_entry: ${m} The contact was not converted.`,
    );
  });
}
