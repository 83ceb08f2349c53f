import type { Mail } from '../../shared/mailer.ts';
import { emailHtml, html } from '../../web/html.ts';
import { GUEST_LABEL, type GuestKind } from '../directory/directory.service.ts';
import type { UserStatus } from '../people/user.entity.ts';
import type { ISeatRequest } from '../seats/seat-request.entity.ts';
import type { RequestReason } from './join-link.service.ts';

/**
 * What someone who joins while a Roster record already exists for their address is told, on every path
 * (the Join button, the confirmation page, the confirmation email): only an `active` person is in; anyone
 * else hears their real status and what to do, since a join link changes none of them. Plain text: each
 * surface escapes it.
 */
export function standing(
  status: UserStatus,
  email: string,
  accountName: string,
): { heading: string; text: string } {
  const card = `an admin of ${accountName} can do it from your card: /people ${email}`;
  switch (status) {
    case 'active':
      return {
        heading: "You're already in",
        text: `${email} already has access to ${accountName}. Nothing changed.`,
      };
    case 'invited':
      return {
        heading: 'You have an invitation waiting',
        text: `${email} is invited to ${accountName} but has not accepted yet. Open the invitation Roster sent you (a Slack message from Roster, or an email to ${email}) and press Accept. Cannot find it? Ask an admin to resend it; ${card}. Nothing changed.`,
      };
    case 'not_invited':
      return {
        heading: 'Your invitation has not been sent yet',
        text: `${email} was added to ${accountName}, but no invitation was sent yet, so it cannot log in. Ask an admin to send your invitation; ${card}. Nothing changed.`,
      };
    case 'expired':
      return {
        heading: 'Your invitation expired',
        text: `Your invitation to ${accountName} for ${email} expired before it was accepted. Ask an admin to resend it; ${card}. Nothing changed.`,
      };
    case 'locked':
      return {
        heading: 'Your access is locked',
        text: `${email} was imported into ${accountName} and is locked, so it cannot log in yet. Ask an admin to unlock it; ${card}. Nothing changed.`,
      };
    default:
      return {
        heading: 'Your access was deactivated',
        text: `${email} was deactivated in ${accountName}, and a join link does not bring it back. Ask an admin to reactivate you; ${card}. Nothing changed.`,
      };
  }
}

/** Why a join waits for an admin, said the same way on Slack and on the web; `later` says how they hear. */
export function requestedText(
  reason: RequestReason,
  accountName: string,
  later: string,
  guest?: GuestKind,
): string {
  switch (reason) {
    case 'guest':
      return `You are ${GUEST_LABEL[guest ?? 'multi_channel']} in this Slack workspace, not a full member, so a join link does not give you a paid seat on its own: an admin of ${accountName} has been asked to approve your place. Nothing else changed. ${later}`;
    case 'needs_approval':
      return `This join link now needs an admin's approval for each person, so an admin of ${accountName} has been asked to approve your place. ${later}`;
    case 'waiting':
      return `Your place in ${accountName} is already waiting for an admin's approval. ${later}`;
    default:
      return `No paid seat is free right now, so an admin of ${accountName} has been asked to approve your place. ${later}`;
  }
}

/**
 * The confirmation email of a web join: a link to open, or, for a known address, a note that changes
 * nothing. It goes to an address nobody has confirmed yet, so it holds only Roster's own words and the
 * admins' account name: the name typed on the public form stays out, or a stranger could write to anyone
 * in Roster's voice ("Your account is suspended, log in at …").
 */
export function confirmationMail(opts: {
  accountName: string;
  url: string;
  /** Until when the link works: said as it is, for an email that went out late (mail down for hours). */
  expiresAt: Date;
  /** The address's Roster record, when it has one: then the email carries no link. */
  existing?: { email: string; status: UserStatus } | null;
}): Omit<Mail, 'to'> {
  const { accountName, url, existing } = opts;
  const until = opts.expiresAt.toUTCString();
  if (existing && existing.status !== 'active') {
    const { heading, text } = standing(existing.status, existing.email, accountName);
    const intro = `Someone asked to join ${accountName} with this address through a join link. This address already has a place in ${accountName}, so the link changed nothing:`;
    return {
      subject: `${heading} (${accountName})`,
      text: `Hello,\n\n${intro}\n\n${text}\n\nIf it was not you, ignore this email.`,
      html: emailHtml(
        html`<p>Hello,</p><p>${intro}</p><p>${text}</p><p>If it was not you, ignore this email.</p>`,
      ),
    };
  }
  if (existing) {
    return {
      subject: `You already have access to ${accountName}`,
      text: `Hello,\n\nSomeone asked to join ${accountName} with this address through a join link, but you already have access, so nothing changed.\n\nIf it was not you, ignore this email.`,
      html: emailHtml(
        html`<p>Hello,</p><p>Someone asked to join ${accountName} with this address through a join link, but you already have access, so nothing changed.</p><p>If it was not you, ignore this email.</p>`,
      ),
    };
  }
  return {
    subject: `Confirm your email to join ${accountName}`,
    text: `Hello,\n\nOpen this link and press Confirm to finish joining ${accountName}:\n${url}\n\nThe link works until ${until}. If you did not ask to join, ignore this email: nothing happens unless you press Confirm.`,
    html: emailHtml(
      html`<p>Hello,</p><p><a href="${url}">Confirm your email and join ${accountName}</a></p><p>Or copy this link into your browser, then press Confirm: ${url}</p><p>The link works until ${until}. If you did not ask to join, ignore this email: nothing happens unless you press Confirm.</p>`,
    ),
  };
}

/** Why a join closed when an admin approved it, for the person who joined. */
function refusedForJoiner(request: ISeatRequest, accountName: string): string {
  const email = request.email.trim();
  const reason = request.reason ?? '';
  if (/is already a user/.test(reason))
    return `You are already in ${accountName} (as ${email} or another address of yours), so your request to join was closed. If you cannot get in, ask an admin.`;
  if (/allowed domain|email domains/.test(reason) || !reason)
    return `Your place in ${accountName} could not be approved: ${email} is not at an email domain it admits. Ask an admin to invite you with another address.`;
  return `Your place in ${accountName} could not be approved. Ask an admin if you think this is a mistake.`;
}

/** What a person who joined through a link hears when an admin decides on their place. */
export function joinDecision(request: ISeatRequest, accountName: string): { text: string; subject: string } {
  switch (request.status) {
    case 'approved':
      return {
        subject: `You joined ${accountName}`,
        text: `An admin approved your place: you are now in ${accountName}. Welcome!`,
      };
    case 'rejected':
      // Closed when an admin approved it, for the reason the join's checks gave, told in the joiner's terms
      // (the reason itself is worded for the admins).
      if (request.payload.closedBecause === 'refused')
        return {
          subject: `Your request to join ${accountName}`,
          text: refusedForJoiner(request, accountName),
        };
      return {
        subject: `Your request to join ${accountName}`,
        text: `An admin did not approve your place in ${accountName}.${request.reason ? ` Their reason: “${request.reason}”.` : ''} Ask an admin if you think this is a mistake.`,
      };
    case 'expired':
      return {
        subject: `Your request to join ${accountName} expired`,
        text: `No admin decided on your place in ${accountName} within 14 days, so the request expired. Ask an admin to invite you.`,
      };
    default:
      return {
        subject: `Your request to join ${accountName}`,
        text: `Your place in ${accountName} is waiting for an admin.`,
      };
  }
}
