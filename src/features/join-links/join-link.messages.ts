import type { Mail } from '../../shared/mailer.ts';
import { html } from '../../web/html.ts';
import type { ISeatRequest } from '../seats/seat-request.entity.ts';
import { CONFIRMATION_HOURS } from './join-link.service.ts';

/**
 * The confirmation email of a web join: a link to open, or, for a known address, a note that changes
 * nothing. It goes to an address nobody has confirmed yet, so it holds only Roster's own words and the
 * admins' account name: the name typed on the public form stays out, or a stranger could write to anyone
 * in Roster's voice ("Your account is suspended, log in at …").
 */
export function confirmationMail(opts: {
  accountName: string;
  url: string;
  alreadyIn: boolean;
}): Omit<Mail, 'to'> {
  const { accountName, url } = opts;
  if (opts.alreadyIn) {
    return {
      subject: `You already have access to ${accountName}`,
      text: `Hello,\n\nSomeone asked to join ${accountName} with this address through a join link, but you already have access, so nothing changed.\n\nIf it was not you, ignore this email.`,
      html: html`<p>Hello,</p><p>Someone asked to join ${accountName} with this address through a join link, but you already have access, so nothing changed.</p><p>If it was not you, ignore this email.</p>`
        .value,
    };
  }
  return {
    subject: `Confirm your email to join ${accountName}`,
    text: `Hello,\n\nOpen this link within ${CONFIRMATION_HOURS} hours and press Confirm to finish joining ${accountName}:\n${url}\n\nIf you did not ask to join, ignore this email: nothing happens unless you press Confirm.`,
    html: html`<p>Hello,</p><p><a href="${url}">Confirm your email and join ${accountName}</a></p><p>Or copy this link into your browser within ${CONFIRMATION_HOURS} hours, then press Confirm: ${url}</p><p>If you did not ask to join, ignore this email: nothing happens unless you press Confirm.</p>`
      .value,
  };
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
