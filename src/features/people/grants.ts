import type { EntityManager } from '@mikro-orm/postgresql';
import { z } from 'zod';
import { DomainError } from '../../shared/errors.ts';
import { type IAccount, type IPermissionSet, PermissionSet } from '../accounts/account.entity.ts';
import { auditRefusal } from '../audit/audit.service.ts';
import { GUEST_LABEL, type GuestKind } from '../directory/directory.service.ts';
import type { Actor } from '../seats/seat.service.ts';

/**
 * Whether the Slack account of a person (by Slack id, else by email) is a guest's: its kind, null for a full
 * member or someone not in Slack, `unknown` when Slack cannot say (or, with `askSlack: false`, the directory
 * mirror). May ask Slack: never inside a transaction.
 */
export type GuestCheck = (
  em: EntityManager,
  account: IAccount,
  who: { slackUserId?: string | null; email?: string | null },
  opts?: { askSlack: boolean },
) => Promise<GuestKind | 'unknown' | null>;

export const ADMIN_SET_REFUSED =
  'Only admins can give a permission set that makes its holder an admin (it lets them approve seats and change the limit). Choose another set, or ask an admin.';

/** The permission sets an actor may hand out: admins all of them, anyone else those that grant no admin rights. */
export function grantable<T extends IPermissionSet>(sets: T[], actor: Pick<Actor, 'isAdmin'>): T[] {
  return actor.isAdmin ? sets : sets.filter((set) => !set.isAdmin);
}

/**
 * The permission set an actor asked to give, looked up within the account and checked against who may
 * give it. Whatever a form offered, a set that makes its holder an admin is refused to a non-admin: the
 * refusal is audited in its own transaction, so it stays recorded while the caller's work rolls back.
 */
export async function permissionSetToGrant(
  em: EntityManager,
  account: IAccount,
  actor: Actor,
  permissionSetId: string | null | undefined,
  subject: string,
): Promise<IPermissionSet | null> {
  if (!permissionSetId) return null;
  const set = z.uuid().safeParse(permissionSetId).success
    ? await em.findOne(PermissionSet, { id: permissionSetId, account })
    : null;
  if (!set) {
    throw new DomainError('invalid_input', 'That permission set no longer exists; choose another.', {
      field: 'permission_set',
    });
  }
  if (set.isAdmin && !actor.isAdmin) {
    await auditRefusedGrant(em, account, actor, set, subject);
    throw new DomainError('not_admin', ADMIN_SET_REFUSED, { field: 'permission_set' });
  }
  return set;
}

/** Records that someone who is not an admin tried to give an admin permission set. */
export async function auditRefusedGrant(
  em: EntityManager,
  account: IAccount,
  actor: Actor,
  set: IPermissionSet,
  subject: string,
  extra: Record<string, unknown> = {},
): Promise<void> {
  await auditRefusal(em, {
    account,
    actor: actor.slackUserId,
    action: 'permission_set.grant_refused',
    subjectType: 'permission_set',
    subjectId: set.id,
    surface: actor.surface,
    data: { set: set.name, for: subject, ...extra },
  });
}

/**
 * Why a permission set that makes its holder an admin cannot go to someone who is a guest in Slack (or whom
 * Slack cannot place): a guest is never a Roster admin, so the set would mislead. Null when it can.
 */
export function adminSetForGuestProblem(
  set: IPermissionSet,
  guest: GuestKind | 'unknown' | null,
  subject: string,
): DomainError | null {
  if (!set.isAdmin || !guest) return null;
  return new DomainError(
    'not_allowed',
    guest === 'unknown'
      ? `Roster could not learn from Slack whether ${subject} is a guest of the workspace, and a guest cannot be a Roster admin, so “${set.name}” was not given. Try again in a few minutes, or choose another set.`
      : `${subject} is ${GUEST_LABEL[guest]} in Slack, and a guest cannot be a Roster admin, so “${set.name}” was not given. Choose another set, or make them a full member in Slack first.`,
    { field: 'permission_set' },
  );
}

/**
 * Refuses, with the reason, such a set for a guest (see {@link adminSetForGuestProblem}). Audited in its own
 * transaction, like any refused grant.
 */
export async function refuseAdminSetForGuest(
  em: EntityManager,
  account: IAccount,
  actor: Actor,
  set: IPermissionSet,
  guest: GuestKind | 'unknown' | null,
  subject: string,
): Promise<void> {
  const problem = adminSetForGuestProblem(set, guest, subject);
  if (!problem) return;
  await auditRefusedGrant(em, account, actor, set, subject, {
    reason: guest === 'unknown' ? 'guest status unknown' : guest,
  });
  throw problem;
}
