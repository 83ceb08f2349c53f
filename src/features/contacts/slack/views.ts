import type { View } from '@slack/types';
import { actions, type Block, button, context, esc, plain, section } from '../../../slack/blocks.ts';
import { permissionSetInput, roleInput, sendNowInput } from '../../../slack/inputs.ts';
import type { IPermissionSet } from '../../accounts/account.entity.ts';
import { INVITE_ACTIONS } from '../../invites/slack/blocks.ts';
import { ROLE_LABEL, statusText } from '../../people/labels.ts';
import { PERSON_ACTIONS } from '../../people/slack/blocks.ts';
import type { SearchHit } from '../contact.search.ts';

export const CONTACT_VIEW = 'contact_modal';
export const CONVERT_VIEW = 'contact_convert_modal';
export const CONTACT_ACTIONS = {
  convert: 'contact_convert',
  edit: 'contact_edit',
  more: 'contact_find_more',
  add: 'contact_add_open',
} as const;

const FIELDS = [
  { id: 'name', label: 'Name', optional: false, multiline: false, max: 200 },
  { id: 'email', label: 'Email', optional: true, multiline: false, max: 254 },
  { id: 'phone', label: 'Phone', optional: true, multiline: false, max: 50 },
  { id: 'company', label: 'Company', optional: true, multiline: false, max: 200 },
  { id: 'title', label: 'Title', optional: true, multiline: false, max: 200 },
  { id: 'notes', label: 'Notes', optional: true, multiline: true, max: 2000 },
] as const;

export type ContactFields = Partial<Record<(typeof FIELDS)[number]['id'], string | null>>;

/** Add or edit a contact; `contactId` in private_metadata means edit. */
export function contactModal(prefill: ContactFields, contactId?: string): View {
  return {
    type: 'modal',
    callback_id: CONTACT_VIEW,
    private_metadata: contactId ?? '',
    title: plain(contactId ? 'Edit contact' : 'Add contact'),
    submit: plain('Save'),
    close: plain('Cancel'),
    blocks: FIELDS.map((f) => ({
      type: 'input' as const,
      block_id: f.id,
      optional: f.optional,
      label: plain(f.label),
      element: {
        type: 'plain_text_input' as const,
        action_id: f.id,
        multiline: f.multiline,
        max_length: f.max,
        ...(prefill[f.id] ? { initial_value: prefill[f.id] as string } : {}),
      },
    })),
  };
}

export function convertModal(
  contact: { id: string; name: string; email?: string | null },
  sets: IPermissionSet[],
): View {
  return {
    type: 'modal',
    callback_id: CONVERT_VIEW,
    private_metadata: contact.id,
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

/** Search results, with the buttons that fit each: convert and edit contacts, send or resend invitations. */
export function findResults(
  text: string,
  hits: SearchHit[],
  offset: number,
  more: boolean,
): { text: string; blocks: Block[] } {
  if (hits.length === 0 && offset === 0) {
    return {
      text: `No contact or user matches “${text}”.`,
      blocks: [
        section(`No contact or user matches “${esc(text)}”.`),
        actions('contact_none', button('Add contact', CONTACT_ACTIONS.add, text.slice(0, 150), 'primary')),
      ],
    };
  }
  const blocks: Block[] = [
    section(
      `*Matches for “${esc(text)}”* (${offset + 1}–${offset + hits.length}${more ? ', more below' : ''})`,
    ),
  ];
  for (const hit of hits) {
    const details = [hit.email, hit.company]
      .filter(Boolean)
      .map((v) => esc(v))
      .join(' · ');
    if (hit.kind === 'contact') {
      blocks.push(
        section(
          `*${esc(hit.name)}*${details ? ` · ${details}` : ''}\nContact${hit.convertedTo ? `, converted to user ${esc(hit.convertedTo.email)}, ${statusText(hit.convertedTo.status)}` : ''}`,
        ),
      );
      blocks.push(
        actions(
          `contact:${hit.id}`,
          ...(hit.convertedTo ? [] : [button('Convert to user', CONTACT_ACTIONS.convert, hit.id)]),
          button('Edit', CONTACT_ACTIONS.edit, hit.id),
        ),
      );
    } else {
      const line = `*${esc(hit.name)}*${details ? ` · ${details}` : ''}\nUser, ${ROLE_LABEL[hit.role]}, ${statusText(hit.status)}`;
      const invite =
        hit.status === 'invited'
          ? [button('Resend invitation', INVITE_ACTIONS.resend, hit.id)]
          : hit.status === 'not_invited'
            ? [button('Send invitation', INVITE_ACTIONS.send, hit.id)]
            : [];
      blocks.push(
        section(line),
        actions(`user:${hit.id}`, button('Person card', PERSON_ACTIONS.open, hit.id), ...invite),
      );
    }
  }
  if (more) {
    blocks.push(
      actions(
        'contact_more',
        button(
          'Show more',
          CONTACT_ACTIONS.more,
          JSON.stringify({ q: text.slice(0, 150), o: offset + hits.length }),
        ),
      ),
    );
  } else {
    blocks.push(context('That is all.'));
  }
  return { text: `Matches for “${text}”`, blocks };
}
