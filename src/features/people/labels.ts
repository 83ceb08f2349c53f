import { isPlaceholderLogin, type Role, type UserStatus } from './user.entity.ts';

/**
 * The words Roster uses for roles and statuses, in every message, view and page. Each status has a few
 * forms because it appears in different sentences: a short label in parentheses, a fuller description
 * on its own, and a phrase that follows "is".
 */

/** What a person reads where a user imported without an email would show a placeholder login. */
export const NO_LOGIN_EMAIL = 'no login email yet';

/** A user's login email as a person reads it: never the placeholder (`missing-…@login.invalid`). */
export function loginEmail(email: string): string {
  return isPlaceholderLogin(email) ? NO_LOGIN_EMAIL : email;
}

/** A role, with whether it takes a paid seat: "Employee (paid seat)". */
export const ROLE_LABEL: Record<string, string> = {
  employee: 'Employee (paid seat)',
  contractor: 'Contractor (paid seat)',
  client: 'Client (free)',
} satisfies Record<Role, string>;

/**
 * A role as the person joining reads it, in invitations, join pages and their DMs: seats and billing are
 * the admins' business, not theirs.
 */
export const INVITEE_ROLE: Record<string, string> = {
  employee: 'an employee',
  contractor: 'a contractor',
  client: 'a client',
} satisfies Record<Role, string>;

/** A status in a few words, as a person would say it: "ana@x.com (not invited yet)". */
export const STATUS_LABEL: Record<UserStatus, string> = {
  locked: 'locked until an admin unlocks them',
  not_invited: 'not invited yet',
  invited: 'invited',
  active: 'active',
  expired: 'invitation expired',
  deactivated: 'deactivated',
};

/** A status described on its own, with what is still to happen: "You: Ana, …, invited, not yet accepted." */
export const STATUS_DESCRIPTION: Record<UserStatus, string> = {
  locked: 'imported, and locked until an admin unlocks them',
  not_invited: 'added, invitation not sent yet',
  invited: 'invited, not yet accepted',
  active: 'active',
  expired: 'the invitation expired before it was accepted: ask for a new one',
  deactivated: 'deactivated',
};

/** A status on the person card, with what brings the person further: "locked: imported, …". */
export const STATUS_EXPLAINED: Record<UserStatus, string> = {
  locked: 'locked: imported, cannot log in until an admin unlocks them',
  not_invited: 'added, not invited yet',
  invited: 'invited, not yet accepted',
  active: 'active',
  expired: 'invitation expired before it was accepted: Resend asks for a seat again',
  deactivated: 'deactivated: an admin can reactivate them',
};

/** A status as it follows "is" or "already in Roster,": "ana@x.com is already active". */
export function statusText(status: UserStatus): string {
  return {
    locked: 'locked: imported, and an admin unlocks them from `/people`',
    not_invited: 'added but not invited yet',
    invited: 'invited',
    active: 'already active',
    expired: 'invitation expired',
    deactivated: 'deactivated',
  }[status];
}

/** `statusLabel(s)` is `STATUS_LABEL[s]`, for callers that map over statuses. */
export const statusLabel = (status: UserStatus): string => STATUS_LABEL[status];
