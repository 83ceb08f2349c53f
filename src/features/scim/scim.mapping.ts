import { displayName, type Role, type UserStatus } from '../people/user.entity.ts';
import type { PatchOperation, RemoteUser } from './scim.client.ts';

export const CORE_USER_SCHEMA = 'urn:ietf:params:scim:schemas:core:2.0:User';

/** The columns of a user that Roster sends to the SCIM service (the trigger watches the same ones). */
export type SyncedUser = {
  id: string;
  email: string;
  firstName: string | null;
  lastName: string | null;
  title: string | null;
  phone: string | null;
  role: Role;
  status: UserStatus;
  loginMissing: boolean;
};

/** A user as Roster and the service compare them: what Roster sends, read back the same way from the service. */
export type Shape = {
  userName: string;
  givenName: string | null;
  familyName: string | null;
  displayName: string;
  email: string;
  title: string | null;
  phone: string | null;
  role: string | null;
  /** null: the service's `active` is a value Roster cannot read, so Roster writes its own either way. */
  active: boolean | null;
};

/**
 * Only an `active` user may log in (PRODUCT.md: locked, not invited, invited and expired users have no login
 * yet, deactivated users no longer), so only they are `active: true` in the service. The others still exist
 * there, inactive, so the product can prepare their account and turn it on the moment they accept.
 */
export function isActive(status: UserStatus): boolean {
  return status === 'active';
}

/** What the service should hold for this user. */
export function desiredShape(user: SyncedUser): Shape {
  const email = user.email.trim().toLowerCase();
  return {
    userName: email,
    givenName: user.firstName || null,
    familyName: user.lastName || null,
    displayName: displayName({ ...user, email }),
    email,
    title: user.title || null,
    phone: user.phone || null,
    role: user.role,
    active: isActive(user.status),
  };
}

/** What the service holds, read the way {@link desiredShape} writes it. */
export function remoteShape(remote: RemoteUser): Shape {
  const primary = <T extends { primary?: boolean }>(list?: T[]) => list?.find((v) => v.primary) ?? list?.[0];
  return {
    userName: (remote.userName ?? '').toLowerCase(),
    givenName: remote.name?.givenName || null,
    familyName: remote.name?.familyName || null,
    displayName: remote.displayName ?? '',
    email: (primary(remote.emails)?.value ?? '').toLowerCase(),
    title: remote.title || null,
    phone: primary(remote.phoneNumbers)?.value || null,
    role: primary(remote.roles)?.value ?? null,
    active: readActive(remote.active),
  };
}

/**
 * The service's `active`: a JSON boolean, or a string one in any case (some services answer `"False"`).
 * Left out (or null) means active, as for services that do not keep it. Anything else is not read as either,
 * so a push writes Roster's value instead of leaving a user active by accident.
 */
export function readActive(value: unknown): boolean | null {
  if (value === undefined || value === null) return true;
  if (typeof value === 'boolean') return value;
  if (typeof value === 'string') {
    const word = value.trim().toLowerCase();
    if (word === 'true') return true;
    if (word === 'false') return false;
  }
  return null;
}

/** The attributes of a shape as SCIM User attributes (everything but `active`). */
function attributes(shape: Shape): Record<string, unknown> {
  return {
    userName: shape.userName,
    name: {
      ...(shape.givenName ? { givenName: shape.givenName } : {}),
      ...(shape.familyName ? { familyName: shape.familyName } : {}),
      formatted: shape.displayName,
    },
    displayName: shape.displayName,
    emails: [{ value: shape.email, type: 'work', primary: true }],
    ...(shape.title ? { title: shape.title } : {}),
    ...(shape.phone ? { phoneNumbers: [{ value: shape.phone, type: 'work', primary: true }] } : {}),
    ...(shape.role ? { roles: [{ value: shape.role, primary: true }] } : {}),
  };
}

/** The body of `POST /Users` for a user Roster creates in the service. */
export function createBody(userId: string, shape: Shape): Record<string, unknown> & { userName: string } {
  return {
    schemas: [CORE_USER_SCHEMA],
    externalId: userId,
    ...attributes(shape),
    userName: shape.userName,
    active: shape.active,
  };
}

/**
 * The PATCH operations that turn `current` into `desired`; none when they already match. Each attribute is
 * replaced by its path: without one, services differ on whether multi-valued attributes (emails, roles) are
 * replaced or merged; a name part cleared is removed by its own path. A change of activity is its own `replace active` operation, as identity providers send it.
 */
export function patchOperations(current: Shape, desired: Shape): PatchOperation[] {
  const ops: PatchOperation[] = [];
  const attrs = attributes(desired);
  const set = (path: string, differs: boolean, value: unknown, present = true) => {
    if (!differs) return;
    ops.push(present ? { op: 'replace', path, value } : { op: 'remove', path });
  };
  set('userName', current.userName !== desired.userName, attrs.userName);
  set(
    'name',
    current.givenName !== desired.givenName || current.familyName !== desired.familyName,
    attrs.name,
  );
  // A replace of `name` leaves the sub-attributes its value lacks as they were (RFC 7644 3.5.2.3): a name part
  // cleared in Roster is removed by its own path.
  set('name.givenName', current.givenName !== null && desired.givenName === null, null, false);
  set('name.familyName', current.familyName !== null && desired.familyName === null, null, false);
  set('displayName', current.displayName !== desired.displayName, attrs.displayName);
  set('emails', current.email !== desired.email, attrs.emails);
  set('title', current.title !== desired.title, desired.title, desired.title !== null);
  set('phoneNumbers', current.phone !== desired.phone, attrs.phoneNumbers, desired.phone !== null);
  set('roles', current.role !== desired.role, attrs.roles, desired.role !== null);
  set('active', current.active !== desired.active, desired.active);
  return ops;
}

/** How a difference reads in a report: the kinds of change `patchOperations` makes. */
export function changeKinds(current: Shape, desired: Shape): ('details' | 'deactivated' | 'reactivated')[] {
  const kinds: ('details' | 'deactivated' | 'reactivated')[] = [];
  if (patchOperations(current, { ...desired, active: current.active }).length) kinds.push('details');
  if (current.active !== false && !desired.active) kinds.push('deactivated');
  if (current.active !== true && desired.active) kinds.push('reactivated');
  return kinds;
}
