import type { View } from '@slack/types';
import {
  actions,
  type Block,
  button,
  context,
  esc,
  header,
  plain,
  section,
  slackDate,
} from '../../../slack/blocks.ts';
import { permissionSetInput, roleInput, sendNowInput } from '../../../slack/inputs.ts';
import type { IPermissionSet } from '../../accounts/account.entity.ts';
import type { IAuditEvent } from '../../audit/audit-event.entity.ts';
import { INVITE_ACTIONS } from '../../invites/slack/blocks.ts';
import { ROLE_LABEL, STATUS_EXPLAINED } from '../labels.ts';
import type { PersonCard } from '../person.service.ts';
import { displayName, type IUser, isPaidRole, SEAT_HOLDING_STATUSES } from '../user.entity.ts';

export const PERSON_ACTIONS = {
  open: 'person_open',
  /** One action id per change (Slack wants them unique within a block); the listener takes them all. */
  change: /^person_change_/,
  deactivate: 'person_deactivate',
} as const;
export const PERSON_VIEW = 'person_change_modal';

/** The changes a person card offers; each opens the form of the same name. */
export const CHANGES = ['unlock', 'reactivate', 'role', 'permission_set', 'details', 'email'] as const;
export type Change = (typeof CHANGES)[number];

/** The longest a section may be, with room to spare for Slack counting escaped characters. */
const SECTION_MAX = 2900;

function cut(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}

function historyLine(e: IAuditEvent): string {
  const by = /^U[A-Z0-9]+$/.test(e.actor) ? `<@${e.actor}>` : esc(e.actor);
  return `${slackDate(e.createdAt, '{date_short} {time}')} · ${esc(e.action.replace(/[._]/g, ' '))} · ${by}`;
}

/** The person card: who they are, their seat, their details and history; the actions the viewer may take. */
export function personCard(
  card: PersonCard,
  viewer: { isAdmin: boolean },
): { text: string; blocks: Block[] } {
  const { user, permissionSet, contact, invitation } = card;
  const name = displayName(user);
  const holdsSeat = isPaidRole(user.role) && SEAT_HOLDING_STATUSES.includes(user.status);
  const facts = [
    user.loginMissing
      ? `*Login email:* missing. The import's email column said “${esc(user.loginHint ?? '')}”: set their email with *Set login email* before they can be unlocked.`
      : `*Email:* ${esc(user.email)}${user.slackUserId ? ` · <@${user.slackUserId}>` : ''}`,
    `*Status:* ${STATUS_EXPLAINED[user.status]}`,
    `*Role:* ${ROLE_LABEL[user.role]} · ${holdsSeat ? 'holds a paid seat' : 'holds no paid seat'}`,
    `*Permission set:* ${permissionSet ? esc(permissionSet.name) : 'none'}${permissionSet?.isAdmin ? ' (a Roster admin while active)' : ''}`,
    `*Added by:* ${user.addedBy && /^U[A-Z0-9]+$/.test(user.addedBy) ? `<@${user.addedBy}>` : esc(user.addedBy ?? 'unknown')}, ${slackDate(user.createdAt)}`,
    ...(invitation
      ? [
          `*Invitation:* ${invitation.deliveryMethod === 'email' ? 'by email' : invitation.deliveryMethod === 'slack_dm' ? 'by Slack DM' : 'being delivered'}, expires ${slackDate(invitation.expiresAt)}`,
        ]
      : []),
  ];
  const details = [
    user.title ? `*Title:* ${esc(user.title)}` : '',
    user.phone ? `*Phone:* ${esc(user.phone)}` : '',
    contact?.company ? `*Company:* ${esc(contact.company)}` : '',
    contact?.notes ? `*Notes:* ${esc(cut(contact.notes, 800))}` : '',
  ].filter(Boolean);
  const blocks: Block[] = [header(cut(name, 150)), section(cut(facts.join('\n'), SECTION_MAX))];
  if (details.length) blocks.push(section(cut(details.join('\n'), SECTION_MAX)));
  blocks.push(
    section(
      card.history.length
        ? `*History* (latest first)\n${cut(card.history.map(historyLine).join('\n'), SECTION_MAX - 20)}`
        : '*History:* nothing recorded yet.',
    ),
  );
  const buttons = viewer.isAdmin ? adminButtons(user) : requesterButtons(user);
  if (buttons.length) blocks.push(actions(`person:${user.id}`, ...buttons));
  if (!viewer.isAdmin) {
    blocks.push(
      context(
        buttons.length
          ? 'Changes that take a paid seat go to an admin for approval.'
          : 'Only admins can change people. Ask one if something here is wrong.',
      ),
    );
  }
  return { text: `${name} (${user.email}): ${STATUS_EXPLAINED[user.status]}`, blocks };
}

const changeButton = (text: string, change: Change, user: IUser) =>
  button(text, `person_change_${change}`, JSON.stringify({ u: user.id, c: change }));

function adminButtons(user: IUser) {
  const out = [];
  if (user.status === 'locked' && !user.loginMissing) out.push(changeButton('Unlock', 'unlock', user));
  if (user.status === 'deactivated') out.push(changeButton('Reactivate', 'reactivate', user));
  if (user.status === 'expired')
    out.push(button('Resend invitation', INVITE_ACTIONS.resend, user.id, 'primary'));
  out.push(changeButton('Change role', 'role', user));
  out.push(changeButton('Permission set', 'permission_set', user));
  out.push(changeButton('Edit details', 'details', user));
  out.push(changeButton(user.loginMissing ? 'Set login email' : 'Change email', 'email', user));
  if (user.status !== 'deactivated') {
    out.push({
      ...button('Deactivate', PERSON_ACTIONS.deactivate, user.id, 'danger'),
      confirm: {
        title: plain('Deactivate?'),
        text: {
          type: 'mrkdwn' as const,
          text: `${esc(displayName(user))} will no longer be able to log in${isPaidRole(user.role) && SEAT_HOLDING_STATUSES.includes(user.status) ? ', and their paid seat is freed' : ''}. An admin can reactivate them later.`,
        },
        confirm: plain('Deactivate'),
        deny: plain('Cancel'),
        style: 'danger' as const,
      },
    });
  }
  return out;
}

/** A requester may ask for the changes that take a seat; an admin decides. */
function requesterButtons(user: IUser) {
  if (user.status === 'locked' && !user.loginMissing)
    return [changeButton('Ask an admin to unlock', 'unlock', user)];
  if (user.status === 'deactivated') return [changeButton('Ask an admin to reactivate', 'reactivate', user)];
  if (user.status === 'expired') return [changeButton('Ask an admin to invite again', 'reactivate', user)];
  if (user.role === 'client') return [changeButton('Ask for a paid role', 'role', user)];
  return [];
}

const SEND_INVITE_HINT = 'Unticked, they can be invited later with /invite pending.';
const ADD_SEAT = { value: 'add_seat', text: plain('Add a seat if none is free') };

/** The form for one change; `private_metadata` carries the person and the change. */
export function changeModal(
  user: IUser,
  change: Change,
  opts: { isAdmin: boolean; sets: IPermissionSet[]; company?: string | null; notes?: string | null },
): View {
  const name = displayName(user);
  const addSeat = opts.isAdmin
    ? [
        {
          type: 'input' as const,
          block_id: 'add_seat',
          optional: true,
          label: plain('Seats'),
          element: { type: 'checkboxes' as const, action_id: 'add_seat', options: [ADD_SEAT] },
        },
      ]
    : [];
  const intro = (text: string) => section(text);
  const shell = (title: string, submit: string, blocks: unknown[]): View => ({
    type: 'modal',
    callback_id: PERSON_VIEW,
    private_metadata: JSON.stringify({ u: user.id, c: change }),
    title: plain(title),
    submit: plain(submit),
    close: plain('Cancel'),
    blocks: blocks as View['blocks'],
  });
  const who = `*${esc(cut(name, 200))}* (${esc(user.email)})`;
  switch (change) {
    case 'unlock':
      return shell(opts.isAdmin ? 'Unlock' : 'Ask to unlock', opts.isAdmin ? 'Unlock' : 'Ask', [
        intro(
          `${who} was imported and cannot log in yet. Unlocking ${isPaidRole(user.role) ? 'takes a paid seat' : 'takes no seat (a client)'}.`,
        ),
        sendNowInput(SEND_INVITE_HINT),
        ...addSeat,
      ]);
    case 'reactivate':
      return shell(opts.isAdmin ? 'Reactivate' : 'Ask to reactivate', opts.isAdmin ? 'Reactivate' : 'Ask', [
        intro(
          `${who} ${user.status === 'expired' ? 'did not accept the invitation in time' : 'is deactivated'}. Reactivating ${isPaidRole(user.role) ? 'takes a paid seat' : 'takes no seat (a client)'}.`,
        ),
        sendNowInput(SEND_INVITE_HINT),
        ...addSeat,
      ]);
    case 'role':
      return shell('Change role', opts.isAdmin ? 'Change' : 'Ask', [
        intro(`${who} is ${ROLE_LABEL[user.role]}. A paid role takes a seat; a client frees it.`),
        roleInput('New role', user.role),
        ...addSeat,
      ]);
    case 'permission_set':
      return shell('Permission set', 'Change', [intro(who), permissionSetInput(opts.sets, user.role)]);
    case 'details':
      return shell('Edit details', 'Save', [
        textInput('first_name', 'First name', user.firstName, 100),
        textInput('last_name', 'Last name', user.lastName, 100),
        textInput('title', 'Title', user.title, 200),
        textInput('phone', 'Phone', user.phone, 50),
        textInput('company', 'Company', opts.company ?? null, 200),
        textInput('notes', 'Notes', opts.notes ?? null, 2000, true),
      ]);
    case 'email':
      return shell('Change login email', 'Change', [
        intro(
          `${who} logs in with this address. A pending invitation went to the old one, so it is cancelled; send a new one afterwards.`,
        ),
        { ...textInput('email', 'New login email', user.email, 254), optional: false },
      ]);
  }
}

function textInput(
  id: string,
  label: string,
  value: string | null | undefined,
  max: number,
  multiline = false,
) {
  return {
    type: 'input' as const,
    block_id: id,
    optional: true,
    label: plain(label),
    element: {
      type: 'plain_text_input' as const,
      action_id: id,
      max_length: max,
      multiline,
      ...(value ? { initial_value: value.slice(0, max) } : {}),
    },
  };
}
