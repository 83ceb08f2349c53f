import {
  actions,
  type Block,
  button,
  context,
  esc,
  escFit,
  section,
  slackDate,
} from '../../../slack/blocks.ts';
import { ROLE_LABEL, statusText } from '../../people/labels.ts';
import { displayName } from '../../people/user.entity.ts';
import type { InviteOutcome } from '../invite.service.ts';

export const INVITE_ACTIONS = {
  resend: 'invite_resend',
  send: 'invite_send',
  cancel: 'invite_cancel',
  accept: 'invite_accept',
  more: 'invite_pending_more',
} as const;

/** Whether `inviter` may Resend or Send this person's invitation: theirs to send, or any for an admin. */
function maySend(o: InviteOutcome, inviter: Inviter): boolean {
  return o.result === 'exists' && (inviter.isAdmin || o.user.addedBy === inviter.slackUserId);
}

/** Who the summary is for, as far as its buttons go. */
export type Inviter = { slackUserId: string; isAdmin: boolean };

function line(o: InviteOutcome, inviter: Inviter): string {
  switch (o.result) {
    case 'invited':
      return `:envelope: *${esc(o.email)}*: invited; the invitation is on its way.`;
    case 'added':
      return `:heavy_plus_sign: *${esc(o.email)}*: added without an invitation.`;
    case 'converted':
      return `:arrows_counterclockwise: *${esc(o.email)}*: was a contact, now a user${o.sent ? '; the invitation is on its way' : ' (not invited yet)'}. The contact's details are kept.`;
    case 'exists':
      // An invitation cannot bring back someone deactivated or expired: their card can (or asks an admin to).
      return `:information_source: *${esc(o.email)}*: already in Roster, ${statusText(o.user.status)}.${
        o.user.status === 'deactivated' || o.user.status === 'expired'
          ? ` An admin can ${o.user.status === 'expired' ? 'invite them again' : 'reactivate them'} from their card: \`/people ${esc(o.user.email)}\`.`
          : (o.user.status === 'invited' || o.user.status === 'not_invited') && !maySend(o, inviter)
            ? ' The person who added them, or an admin, can send their invitation.'
            : ''
      }`;
    case 'requested':
      return `:hourglass_flowing_sand: *${esc(o.email)}*: takes a paid seat, so an admin has been asked to approve it. You will get a message when they decide.`;
    case 'refused':
      return `:no_entry: *${esc(o.email)}*: ${esc(o.reason)}`;
  }
}

/**
 * A summary's blocks at most: a message takes 50, and a line on the deliveries is added under the
 * heading while they go out (see withProgress).
 */
const SUMMARY_BLOCKS = 49;
/** Room for the longest line (an address of 254 characters and its reason) several times over. */
const SECTION_TEXT = 3000;

/**
 * The longest line of a summary: three fit in a section with their line breaks, so 100 lines make at most
 * 34 sections however long each one's reason (an allowed domains list of 1,000 characters, say). At 1,000,
 * two fit, and 100 such lines passed Slack's 50 blocks: the inviter saw nothing of the refusals.
 */
const LINE_MAX = Math.floor((SECTION_TEXT - 2) / 3);

/** Escaped mrkdwn cut to `max` characters, never inside an escape such as `&amp;`. */
function cutLine(mrkdwn: string, max: number): string {
  return mrkdwn.length <= max ? mrkdwn : `${mrkdwn.slice(0, max - 1).replace(/&[a-z]*$/, '')}…`;
}

/**
 * One message for the person who invited: every address and what happened to it, however many. Lines
 * share sections, so 100 addresses fit in a message; an address already invited keeps its Resend (or
 * Send invitation) button beside it while the message has room for one, and otherwise `/invite pending`
 * has it.
 */
export function inviteSummary(
  outcomes: InviteOutcome[],
  role: string,
  inviter: Inviter,
): { text: string; blocks: Block[] } {
  const done = outcomes.filter((o) => ['invited', 'added', 'converted'].includes(o.result)).length;
  const text = `Invitations: ${done} of ${outcomes.length} added as ${ROLE_LABEL[role] ?? role}`;
  const items = outcomes.map((o) => ({
    line: cutLine(line(o, inviter), LINE_MAX),
    // Only buttons that work for this inviter: someone else's invitation is theirs or an admin's to send.
    button:
      o.result === 'exists' &&
      (o.user.status === 'invited' || o.user.status === 'not_invited') &&
      maySend(o, inviter)
        ? o.user.status === 'invited'
          ? button('Resend', INVITE_ACTIONS.resend, o.user.id)
          : button('Send invitation', INVITE_ACTIONS.send, o.user.id)
        : null,
  }));
  const build = (buttons: number): Block[] => {
    const blocks: Block[] = [section(`*${text}*`)];
    let lines: string[] = [];
    const flush = () => {
      if (lines.length) blocks.push(section(lines.join('\n')));
      lines = [];
    };
    let withButton = 0;
    for (const item of items) {
      if (item.button && withButton < buttons) {
        withButton++;
        flush();
        blocks.push({ type: 'section', text: { type: 'mrkdwn', text: item.line }, accessory: item.button });
      } else if (lines.join('\n').length + item.line.length + 1 > SECTION_TEXT) {
        flush();
        lines.push(item.line);
      } else {
        lines.push(item.line);
      }
    }
    flush();
    if (withButton < items.filter((i) => i.button).length) {
      blocks.push(context('Resend the other invitations from `/invite pending`.'));
    }
    if (outcomes.some((o) => o.result === 'refused' && o.noSeat)) {
      blocks.push(
        context(
          'To add those no seat was free for, raise the seat limit with `/seats N`, then invite them again.',
        ),
      );
    }
    return blocks;
  };
  // As many lines keep their button as the message has room for.
  let buttons = items.filter((i) => i.button).length;
  let blocks = build(buttons);
  while (blocks.length > SUMMARY_BLOCKS && buttons > 0) {
    buttons = Math.max(0, buttons - (blocks.length - SUMMARY_BLOCKS));
    blocks = build(buttons);
  }
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

/**
 * `raw` as a mrkdwn quote of at most `max` characters. The personal message may hold 1,000 characters, and
 * each `&`, `<` or `>` grows to four or five once escaped, and each line by the quote's `> `: over Slack's
 * 3,000, Slack refuses the whole DM. The end that does not fit is left out, never half an escape.
 */
function quoted(raw: string, max: number): string {
  const quote = (text: string) => `> ${esc(text).replace(/\n/g, '\n> ')}`;
  if (quote(raw).length <= max) return quote(raw);
  let keep = raw.length;
  while (keep > 0 && quote(raw.slice(0, keep)).length > max - 1) keep = Math.floor(keep * 0.9);
  // Not between the two halves of an emoji.
  return `${quote(raw.slice(0, keep).replace(/[\uD800-\uDBFF]$/, ''))}…`;
}

/** What an invitation says, whichever way it travels. */
export type InvitationLetter = {
  inviter: string;
  /** The inviter's Slack email, where the email's replies go; absent when Slack gives none. */
  inviterEmail?: string | null;
  accountName: string;
  role: string;
  message: string | null;
  link: string;
  expires: Date;
};

/** The invitation as a Slack DM: who invites you, to what, as what, with Accept and the page's link. */
export function invitationDm(invitationId: string, l: InvitationLetter): { text: string; blocks: Block[] } {
  return {
    text: `${esc(l.inviter)} invited you to ${esc(l.accountName)} as ${esc(l.role)}`,
    blocks: [
      section(`:wave: *${esc(l.inviter)}* invited you to join *${esc(l.accountName)}* as ${esc(l.role)}.`),
      ...(l.message ? [section(quoted(l.message, SECTION_TEXT))] : []),
      actions(`invitation:${invitationId}`, button('Accept', INVITE_ACTIONS.accept, invitationId, 'primary')),
      context(`Or open <${l.link}|the invitation page>. It works until ${slackDate(l.expires)}.`),
    ],
  };
}

/** Why Roster stopped trying to deliver an invitation, as its inviter is told. */
export type GiveUpCause = 'retried' | 'recipient' | 'message' | 'expired' | 'domain';

/**
 * What the inviter reads when Roster has stopped trying (`retried`: every retry failed; `recipient`,
 * `message`: the mail server refused the address or the email for good, told at once; `expired`: the link
 * expired before it could be delivered; `domain`: the address is outside the allowed domains now): what
 * failed, and the button that tries again. It goes to the inviter alone, who typed the address and needs
 * to see it to spot a typo, so unlike the logs and the job queue's records it names the address.
 */
export function deliveryFailedMessage(
  user: { id: string; email: string; firstName?: string | null; lastName?: string | null },
  error: string,
  how: GiveUpCause = 'retried',
): { text: string; blocks: Block[] } {
  // One line, as everywhere a name is shown; the notification's text is mrkdwn too, so escaped like the blocks.
  const name = user.firstName || user.lastName ? displayName(user) : '';
  const text = `The invitation to ${name ? `${esc(name)} (${esc(user.email)})` : esc(user.email)} could not be delivered`;
  // A name of 511 characters, each `&` five once escaped, with the error would pass Slack's 3,000.
  const who = name ? `${escFit(name, 300)} (${esc(user.email)})` : esc(user.email);
  return {
    text,
    blocks: [
      {
        type: 'section',
        text: {
          type: 'mrkdwn',
          text:
            how === 'expired'
              ? `:warning: *The invitation to ${who} was not delivered:* its link expired before Roster could deliver it (Roster was stopped, or Slack or the mail server held it back), so nothing was sent. Press *Resend* to send a new one.`
              : how === 'domain'
                ? `:warning: *The invitation to ${who} was not delivered.* ${esc(error.slice(0, 300))}\nChange the address (\`/people ${esc(user.email)}\`) or the allowed domains (\`/seats settings\`), then press *Resend*.`
                : how === 'recipient'
                  ? `:warning: *The invitation to ${who} could not be delivered.* ${esc(error.slice(0, 300))}\nThe mail server will refuse this address every time, so Roster did not try again. Correct the address (\`/people ${esc(user.email)}\` can change it), then press *Resend*.`
                  : how === 'message'
                    ? `:warning: *The invitation to ${who} could not be delivered.* ${esc(error.slice(0, 300))}\nThe mail server refused the email itself and would refuse it again, so Roster did not try again. Whoever runs the mail server (\`SMTP_URL\`) can say why it refuses it; press *Resend* once that is fixed.`
                    : `:warning: *The invitation to ${who} could not be delivered.* Roster kept trying for several hours; the last error was: ${esc(error.slice(0, 300))}\nCheck the address (\`/people ${esc(user.email)}\` can change it), then press *Resend* to try again.`,
        },
        accessory: button('Resend', INVITE_ACTIONS.resend, user.id),
      },
    ],
  };
}

/** Addresses listed by name in a batch's notice; the rest are counted. */
const LISTED = 5;

/**
 * What the admin who imported reads when Roster stopped trying to deliver some of a batch's invitations:
 * one message for the batch, by cause, pointing to `/invite pending` for Resend. Addresses refused for good
 * are named (up to five), so a typo can be spotted; a failure of the mail server is told with its error,
 * and said to be told once a day.
 */
export function batchDeliveryFailedMessage(
  failures: { user: { email: string }; error: string; how: GiveUpCause }[],
): { text: string; blocks: Block[] } {
  const n = (count: number, one: string, many = `${one}s`) =>
    `${count.toLocaleString('en-US')} ${count === 1 ? one : many}`;
  const text = `${n(failures.length, 'invitation')} from your CSV import could not be delivered`;
  const of = (how: (typeof failures)[number]['how']) => failures.filter((f) => f.how === how);
  const lines: string[] = [];
  const refused = of('recipient');
  if (refused.length) {
    const named = refused
      .slice(0, LISTED)
      .map((f) => escFit(f.user.email, 100))
      .join(', ');
    const more = refused.length > LISTED ? ` and ${n(refused.length - LISTED, 'more', 'more')}` : '';
    lines.push(
      `• ${n(refused.length, 'address', 'addresses')} the mail server refuses for good, most often a typo: ${named}${more}. Roster did not try again. Correct each address (\`/people EMAIL\` can change it), then press *Resend* in \`/invite pending\`.`,
    );
  }
  const expired = of('expired');
  if (expired.length) {
    lines.push(
      `• ${n(expired.length, 'invitation')} whose link expired before Roster could deliver it (Roster was stopped, or Slack or the mail server held it back): nothing was sent. Press *Resend* in \`/invite pending\` to send new ones.`,
    );
  }
  const domain = of('domain');
  if (domain.length) {
    lines.push(
      `• ${n(domain.length, 'address', 'addresses')} outside the allowed email domains, which changed since the import: ${domain
        .slice(0, LISTED)
        .map((f) => escFit(f.user.email, 100))
        .join(
          ', ',
        )}${domain.length > LISTED ? ` and ${n(domain.length - LISTED, 'more', 'more')}` : ''}. Nothing was sent.`,
    );
  }
  const message = of('message');
  if (message.length) {
    lines.push(
      `• ${n(message.length, 'email')} the mail server refused itself and would refuse again: ${esc(message[0]!.error.slice(0, 300))}. Whoever runs the mail server (\`SMTP_URL\`) can say why; then press *Resend* in \`/invite pending\`.`,
    );
  }
  const retried = of('retried');
  if (retried.length) {
    lines.push(
      `• ${n(retried.length, 'invitation')} still failing after several hours of retries; the last error was: ${esc(retried.at(-1)!.error.slice(0, 300))}. Check Roster's mail settings (\`SMTP_URL\`) and the addresses, then press *Resend* in \`/invite pending\`.`,
    );
  }
  const mailWide = message.length + retried.length > 0;
  return {
    text,
    blocks: [
      section(`:warning: *${text}.*`),
      ...lines.map((line) => section(line)),
      ...(mailWide
        ? [
            context(
              'A failure of the mail server is told once a day, however many batches of the import it stops: `/invite pending` lists every invitation not delivered.',
            ),
          ]
        : []),
    ],
  };
}
