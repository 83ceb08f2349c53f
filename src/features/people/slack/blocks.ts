import { z } from 'zod';
import { DomainError } from '../../../shared/errors.ts';
import {
  actions,
  type Block,
  button,
  context,
  cut,
  esc,
  escFit,
  header,
  plain,
  section,
  slackDate,
} from '../../../slack/blocks.ts';
import type { IAuditEvent } from '../../audit/audit-event.entity.ts';
import { INVITE_ACTIONS } from '../../invites/slack/blocks.ts';
import { personSyncLine } from '../../scim/slack/blocks.ts';
import { loginEmail, ROLE_LABEL, STATUS_EXPLAINED } from '../labels.ts';
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
/** The statuses reactivating brings a person back from: deactivated, or an invitation that expired. */
export const REACTIVATED_FROM = ['deactivated', 'expired'] as const;
export type ReactivatedFrom = (typeof REACTIVATED_FROM)[number];
export type Change = (typeof CHANGES)[number];

/** The longest a section may be, with room to spare for Slack counting escaped characters. */
const SECTION_MAX = 2900;

/** A Slack user id, as a mention: `U…`, or `W…` for a member of an Enterprise Grid organisation. */
const SLACK_USER = /^[UW][A-Z0-9]+$/;

function historyLine(e: IAuditEvent): string {
  const by = SLACK_USER.test(e.actor) ? `<@${e.actor}>` : esc(e.actor);
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
    `*Added by:* ${user.addedBy && SLACK_USER.test(user.addedBy) ? `<@${user.addedBy}>` : esc(user.addedBy ?? 'unknown')}, ${slackDate(user.createdAt)}`,
    ...(invitation
      ? [
          `*Invitation:* ${invitation.deliveryMethod === 'email' ? 'by email' : invitation.deliveryMethod === 'slack_dm' ? 'by Slack DM' : 'being delivered'}, expires ${slackDate(invitation.expiresAt)}`,
        ]
      : []),
    ...(viewer.isAdmin ? [personSyncLine(card.scim)].filter((l) => l !== null) : []),
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
  return { text: `${esc(name)} (${esc(loginEmail(user.email))}): ${STATUS_EXPLAINED[user.status]}`, blocks };
}

/**
 * The button for one change. `fromHome`: pressed on the App Home, which is drawn again once the change is
 * made, so it no longer offers what was just done.
 */
export const changeButton = (text: string, change: Change, user: IUser, fromHome = false) =>
  button(
    text,
    `person_change_${change}`,
    JSON.stringify({ u: user.id, c: change, ...(fromHome ? { h: 1 } : {}) }),
  );

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
          // Slack takes at most 300 characters here: a long name is shortened, not the card refused.
          text: `${escFit(displayName(user), 150)} will no longer be able to log in${isPaidRole(user.role) && SEAT_HOLDING_STATUSES.includes(user.status) ? ', and their paid seat is freed' : ''}. An admin can reactivate them later.`,
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
  // A requester may only ask for what takes a paid seat; everything else about a person is an admin's.
  if (!isPaidRole(user.role)) {
    return SEAT_HOLDING_STATUSES.includes(user.status)
      ? [changeButton('Ask for a paid role', 'role', user)]
      : [];
  }
  if (user.status === 'locked' && !user.loginMissing)
    return [changeButton('Ask an admin to unlock', 'unlock', user)];
  if (user.status === 'deactivated') return [changeButton('Ask an admin to reactivate', 'reactivate', user)];
  if (user.status === 'expired') return [changeButton('Ask an admin to invite again', 'reactivate', user)];
  return [];
}

/** A card button's or form's target: the person and the change, checked as anything from a request is. */
const target = z.object({
  u: z.uuid(),
  c: z.enum(CHANGES),
  h: z.literal(1).optional(),
  /** A reactivate form's: the status the person had when it opened, which they must still have on submit. */
  s: z.enum(REACTIVATED_FROM).optional(),
  /** An Edit details form's: the fingerprint of what each field showed (see shownPrint). */
  f: z.record(z.string().max(40), z.string().max(20)).optional(),
  /**
   * A role, permission set or email form's: what it showed of the value it changes (the role, the set's id
   * or null, the email's fingerprint), which the person must still have on submit.
   */
  w: z.string().max(320).nullable().optional(),
});

export function readTarget(value: string | undefined): {
  u: string;
  c: Change;
  h?: 1;
  s?: ReactivatedFrom;
  f?: Record<string, string>;
  w?: string | null;
} {
  try {
    const parsed = target.safeParse(JSON.parse(value ?? ''));
    if (parsed.success) return parsed.data;
  } catch {}
  throw new DomainError('not_found', 'That person is no longer in Roster.');
}
