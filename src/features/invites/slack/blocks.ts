import { actions, type Block, button, context, esc, section, slackDate } from '../../../slack/blocks.ts';
import { ROLE_LABEL, statusText } from '../../people/labels.ts';
import type { InviteOutcome } from '../invite.service.ts';

export const INVITE_ACTIONS = {
  resend: 'invite_resend',
  send: 'invite_send',
  cancel: 'invite_cancel',
  accept: 'invite_accept',
  more: 'invite_pending_more',
} as const;

function line(o: InviteOutcome): string {
  switch (o.result) {
    case 'invited':
      return `:envelope: *${esc(o.email)}*: invited; the invitation is on its way.`;
    case 'added':
      return `:heavy_plus_sign: *${esc(o.email)}*: added without an invitation.`;
    case 'converted':
      return `:arrows_counterclockwise: *${esc(o.email)}*: was a contact, now a user${o.sent ? '; the invitation is on its way' : ' (not invited yet)'}. The contact's details are kept.`;
    case 'exists':
      return `:information_source: *${esc(o.email)}*: already in Roster, ${statusText(o.user.status)}.`;
    case 'requested':
      return `:hourglass_flowing_sand: *${esc(o.email)}*: takes a paid seat, so an admin has been asked to approve it. You will get a message when they decide.`;
    case 'refused':
      return `:no_entry: *${esc(o.email)}*: ${esc(o.reason)}`;
  }
}

/** One message for the person who invited: every address and what happened to it. */
export function inviteSummary(outcomes: InviteOutcome[], role: string): { text: string; blocks: Block[] } {
  const done = outcomes.filter((o) => ['invited', 'added', 'converted'].includes(o.result)).length;
  const text = `Invitations: ${done} of ${outcomes.length} added as ${ROLE_LABEL[role] ?? role}`;
  const blocks: Block[] = [section(`*${text}*`)];
  for (const o of outcomes.slice(0, 45)) {
    if (o.result === 'exists' && (o.user.status === 'invited' || o.user.status === 'not_invited')) {
      blocks.push({
        type: 'section',
        text: { type: 'mrkdwn', text: line(o) },
        accessory: button(
          o.user.status === 'invited' ? 'Resend' : 'Send invitation',
          o.user.status === 'invited' ? INVITE_ACTIONS.resend : INVITE_ACTIONS.send,
          o.user.id,
        ),
      });
    } else {
      blocks.push(section(line(o)));
    }
  }
  if (outcomes.length > 45)
    blocks.push(context(`…and ${outcomes.length - 45} more. \`/invite pending\` lists them all.`));
  return { text, blocks };
}

/** A summary with a line on its deliveries under the heading, still within a message's 50 blocks. */
export function withProgress(
  summary: { text: string; blocks: Block[] },
  line: string,
): { text: string; blocks: Block[] } {
  const [head, ...rest] = summary.blocks;
  return { text: summary.text, blocks: [...(head ? [head] : []), context(line), ...rest].slice(0, 50) };
}

export function pendingActions(userId: string, status: 'invited' | 'not_invited' | 'expired'): Block {
  // An expired invitation has nothing left to cancel; sending it again asks for a seat again.
  if (status === 'expired')
    return actions(`pending:${userId}`, button('Resend', INVITE_ACTIONS.resend, userId));
  return actions(
    `pending:${userId}`,
    status === 'invited'
      ? button('Resend', INVITE_ACTIONS.resend, userId)
      : button('Send invitation', INVITE_ACTIONS.send, userId, 'primary'),
    button('Cancel', INVITE_ACTIONS.cancel, userId, 'danger'),
  );
}

/** What an invitation says, whichever way it travels. */
export type InvitationLetter = {
  inviter: string;
  accountName: string;
  role: string;
  message: string | null;
  link: string;
  expires: Date;
};

/** The invitation as a Slack DM: who invites you, to what, as what, with Accept and the page's link. */
export function invitationDm(invitationId: string, l: InvitationLetter): { text: string; blocks: Block[] } {
  return {
    text: `${l.inviter} invited you to ${l.accountName} as ${l.role}`,
    blocks: [
      section(`:wave: *${esc(l.inviter)}* invited you to join *${esc(l.accountName)}* as ${esc(l.role)}.`),
      ...(l.message ? [section(`> ${esc(l.message).replace(/\n/g, '\n> ')}`)] : []),
      actions(`invitation:${invitationId}`, button('Accept', INVITE_ACTIONS.accept, invitationId, 'primary')),
      context(`Or open <${l.link}|the invitation page>. It works until ${slackDate(l.expires)}.`),
    ],
  };
}

/**
 * What the inviter reads when Roster has stopped trying: what failed, and the button that tries again. It
 * goes to the inviter alone, who typed the address and needs to see it to spot a typo, so unlike the logs
 * and the job queue's records it names the address.
 */
export function deliveryFailedMessage(
  user: { id: string; email: string; firstName?: string | null; lastName?: string | null },
  error: string,
): { text: string; blocks: Block[] } {
  const name = [user.firstName, user.lastName].filter(Boolean).join(' ').trim();
  const text = `The invitation to ${name ? `${name} (${user.email})` : user.email} could not be delivered`;
  return {
    text,
    blocks: [
      {
        type: 'section',
        text: {
          type: 'mrkdwn',
          text: `:warning: *${esc(text)}.* Roster kept trying for several hours; the last error was: ${esc(error.slice(0, 300))}\nCheck the address (\`/people ${esc(user.email)}\` can change it), then press *Resend* to try again.`,
        },
        accessory: button('Resend', INVITE_ACTIONS.resend, user.id),
      },
    ],
  };
}
