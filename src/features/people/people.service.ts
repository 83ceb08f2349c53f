import { raw, ref } from '@mikro-orm/core';
import type { EntityManager } from '@mikro-orm/postgresql';
import { query, sql } from '../../db/sql.ts';
import type { Logger } from '../../shared/logger.ts';
import type { IAccount, IPermissionSet } from '../accounts/account.entity.ts';
import { PermissionSet } from '../accounts/account.entity.ts';
import { refuseOutsideDomains } from '../accounts/allowed-domains.ts';
import { audit } from '../audit/audit.service.ts';
import { Contact } from '../contacts/contact.entity.ts';
import { Invitation } from '../invites/invitation.entity.ts';
import type { Actor, SeatService } from '../seats/seat.service.ts';
import {
  type IUser,
  isPaidRole,
  type Role,
  SEAT_HOLDING_STATUSES,
  User,
  type UserStatus,
} from './user.entity.ts';

/** Who deactivates a person Slack deactivated, in the audit log and to webhooks. */
const SLACK_ACTOR: Actor = { slackUserId: 'slack', isAdmin: true, surface: 'slack' };

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
  // The contact with that email is locked before the user takes the email: a conversion of it locks it
  // before making its user too, so the two queue here rather than each holding what the other waits for.
  await query(
    tx,
    sql`select id from contact where account_id = ${account.id} and email is not null
          and lower(btrim(email)) = ${normalizeEmail(email)} for update`,
  );
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
 * What deactivating a person does, whoever asks (an admin on the card, Slack deleting the member): inside
 * `tx`, with the person locked (and `requestIds` from SeatService.lockRequestsAbout locked before them),
 * their pending invitations are cancelled so no link works any more, the seat requests about them are
 * closed, they become `deactivated`, and a paid seat they held is freed. Audited once, with `reason`.
 */
export async function deactivateLocked(
  tx: EntityManager,
  seats: Pick<SeatService, 'freed' | 'closeForDeactivation'>,
  account: IAccount,
  user: IUser,
  actor: Actor,
  opts: { now: Date; requestIds: string[]; reason?: string },
): Promise<{ before: UserStatus; seatFreed: boolean; invitationsCancelled: number; requestsClosed: number }> {
  const before = user.status;
  const seatFreed = isPaidRole(user.role) && SEAT_HOLDING_STATUSES.includes(user.status);
  const pending = await tx.find(Invitation, { user, status: 'pending' });
  for (const invitation of pending) {
    invitation.status = 'cancelled';
    invitation.cancelledAt = opts.now;
  }
  const requestsClosed = await seats.closeForDeactivation(tx, account, opts.requestIds, actor);
  user.status = 'deactivated';
  user.deactivatedAt = opts.now;
  audit(tx, {
    account,
    actor: actor.slackUserId,
    action: 'user.deactivated',
    subjectType: 'user',
    subjectId: user.id,
    surface: actor.surface,
    data: {
      email: user.email,
      before,
      invitationsCancelled: pending.length,
      requestsClosed,
      ...(opts.reason ? { reason: opts.reason } : {}),
    },
  });
  if (seatFreed) seats.freed(tx, account, actor, user.email);
  return { before, seatFreed, invitationsCancelled: pending.length, requestsClosed };
}

/**
 * Whether the user came (back) into Roster after `asOf`: reactivated or unlocked by an admin since, or, with
 * `added`, added since. Such a user is Roster's newer decision, which a deactivation in Slack recorded before it must not
 * undo. Both times are the database's (audit events and rows stamped by this app).
 */
async function broughtBackSince(
  em: EntityManager,
  account: IAccount,
  user: IUser,
  asOf: Date,
  opts: { added: boolean },
) {
  if (opts.added && user.createdAt > asOf) return true;
  const rows = await query(
    em,
    sql`select 1 from audit_event where account_id = ${account.id} and created_at > ${asOf}
          and subject_type = 'user' and subject_id = ${user.id}
          and action in ('user.reactivated', 'user.unlocked') limit 1`,
  );
  return rows.length > 0;
}

/**
 * Deactivates the user a deleted Slack member was (by Slack id, else by email), with the same effects as
 * an admin's deactivation (deactivateLocked). Harmless when repeated: an already deactivated user is left
 * as it is.
 */
export async function deactivateFromSlack(
  em: EntityManager,
  seats: Pick<SeatService, 'freed' | 'closeForDeactivation' | 'lockRequestsAbout'>,
  account: IAccount,
  slackUserId: string,
  email?: string,
  /**
   * `asOf`: when Slack's deactivation was recorded, on the database's clock; when the directory mirror learnt
   * of the same deletion earlier (an earlier event, a sync), that earlier time. Someone an admin added by
   * email, reactivated or unlocked after that is left as they are: that is the newer decision, and a late try of the
   * event, or Slack telling of the same deletion again, must not undo it. A join of theirs still waiting for
   * a seat is closed.
   */
  opts: { asOf?: Date; log?: Logger } = {},
): Promise<number> {
  return em.transactional(async (tx) => {
    // A join through a link still waiting for an admin has no person yet: it is closed, as a deactivation
    // closes the requests about a person, so no admin approves a place for someone who has left. Locked
    // first: an approval of it committing meanwhile is waited for, and the person it created is found below.
    const joins = await query<{ id: string }>(
      tx,
      sql`select id from seat_request where account_id = ${account.id} and status = 'pending' and kind = 'join'
            and user_id is null and payload->>'slackUserId' = ${slackUserId} order by id for update`,
    );
    const closed = await seats.closeForDeactivation(
      tx,
      account,
      joins.map((r) => r.id),
      SLACK_ACTOR,
    );
    if (closed) opts.log?.info({ slackUser: slackUserId, closed }, 'deactivated in Slack: their join closed');
    const bySlackId = await tx.find(User, { account, slackUserId, status: { $ne: 'deactivated' } });
    const byEmail = email && bySlackId.length === 0 ? await findUserByEmail(tx, account, email) : null;
    // By email only a user Slack knows by no other id, and whose address no other member of the workspace
    // still in Slack holds: the address is theirs, not someone else's who took it over.
    const emailIsTheirs =
      byEmail &&
      byEmail.status !== 'deactivated' &&
      !byEmail.slackUserId &&
      !(
        await query(
          tx,
          sql`select 1 from slack_member where account_id = ${account.id} and slack_user_id <> ${slackUserId}
                and not deleted and not is_bot and lower(btrim(email)) = ${normalizeEmail(byEmail.email)}
                and (cardinality(team_ids) = 0 or ${account.teamId} = any(team_ids)) limit 1`,
        )
      ).length;
    const found = emailIsTheirs ? [byEmail] : bySlackId;
    const since = opts.asOf && (await deletedSince(tx, account, slackUserId));
    const asOf = opts.asOf && since && since < opts.asOf ? since : opts.asOf;
    const actor = SLACK_ACTOR;
    let count = 0;
    for (const { id } of found) {
      // Locked and read again: a resend or a reactivation in flight finishes first, and is then undone here.
      const requestIds = await seats.lockRequestsAbout(tx, account, id);
      const user = await lockUser(tx, account, id);
      if (!user || user.status === 'deactivated') continue;
      // Someone added by email since is a new decision; a user of this very Slack account made since can
      // only come from their own join, asked before the deletion, and goes with it.
      if (asOf && (await broughtBackSince(tx, account, user, asOf, { added: Boolean(emailIsTheirs) }))) {
        opts.log?.info(
          { userId: user.id, slackUser: slackUserId },
          'added or reactivated in Roster after Slack deactivated them: left as they are',
        );
        continue;
      }
      await deactivateLocked(tx, seats, account, user, actor, {
        now: new Date(),
        requestIds,
        reason: 'deactivated in Slack',
      });
      count++;
    }
    return count;
  });
}

/** When the directory mirror first learnt that this member was deleted in Slack, if it knows them as deleted. */
async function deletedSince(em: EntityManager, account: IAccount, slackUserId: string): Promise<Date | null> {
  const [row] = await query<{ deleted_since: Date | null }>(
    em,
    sql`select deleted_since from slack_member
          where account_id = ${account.id} and slack_user_id = ${slackUserId} and deleted`,
  );
  return row?.deleted_since ? new Date(row.deleted_since) : null;
}

/** How many people one pass of the reconciliation reads at a time; each is deactivated in its own transaction. */
const RECONCILE_BATCH = 200;

/**
 * Deactivates everyone the directory mirror knows as deleted in Slack who is still not deactivated in
 * Roster: a deactivation whose job gave up (the database down for longer than its retries), or that
 * happened while the mirror already said deleted, is made by the next sync. A person added, reactivated or
 * unlocked in Roster after the mirror learnt of the deletion (`deleted_since`) is an admin's later decision
 * and stays; someone Slack reports back (not deleted) is never in the list. Matched by Slack id, or by
 * email for a user with no Slack id when no member of the workspace still in Slack has that email; only
 * members of this workspace count. Returns how many were deactivated.
 */
export async function deactivateDeletedInSlack(
  em: EntityManager,
  seats: Pick<SeatService, 'freed' | 'closeForDeactivation' | 'lockRequestsAbout'>,
  account: IAccount,
  opts: { log?: Logger } = {},
): Promise<number> {
  let after = '00000000-0000-0000-0000-000000000000';
  let count = 0;
  for (;;) {
    const candidates = await query<{ id: string; slack_user_id: string }>(
      em,
      sql`select c.id, c.slack_user_id from (
            select u.id, m.slack_user_id, m.deleted_since
            from slack_member m join app_user u on u.account_id = m.account_id and u.slack_user_id = m.slack_user_id
            where m.account_id = ${account.id} and m.deleted and not m.is_bot and (cardinality(m.team_ids) = 0 or ${account.teamId} = any(m.team_ids))
              and u.status <> 'deactivated' and u.id > ${after}
            union all
            select u.id, m.slack_user_id, m.deleted_since
            from slack_member m join app_user u on u.account_id = m.account_id and u.slack_user_id is null
              and lower(btrim(u.email)) = lower(btrim(m.email))
            where m.account_id = ${account.id} and m.deleted and not m.is_bot and m.email is not null
              and (cardinality(m.team_ids) = 0 or ${account.teamId} = any(m.team_ids)) and u.status <> 'deactivated' and u.id > ${after}
              and not exists (select 1 from app_user x where x.account_id = m.account_id
                and x.slack_user_id = m.slack_user_id)
              and not exists (select 1 from slack_member o where o.account_id = m.account_id and not o.deleted
                and o.email is not null and lower(btrim(o.email)) = lower(btrim(m.email)) and (cardinality(o.team_ids) = 0 or ${account.teamId} = any(o.team_ids)))
          ) c
          join app_user u on u.id = c.id
          where c.deleted_since is not null and u.created_at <= c.deleted_since
            and not exists (select 1 from audit_event a where a.account_id = ${account.id}
              and a.created_at > c.deleted_since and a.subject_type = 'user' and a.subject_id = c.id::text
              and a.action in ('user.reactivated', 'user.unlocked'))
          order by c.id limit ${RECONCILE_BATCH}`,
    );
    if (!candidates.length) return count;
    after = candidates.at(-1)!.id;
    for (const candidate of candidates) {
      const done = await em.transactional(async (tx) => {
        // Locked in the order every deactivation takes them, then everything checked again: the event's own
        // job, an admin's reactivation or Slack reporting them back may have come in between.
        const requestIds = await seats.lockRequestsAbout(tx, account, candidate.id);
        const user = await lockUser(tx, account, candidate.id);
        if (!user || user.status === 'deactivated') return false;
        const [member] = await query<{ deleted: boolean; deleted_since: Date | null }>(
          tx,
          sql`select deleted, deleted_since from slack_member
              where account_id = ${account.id} and slack_user_id = ${candidate.slack_user_id}`,
        );
        if (!member?.deleted || !member.deleted_since) return false;
        if (await broughtBackSince(tx, account, user, new Date(member.deleted_since), { added: true }))
          return false;
        await deactivateLocked(tx, seats, account, user, SLACK_ACTOR, {
          now: new Date(),
          requestIds,
          reason: 'deactivated in Slack',
        });
        return true;
      });
      if (done) {
        count++;
        opts.log?.info(
          { userId: candidate.id, slackUser: candidate.slack_user_id },
          'deleted in Slack and still in Roster: deactivated in Roster by the directory sync',
        );
      }
    }
  }
}
