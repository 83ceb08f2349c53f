import {
  actions,
  type Block,
  button,
  context,
  esc,
  inertText,
  section,
  slackDate,
} from '../../../slack/blocks.ts';
import { GUEST_LABEL, type GuestKind } from '../../directory/directory.service.ts';
import { loginEmail, ROLE_LABEL } from '../../people/labels.ts';
import { MAX_SEAT_LIMIT, type SeatUsage } from '../seat.service.ts';
import type { ISeatRequest } from '../seat-request.entity.ts';

const KIND_LABEL: Record<ISeatRequest['kind'], string> = {
  invite: 'an invitation',
  convert: 'a contact converted into a user',
  join: 'a join through a join link',
  import: 'a CSV import',
  unlock: 'unlocking a user',
  reactivate: 'reactivating a user',
  role_change: 'a change to a paid role',
};

export const SEAT_ACTIONS = {
  approve: 'seat_approve',
  approveAddSeat: 'seat_approve_add_seat',
  reject: 'seat_reject',
} as const;

/** The Home tab's Settings button. */
export const SETTINGS_ACTION = 'settings_open';

function guestOf(value: unknown): GuestKind | null {
  return value === 'multi_channel' || value === 'single_channel' ? value : null;
}

/**
 * Who the request is for, in mrkdwn: the address only. The name was typed by the person joining (on the
 * public join form, or in their Slack profile) and is shown apart, as plain text ({@link nameBlock}).
 */
function who(request: ISeatRequest): string {
  return esc(loginEmail(request.email));
}

/** A join filled in on a link's web form: nobody in Slack asked, whatever `requestedBy` says. */
export function fromWebForm(request: ISeatRequest): boolean {
  return request.kind === 'join' && typeof request.payload.slackUserId !== 'string';
}

/** Who asked, in mrkdwn: the Slack user, or for a web join the link it came through. */
export function requester(request: ISeatRequest): string {
  return fromWebForm(request)
    ? `the web form of a join link posted by <@${request.requestedBy}>`
    : `<@${request.requestedBy}>`;
}

/**
 * The name the request carries, as typed, in a plain_text block: text from outside the workspace is
 * never read as mrkdwn (no bold, no links, no mentions).
 */
function nameBlock(request: ISeatRequest): Block | null {
  if (!request.name?.trim()) return null;
  return {
    type: 'context',
    elements: [
      inertText(`${fromWebForm(request) ? 'Name as typed on the web form' : 'Name'}: ${request.name.trim()}`),
    ],
  };
}

/** The message admins see for a request: pending with buttons, or decided with who and when. */
export function requestMessage(request: ISeatRequest, usage: SeatUsage): { text: string; blocks: Block[] } {
  const text = `Seat request from ${requester(request)} for ${esc(request.email)}`;
  const set = request.permissionSet?.isInitialized() ? request.permissionSet.getEntity() : null;
  const grants = set
    ? set.isAdmin
      ? `\n:warning: *as ${esc(set.name)}: they will be able to approve seats and change the limit*`
      : `\n*Permission set:* ${esc(set.name)}`
    : '';
  // A join link whose poster lost admin rights, or whose rights Slack could not confirm, admits nobody on
  // its own: say why this join waits.
  const poster = request.payload.posterNoLongerAdmin;
  const through =
    typeof poster === 'string'
      ? `${KIND_LABEL[request.kind]} posted by <@${poster}>, whose admin rights Roster cannot confirm now (removed, or Slack could not say), so every join through it needs approval`
      : fromWebForm(request)
        ? `${KIND_LABEL[request.kind]}, on its web form (the address was confirmed by email; the name was not)`
        : KIND_LABEL[request.kind];
  // A Slack guest asking for a paid seat, through a join link or for themselves: the admins must know
  // they would make a guest a paid member.
  const joiner = guestOf(request.payload.slackGuest);
  const asker = guestOf(request.payload.requesterGuest);
  // A join on the web has no Slack id: the guest is named by the address they confirmed.
  const joinerId = request.payload.slackUserId;
  const guestLine = joiner
    ? `\n:warning: *${typeof joinerId === 'string' ? `<@${joinerId}>` : who(request)} is a Slack guest* (${GUEST_LABEL[joiner]}), not a full member of the workspace: approving gives them a paid seat.`
    : asker
      ? `\n:warning: *<@${request.requestedBy}>, who asks, is a Slack guest* (${GUEST_LABEL[asker]}), not a full member of the workspace.`
      : '';
  // Asked again after an admin turned down their join through this link: the admins decide again, knowing it.
  const again = request.payload.turnedDownBefore
    ? `\n:warning: An admin turned down ${who(request)}'s earlier join through this link; they ask again.`
    : '';
  const name = nameBlock(request);
  const blocks: Block[] = [
    section(
      `:bust_in_silhouette: *Seat request* from ${requester(request)}\n*For:* ${who(request)}\n*Role:* ${ROLE_LABEL[request.role]}${grants}\n*Through:* ${through}${guestLine}${again}`,
    ),
    ...(name ? [name] : []),
  ];
  if (request.status === 'pending') {
    if (usage.free > 0) {
      blocks.push(section(`*Seats:* ${usage.used} of ${usage.limit} used, ${usage.free} free`));
      blocks.push(
        actions(
          `seat_request:${request.id}`,
          button('Approve', SEAT_ACTIONS.approve, request.id, 'primary'),
          button('Reject', SEAT_ACTIONS.reject, request.id, 'danger'),
        ),
      );
    } else if (usage.limit >= MAX_SEAT_LIMIT) {
      // The limit can go no higher: Approve stays, and says so until a seat is free.
      blocks.push(
        section(
          `:warning: *No paid seat is free* (${usage.used} of ${usage.limit} used), and the limit is at its most. Free a seat, then approve.`,
        ),
      );
      blocks.push(
        actions(
          `seat_request:${request.id}`,
          button('Approve', SEAT_ACTIONS.approve, request.id, 'primary'),
          button('Reject', SEAT_ACTIONS.reject, request.id, 'danger'),
        ),
      );
    } else {
      blocks.push(
        section(
          `:warning: *No paid seat is free* (${usage.used} of ${usage.limit} used). Approving adds one seat, making the limit ${usage.limit + 1}.`,
        ),
      );
      blocks.push(
        actions(
          `seat_request:${request.id}`,
          button('Approve and add a seat', SEAT_ACTIONS.approveAddSeat, request.id, 'primary'),
          button('Reject', SEAT_ACTIONS.reject, request.id, 'danger'),
        ),
      );
    }
    blocks.push(context(`Expires ${slackDate(request.expiresAt)} if nobody decides.`));
    return { text, blocks };
  }
  blocks.push(context(decisionLine(request)));
  return { text: `${text}: ${request.status}`, blocks };
}

/** A request closed when an admin approved it, because it could no longer be approved (its reason says why). */
function refusedOnApproval(request: ISeatRequest): boolean {
  return request.payload.closedBecause === 'refused';
}

/** A request closed because its person was deactivated, rather than left to expire. */
function closedByDeactivation(request: ISeatRequest): boolean {
  return request.payload.closedBecause === 'deactivated';
}

/**
 * Why a request by or for someone of another organisation (Slack Connect), filed before Roster refused
 * them, was closed when an admin approved it.
 */
export function outsiderLine(request: ISeatRequest): string {
  const ids = Array.isArray(request.payload.outsiders) ? (request.payload.outsiders as string[]) : [];
  const who = ids.length ? ids.map((id) => `<@${id}>`).join(' and ') : 'someone it names';
  const named = ids.includes(request.requestedBy) ? `was made by ${who}` : `is for ${who}`;
  return `the request for ${esc(loginEmail(request.email))} ${named}, of another organisation (met through Slack Connect), and Roster admits only members of this workspace.`;
}

export function decisionLine(request: ISeatRequest): string {
  const when = request.decidedAt ? slackDate(request.decidedAt) : '';
  switch (request.status) {
    case 'approved':
      return `:white_check_mark: Approved by <@${request.decidedBy}> ${when}`;
    case 'rejected':
      if (refusedOnApproval(request))
        return `:no_entry_sign: Closed ${when} when <@${request.decidedBy}> approved it: ${esc(request.reason)}`;
      return `:x: Rejected by <@${request.decidedBy}> ${when}${request.reason ? `: “${esc(request.reason)}”` : ''}`;
    case 'expired':
      if (request.payload.closedBecause === 'outsider') {
        return `:no_entry_sign: Closed ${when} when <@${request.decidedBy}> approved it: ${outsiderLine(request)} No seat was taken.`;
      }
      return closedByDeactivation(request)
        ? `:no_entry_sign: Closed ${when}: ${esc(loginEmail(request.email))} was deactivated${request.decidedBy === 'slack' ? ' in Slack' : ` by <@${request.decidedBy}>`}, so there is nothing to approve.`
        : `:hourglass: Expired ${slackDate(request.expiresAt)}: nobody decided within 14 days.`;
    default:
      return 'Waiting for an admin.';
  }
}

/**
 * A decided request in the words of a form's field error, which Slack shows as plain text: no mention,
 * date or escape, which would show as typed there. Who decided is on the request's message.
 */
export function decidedPlain(request: ISeatRequest): string {
  const at = (date: Date | null | undefined) =>
    date ? ` on ${date.toISOString().replace('T', ' ').slice(0, 16)} UTC` : '';
  switch (request.status) {
    case 'approved':
      return `Already decided: approved${at(request.decidedAt)}. Its message says by whom.`;
    case 'rejected':
      return `Already decided: ${refusedOnApproval(request) ? 'closed' : 'rejected'}${at(request.decidedAt)}. Its message says by whom and why.`;
    case 'expired':
      return `Already closed${at(request.decidedAt ?? request.expiresAt)}: there is nothing left to decide.`;
    default:
      return 'Already decided.';
  }
}

/** What the requester is told when their request is decided or expires. */
export function outcomeForRequester(request: ISeatRequest, detail?: string): string {
  const subject = `your request for a paid seat for ${esc(request.email)} as ${ROLE_LABEL[request.role]}`;
  switch (request.status) {
    case 'approved':
      return `:white_check_mark: <@${request.decidedBy}> approved ${subject}.${detail ? ` ${detail}` : ''}`;
    case 'rejected':
      if (refusedOnApproval(request))
        return `:no_entry_sign: ${subject[0]!.toUpperCase()}${subject.slice(1)} could not be approved: ${esc(request.reason)}`;
      return `:x: <@${request.decidedBy}> rejected ${subject}.${request.reason ? ` Reason: “${esc(request.reason)}”` : ' No reason was given.'}`;
    case 'expired':
      if (request.payload.closedBecause === 'outsider') {
        return `:no_entry_sign: ${subject[0]!.toUpperCase()}${subject.slice(1)} was closed: it is for someone of another organisation (met through Slack Connect), and Roster admits only members of this workspace.`;
      }
      return closedByDeactivation(request)
        ? `:no_entry_sign: ${subject[0]!.toUpperCase()}${subject.slice(1)} was closed: ${esc(loginEmail(request.email))} was deactivated${request.decidedBy === 'slack' ? ' in Slack' : ` by <@${request.decidedBy}>`}.`
        : `:hourglass: ${subject[0]!.toUpperCase()}${subject.slice(1)} expired: no admin decided within 14 days. Ask again if it is still needed.`;
    default:
      return `${subject} is waiting for an admin.`;
  }
}

/** A request's message sent by DM because the approval channel refused it, saying why and what to do. */
export function withChannelRefused(
  message: { text: string; blocks: Block[] },
  channelId: string,
  code: string,
): { text: string; blocks: Block[] } {
  return {
    ...message,
    blocks: [
      ...message.blocks,
      context(
        code === 'shared_with_another_organisation'
          ? `:warning: The approval channel <#${channelId}> is shared with another organisation through Slack Connect, so this request came by DM: its people would have seen the names and addresses in it. Choose a channel of this workspace only with \`/seats settings\`.`
          : `:warning: Roster could not post in the approval channel <#${channelId}> (${code.replace(/_/g, ' ')}), so this request came by DM. Choose another channel with \`/seats settings\`, or invite Roster to it.`,
      ),
    ],
  };
}
