import type { View } from '@slack/types';
import { plain } from '../../../slack/blocks.ts';
import { permissionSetInput, roleInput, sendNowInput } from '../../../slack/inputs.ts';
import type { IPermissionSet } from '../../accounts/account.entity.ts';
import type { Role } from '../../people/user.entity.ts';
import { MAX_EMAILS, MAX_EMAILS_TEXT, MAX_MESSAGE } from '../invite-text.ts';

export const INVITE_VIEW = 'invite_modal';

/** The invite modal, prefilled with what the person already typed. */
export function inviteModal(opts: {
  emailsText?: string;
  role?: Role;
  permissionSets: IPermissionSet[];
}): View {
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
          max_length: MAX_EMAILS_TEXT,
          placeholder: plain('ana@example.com, bo@example.org'),
          ...(opts.emailsText ? { initial_value: opts.emailsText } : {}),
        },
      },
      roleInput('Role', opts.role),
      permissionSetInput(opts.permissionSets, opts.role),
      sendNowInput(
        'Unticked, people are added without an invitation; you can send it later with /invite pending.',
      ),
      {
        type: 'input',
        block_id: 'message',
        optional: true,
        label: plain('Personal message'),
        element: { type: 'plain_text_input', action_id: 'message', multiline: true, max_length: MAX_MESSAGE },
      },
    ],
  };
}
