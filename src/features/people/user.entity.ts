import { defineEntity, type InferEntity, p } from '@mikro-orm/core';
import { baseProperties, changeProperties } from '../../db/base.ts';
import { Account, PermissionSet } from '../accounts/account.entity.ts';

export const ROLES = ['employee', 'contractor', 'client'] as const;
export type Role = (typeof ROLES)[number];
export const PAID_ROLES: readonly Role[] = ['employee', 'contractor'];
/** The domain of the placeholder logins of users imported without an email; `.invalid` never delivers. */
export const MISSING_LOGIN_DOMAIN = 'login.invalid';

/** Whether `email` is the placeholder login of a user imported without an email, not an address. */
export function isPlaceholderLogin(email: string | null | undefined): boolean {
  return Boolean(email?.toLowerCase().endsWith(`@${MISSING_LOGIN_DOMAIN}`));
}

export const USER_STATUSES = [
  'locked',
  'not_invited',
  'invited',
  'active',
  'expired',
  'deactivated',
] as const;
export type UserStatus = (typeof USER_STATUSES)[number];
/** Statuses in which a paid-role user holds a seat. */
export const SEAT_HOLDING_STATUSES: readonly UserStatus[] = ['not_invited', 'invited', 'active'];

/** A person with login access (or about to have it); unique per account by trimmed, lower-cased email. */
export const User = defineEntity({
  name: 'User',
  tableName: 'app_user',
  properties: {
    ...baseProperties,
    ...changeProperties,
    account: () => p.manyToOne(Account).ref(),
    email: p.string(),
    firstName: p.string().nullable(),
    lastName: p.string().nullable(),
    title: p.string().nullable(),
    phone: p.string().nullable(),
    role: p.enum(ROLES),
    status: p.enum(USER_STATUSES),
    permissionSet: () => p.manyToOne(PermissionSet).ref().nullable(),
    slackUserId: p.string().nullable(),
    addedBy: p.string().nullable(),
    deactivatedAt: p.datetime().nullable(),
    /** Imported without a login email: `email` is a placeholder until an admin sets the real one. */
    loginMissing: p.boolean().default(false),
    /** What the import's email column held instead of an address (usually the person's name). */
    loginHint: p.string().nullable(),
  },
});
export type IUser = InferEntity<typeof User>;

export function isPaidRole(role: Role): boolean {
  return PAID_ROLES.includes(role);
}

/** Characters that reorder the text after them (bidi embeddings, overrides and isolates). */
const BIDI_CONTROLS = /[\u202A-\u202E\u2066-\u2069]/g;

/**
 * A person's name as Roster shows it, on one line: a name from a CSV file may hold line breaks, tabs or
 * text direction controls, which in a list would start a line of their own or make the rest of the line
 * read backwards, as something it is not. The email when there is no name.
 */
export function displayName(user: { firstName?: string | null; lastName?: string | null; email: string }) {
  return oneLine([user.firstName, user.lastName].filter(Boolean).join(' ')) || user.email;
}

/** Typed text (a name, a company) shown within a line: one line, without text direction controls. */
export function oneLine(text: string): string {
  return text
    .replace(BIDI_CONTROLS, '')
    .replace(/[\s\p{Cc}]+/gu, ' ')
    .trim();
}
