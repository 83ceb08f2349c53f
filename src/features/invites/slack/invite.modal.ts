import type { View } from '@slack/types';
import { plain } from '../../../slack/blocks.ts';
import type { IPermissionSet } from '../../accounts/account.entity.ts';
import type { Role } from '../../people/user.entity.ts';
import { MAX_EMAILS } from '../invite.service.ts';

export const INVITE_VIEW = 'invite_modal';

const ROLE_OPTIONS = [
  { value: 'employee', text: 'Employee · paid seat' },
  { value: 'contractor', text: 'Contractor · paid seat' },
  { value: 'client', text: 'Client · free' },
].map((o) => ({ value: o.value, text: plain(o.text) }));

const SEND_NOW = { value: 'send_now', text: plain('Send invitation now') };

/** The invite modal, prefilled with what the person already typed. */
export function inviteModal(opts: {
  emailsText?: string;
  role?: Role;
  permissionSets: IPermissionSet[];
}): View {
  const sets = opts.permissionSets.map((s) => ({ value: s.id, text: plain(s.name) }));
  const defaultSet =
    sets.find((s) => s.text.text === (opts.role === 'client' ? 'Client' : 'Member')) ?? sets[0];
  return {
    type: 'modal',
    callback_id: INVITE_VIEW,
    title: plain('Invite people'),
    submit: plain('Invite'),
    close: plain('Cancel'),
    blocks: [
      {
        type: 'input',
        block_id: 'emails',
        label: plain('Email addresses'),
        hint: plain(`Separate them with commas, spaces or new lines; up to ${MAX_EMAILS} at once.`),
        element: {
          type: 'plain_text_input',
          action_id: 'emails',
          multiline: true,
          placeholder: plain('ana@example.com, bo@example.org'),
          ...(opts.emailsText ? { initial_value: opts.emailsText } : {}),
        },
      },
      {
        type: 'input',
        block_id: 'role',
        label: plain('Role'),
        element: {
          type: 'static_select',
          action_id: 'role',
          options: ROLE_OPTIONS,
          initial_option: ROLE_OPTIONS.find((o) => o.value === (opts.role ?? 'employee')),
        },
      },
      {
        type: 'input',
        block_id: 'permission_set',
        label: plain('Permission set'),
        element: {
          type: 'static_select',
          action_id: 'permission_set',
          options: sets,
          ...(defaultSet ? { initial_option: defaultSet } : {}),
        },
      },
      {
        type: 'input',
        block_id: 'send_now',
        optional: true,
        label: plain('Invitation'),
        hint: plain(
          'Unticked, people are added without an invitation; you can send it later with /invite pending.',
        ),
        element: {
          type: 'checkboxes',
          action_id: 'send_now',
          options: [SEND_NOW],
          initial_options: [SEND_NOW],
        },
      },
      {
        type: 'input',
        block_id: 'message',
        optional: true,
        label: plain('Personal message'),
        element: { type: 'plain_text_input', action_id: 'message', multiline: true, max_length: 1000 },
      },
    ],
  };
}
