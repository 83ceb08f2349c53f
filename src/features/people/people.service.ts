import { raw, ref } from '@mikro-orm/core';
import type { EntityManager } from '@mikro-orm/postgresql';
import { query, sql } from '../../db/sql.ts';
import type { IAccount, IPermissionSet } from '../accounts/account.entity.ts';
import { PermissionSet } from '../accounts/account.entity.ts';
import { refuseOutsideDomains } from '../accounts/allowed-domains.ts';
import { audit } from '../audit/audit.service.ts';
import { Contact } from '../contacts/contact.entity.ts';
import type { Actor } from '../seats/seat.service.ts';
import {
  type IUser,
  isPaidRole,
  type Role,
  SEAT_HOLDING_STATUSES,
  User,
  type UserStatus,
} from './user.entity.ts';

/** Trimmed and lower-cased: the form in which two emails are the same person. */
export function normalizeEmail(email: string): string {
  return email.trim().toLowerCase();
}

const ESCAPE_LIKE = /([%_\\])/g;

/** The user of an account with this email, whatever its case and surrounding spaces; uses the unique index. */
export async function findUserByEmail(
  em: EntityManager,
  account: IAccount,
  email: string,
): Promise<IUser | null> {
  return em.findOne(User, { account, [raw('lower(btrim(email))')]: normalizeEmail(email) });
}

/**
 * Locks a user's row for the rest of `tx` and returns it as committed now, or null if the account has no
 * such user. Every change that reads a user's status and then writes it takes this lock first, so a
 * cancel or a deactivation committing in between is seen, never overwritten.
 */
export async function lockUser(tx: EntityManager, account: IAccount, userId: string): Promise<IUser | null> {
  if (!tx.isInTransaction()) throw new Error('a user can only be locked inside a transaction');
  const [row] = await query<{ id: string }>(
    tx,
    sql`select id from app_user where id = ${userId} and account_id = ${account.id} for update`,
  );
  return row ? tx.findOneOrFail(User, row.id, { refresh: true }) : null;
}

export async function findContactByEmail(em: EntityManager, account: IAccount, email: string) {
  return em.findOne(Contact, { account, [raw('lower(btrim(email))')]: normalizeEmail(email) });
}

export async function permissionSetByName(em: EntityManager, account: IAccount, name: string) {
  return em.findOne(PermissionSet, { account, name: { $ilike: name.trim().replace(ESCAPE_LIKE, '\\$1') } });
}

export type NewUser = {
  email: string;
  role: Role;
  status: UserStatus;
  permissionSet?: IPermissionSet | null;
  addedBy?: string | null;
  firstName?: string | null;
  lastName?: string | null;
  title?: string | null;
  phone?: string | null;
  slackUserId?: string | null;
};

/**
 * Creates a user inside `tx`. A contact with the same email becomes that user: its name, title and
 * phone fill what the caller left empty, and the contact stays, linked to the user. A user added to be
 * invited must have an email at the account's allowed domains.
 */
export async function createUser(tx: EntityManager, account: IAccount, input: NewUser): Promise<IUser> {
  const email = input.email.trim();
  if (input.status === 'not_invited' || input.status === 'invited') {
    await refuseOutsideDomains(tx, account, email);
  }
  const contact = await findContactByEmail(tx, account, email);
  const [first, ...rest] = (contact?.name ?? '').trim().split(/\s+/);
  const user = tx.create(User, {
    account,
    email,
    role: input.role,
    status: input.status,
    permissionSet: input.permissionSet ?? null,
    addedBy: input.addedBy ?? null,
    firstName: input.firstName ?? (first || null),
    lastName: input.lastName ?? (rest.join(' ') || null),
    title: input.title ?? contact?.title ?? null,
    phone: input.phone ?? contact?.phone ?? null,
    slackUserId: input.slackUserId ?? null,
  });
  if (contact && !contact.user) contact.user = ref(user);
  return user;
}

/**
 * Deactivates the user a deleted Slack member was (by Slack id, else by email), freeing a paid seat.
 * Harmless when repeated: an already deactivated user is left as it is.
 */
export async function deactivateFromSlack(
  em: EntityManager,
  seats: { freed(tx: EntityManager, account: IAccount, actor: Actor, subject: string): void },
  account: IAccount,
  slackUserId: string,
  email?: string,
): Promise<number> {
  return em.transactional(async (tx) => {
    const bySlackId = await tx.find(User, { account, slackUserId, status: { $ne: 'deactivated' } });
    const byEmail = email && bySlackId.length === 0 ? await findUserByEmail(tx, account, email) : null;
    const found = byEmail && byEmail.status !== 'deactivated' ? [byEmail] : bySlackId;
    // Locked and read again: a resend or a reactivation in flight finishes first, and is then undone here.
    const users: IUser[] = [];
    for (const user of found) {
      const locked = await lockUser(tx, account, user.id);
      if (locked && locked.status !== 'deactivated') users.push(locked);
    }
    const actor: Actor = { slackUserId: 'slack', isAdmin: true, surface: 'slack' };
    for (const user of users) {
      const heldSeat = isPaidRole(user.role) && SEAT_HOLDING_STATUSES.includes(user.status);
      user.status = 'deactivated';
      user.deactivatedAt = new Date();
      audit(tx, {
        account,
        actor: 'slack',
        action: 'user.deactivated',
        subjectType: 'user',
        subjectId: user.id,
        surface: 'slack',
        data: { email: user.email, reason: 'deactivated in Slack' },
      });
      if (heldSeat) seats.freed(tx, account, actor, user.email);
    }
    return users.length;
  });
}
