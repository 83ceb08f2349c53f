import { type Block, context, esc, escFit, section, slackDate } from '../../../slack/blocks.ts';
import { showMore } from '../../../slack/paging.ts';
import { loginEmail, ROLE_LABEL } from '../../people/labels.ts';
import { displayName, type IUser, isPaidRole } from '../../people/user.entity.ts';
import type { IInvitation } from '../invitation.entity.ts';
import { deliveryGaveUp } from '../invite.delivery.ts';
import { INVITE_ACTIONS, pendingActions } from './blocks.ts';

/** Two blocks a person, a heading and Show more: Slack takes at most 50 blocks in a message. */
export const PENDING_PAGE = 24;

/**
 * How much of a name a line shows: a name may hold 511 characters, five each once escaped (`&amp;`), which
 * with the address and the delivery's state could pass Slack's 3,000 for a section, and Slack would refuse
 * the whole page.
 */
const NAME_FIT = 300;

/** Where the next page of `/invite pending` starts: after user `a`, `n` people already shown. */
export type PendingPage = { a: string; n: number };

function pendingState(user: IUser, invitation: IInvitation | undefined, isAdmin: boolean): string {
  if (user.status === 'not_invited') return 'added, invitation not sent';
  if (user.status === 'expired') {
    // A client holds no seat: theirs is an admin's to send again (see the App Home's expired list).
    if (!isPaidRole(user.role)) {
      return isAdmin
        ? 'the invitation expired; Resend sends a new one'
        : 'the invitation expired; ask an admin to send it again';
    }
    return isAdmin
      ? 'the invitation expired and the seat was freed; Resend takes a seat again'
      : 'the invitation expired and the seat was freed; Resend asks for a seat again';
  }
  if (invitation?.deliveredAt)
    return `invited by ${invitation.deliveryMethod === 'email' ? 'email' : 'Slack DM'}, expires ${slackDate(invitation.expiresAt)}`;
  if (invitation && deliveryGaveUp(invitation))
    return `:warning: delivery failed (${esc((invitation.lastError ?? '').slice(0, 160))}); check the address, correct it if it is wrong, and press Resend`;
  if (invitation?.lastError) return `delivery failing, retrying (${esc(invitation.lastError.slice(0, 80))})`;
  return 'invitation being delivered';
}

/** One page of `/invite pending`: a heading, each person with their buttons, and Show more while more wait. */
export function pendingList(
  page: {
    rows: { user: IUser; invitation: IInvitation | undefined }[];
    total: number;
    more: boolean;
  },
  isAdmin: boolean,
  shown: number,
): { text: string; blocks: Block[] } {
  const { rows, total, more } = page;
  const whose = isAdmin ? '' : ', the ones you sent';
  const heading = !rows.length
    ? shown
      ? 'No more invitations are waiting.'
      : isAdmin
        ? 'No invitation is waiting to be accepted.'
        : 'None of the people you invited is waiting: everyone accepted, or you have not invited anyone yet.'
    : shown || more
      ? `*Invitations not yet accepted* (${shown + 1}–${shown + rows.length} of ${total}${whose})`
      : `*Invitations not yet accepted* (${total}${whose})`;
  const blocks: Block[] = [section(heading)];
  for (const { user, invitation } of rows.slice(0, PENDING_PAGE)) {
    blocks.push(
      section(
        `*${escFit(displayName(user), NAME_FIT)}*${user.firstName ? ` (${esc(loginEmail(user.email))})` : ''}: ${ROLE_LABEL[user.role]}, ${pendingState(user, invitation, isAdmin)}`,
      ),
    );
    // Only the buttons that work for the viewer: a client's expired invitation is sent again by an admin.
    if (isAdmin || user.status !== 'expired' || isPaidRole(user.role)) {
      blocks.push(pendingActions(user.id, user.status as 'invited' | 'not_invited' | 'expired'));
    }
  }
  const last = rows.at(-1);
  if (more && last) {
    blocks.push(
      showMore('pending_more', INVITE_ACTIONS.more, {
        a: last.user.id,
        n: shown + rows.length,
      } satisfies PendingPage),
    );
  } else if (shown && rows.length) {
    blocks.push(context('That is all.'));
  }
  return { text: 'Invitations not yet accepted', blocks };
}
