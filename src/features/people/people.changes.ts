import type { EntityManager } from '@mikro-orm/postgresql';
import { z } from 'zod';
import { query, sql } from '../../db/sql.ts';
import { DomainError } from '../../shared/errors.ts';
import { HandedBack, type JobQueue } from '../../shared/jobs.ts';
import { type IAccount, PermissionSet } from '../accounts/account.entity.ts';
import { allowedDomains, outsideAllowedDomains, refuseOutsideDomains } from '../accounts/allowed-domains.ts';
import { audit, auditRefusal } from '../audit/audit.service.ts';
import { INVITE_JOBS, latestPersonalMessage, queueInvitation } from '../invites/invitation.service.ts';
import type { Actor, SeatFlow, SeatService } from '../seats/seat.service.ts';
import { type ISeatRequest, SeatRequest } from '../seats/seat-request.entity.ts';
import { ROLE_LABEL } from './labels.ts';
import { lockUser } from './people.service.ts';
import { refuseChangedSince, type Shown } from './shown.ts';
import {
  displayName,
  type IUser,
  isPaidRole,
  PAID_ROLES,
  type Role,
  SEAT_HOLDING_STATUSES,
  User,
} from './user.entity.ts';

/** How many people one transaction of a bulk unlock takes: the seats stay locked only that long. */
const BULK_BATCH = 100;

/** The changes that may need a seat, each a kind of seat request. */
export const PEOPLE_CHANGES = ['unlock', 'reactivate', 'role_change'] as const;
type Change = (typeof PEOPLE_CHANGES)[number];

export type ChangeResult =
  | { status: 'done'; user: IUser; seatAdded: boolean }
  | { status: 'requested'; request: ISeatRequest };

/**
 * Changes that give an existing user a paid seat again: unlocking an imported user, reactivating a
 * deactivated one, making a client an employee or contractor. Each goes through the seat rules, so a
 * requester's change waits for an admin, and the approval applies it.
 */
export class PeopleChanges {
  private readonly seats: SeatService;
  private readonly jobs: JobQueue;

  constructor(seats: SeatService, jobs: JobQueue) {
    this.seats = seats;
    this.jobs = jobs;
  }

  /** What approving a seat request for one of these changes does; registered in the composition root. */
  seatFlow(kind: Change): SeatFlow {
    /** Why the person no longer fits the change asked for (an admin made it, or another, meanwhile), or null. */
    const overtaken = (user: IUser, request: ISeatRequest): string | null => {
      try {
        // Asked for someone expired, since deactivated (in Slack, or by an admin): not brought back by it.
        const from = request.payload.fromStatus;
        if (kind === 'reactivate' && typeof from === 'string' && user.status !== from) {
          return `${displayName(user)} is ${user.status.replace('_', ' ')} now, no longer ${from.replace('_', ' ')} as when the request was made, so there is nothing to approve. If they should come back, an admin reactivates them from their card (\`/people ${user.email}\`).`;
        }
        refuseChange(user, kind, request.role);
        // A role change that no longer gives a seat (made a contractor since, say) is not a seat's to approve.
        if (kind === 'role_change' && !needsNewSeat(user, kind, request.role)) {
          return `${displayName(user)} is ${ROLE_LABEL_SHORT[user.role]} and ${user.status.replace('_', ' ')} now, so making them ${ROLE_LABEL_SHORT[request.role]} takes no new seat: an admin changes it from their card (\`/people ${user.email}\`).`;
        }
        // Unlocked or reactivated as the paid role asked for: made a client (or another role) since, the seat
        // asked for is no longer what bringing them back takes.
        if (kind !== 'role_change' && user.role !== request.role) {
          return `${displayName(user)} is ${ROLE_LABEL_SHORT[user.role]} now, no longer ${ROLE_LABEL_SHORT[request.role]} as when the request was made, so there is no seat to approve: an admin ${kind === 'unlock' ? 'unlocks' : 'reactivates'} them from their card (\`/people ${user.email}\`).`;
        }
        return null;
      } catch (err) {
        if (err instanceof DomainError)
          return `${err.message} They were changed since the request was made, so there is nothing to approve.`;
        throw err;
      }
    };
    return {
      // Asked before a seat is taken: an admin may have made the change from the card meanwhile, and the
      // person accepted their invitation since; approving the old request must not put them back.
      refuse: async (tx, request, account) => {
        const user = request.user
          ? await tx.findOne(User, { id: request.user.id, account }, { refresh: true })
          : null;
        if (!user) return 'That person is no longer in Roster.';
        const late = overtaken(user, request);
        if (late || kind === 'role_change') return late;
        // The allowed domains changed since: brought back, they could not be invited; the request is closed.
        return outsideAllowedDomains(tx, account, user.email);
      },
      approve: async (tx, request, account) => {
        const user = request.user ? await lockUser(tx, account, request.user.id) : null;
        if (!user) throw new DomainError('not_found', 'That person is no longer in Roster.');
        // Read again under the person's lock: a change committed since the check above is not undone.
        const late = overtaken(user, request);
        if (late) throw new DomainError('conflict', late);
        const invite = Boolean(request.payload.sendInvitation);
        await this.apply(tx, account, user, kind, request.role, invite, request.requestedBy);
        // A role change leaves the person's status as it was: an active person is not someone to invite.
        if (kind === 'role_change') return `${user.email} is now ${ROLE_LABEL[user.role]}.`;
        return invite ? `An invitation is on its way to ${user.email}.` : `${user.email} can now be invited.`;
      },
    };
  }

  unlock(
    em: EntityManager,
    account: IAccount,
    actor: Actor,
    userId: string,
    opts: { sendInvitation?: boolean; addSeat?: boolean } = {},
  ) {
    return this.change(em, account, actor, userId, 'unlock', undefined, opts);
  }

  /** `openedFor`: the status the form was opened for; the person must still have it (see refuseOvertaken). */
  reactivate(
    em: EntityManager,
    account: IAccount,
    actor: Actor,
    userId: string,
    opts: { sendInvitation?: boolean; addSeat?: boolean; openedFor?: 'deactivated' | 'expired' } = {},
  ) {
    return this.change(em, account, actor, userId, 'reactivate', undefined, opts);
  }

  changeRole(
    em: EntityManager,
    account: IAccount,
    actor: Actor,
    userId: string,
    role: Role,
    /** `shownRole`: the role the form showed; the person must still have it (see refuseChangedSince). */
    opts: { addSeat?: boolean; shownRole?: string } = {},
  ) {
    const { shownRole, ...rest } = opts;
    return this.change(em, account, actor, userId, 'role_change', role, {
      ...rest,
      ...(shownRole ? { shown: { of: 'role', value: shownRole } as const } : {}),
    });
  }

  /**
   * Why the change would be refused, found by reading only (no lock, no write), so a form can show it
   * before Slack's 3 s are up; null when it looks possible. The change itself checks again under its locks.
   */
  async problem(
    em: EntityManager,
    account: IAccount,
    actor: Actor,
    userId: string,
    kind: Change,
    newRole: Role | undefined,
    opts: { addSeat?: boolean } = {},
  ): Promise<DomainError | null> {
    try {
      const user = z.uuid().safeParse(userId).success
        ? await em.findOne(User, { id: userId, account })
        : null;
      if (!user) throw new DomainError('not_found', 'That person is not in Roster.');
      const role = refuseChange(user, kind, newRole);
      if (kind !== 'role_change') await refuseOutsideDomains(em, account, user.email);
      const needsSeat = needsNewSeat(user, kind, role);
      if (needsSeat && actor.isAdmin && !opts.addSeat) {
        this.seats.refuseWhenFull(await this.seats.usage(em, account), user.email);
      }
      if (needsSeat && !actor.isAdmin) {
        const email = user.email.trim();
        const waiting = await em.count(SeatRequest, {
          account,
          status: 'pending',
          email: { $ilike: email.replace(/([%_\\])/g, '\\$1') },
        });
        if (waiting)
          throw new DomainError('conflict', `A seat request for ${email} is already waiting for an admin.`);
      }
      return null;
    } catch (err) {
      if (err instanceof DomainError) return err;
      throw err;
    }
  }

  private async change(
    em: EntityManager,
    account: IAccount,
    actor: Actor,
    userId: string,
    kind: Change,
    newRole: Role | undefined,
    opts: {
      sendInvitation?: boolean;
      addSeat?: boolean;
      openedFor?: 'deactivated' | 'expired';
      shown?: Shown;
    },
  ): Promise<ChangeResult> {
    return em.transactional(async (tx) => {
      // An admin's change may be what a requester asked for: the requests about the person are locked first,
      // then the account's seats, then the person, the order an approval takes them in, so the two never
      // deadlock; the person locked, so the status checked is the one the change replaces.
      const requestIds =
        actor.isAdmin && z.uuid().safeParse(userId).success
          ? await this.seats.lockRequestsAbout(tx, account, userId)
          : [];
      await this.seats.lock(tx, account);
      const user = await lockUser(tx, account, userId);
      if (!user) throw new DomainError('not_found', 'That person is not in Roster.');
      if (opts.openedFor) refuseOvertaken(user, opts.openedFor);
      refuseChangedSince(user, opts.shown);
      const role = refuseChange(user, kind, newRole);
      // Unlocked or reactivated, the person can be invited: their login must be at an allowed domain.
      if (kind !== 'role_change') await refuseOutsideDomains(tx, account, user.email);
      const wasHolding = holdsSeat(user);
      const apply = async () => {
        await this.apply(tx, account, user, kind, role, Boolean(opts.sendInvitation), actor.slackUserId);
        await this.closeDone(tx, account, actor, user, requestIds);
      };
      if (!needsNewSeat(user, kind, role)) {
        // Only a change that needs a seat can be asked of an admin; any other change to a person is theirs.
        if (!actor.isAdmin) {
          await auditRefusal(tx, {
            account,
            actor: actor.slackUserId,
            action: `user.${kind}_refused`,
            subjectType: 'user',
            subjectId: user.id,
            surface: actor.surface,
            data: { email: user.email, reason: 'not an admin' },
          });
          throw new DomainError(
            'not_admin',
            `Only admins can change ${displayName(user)} that way; ask one.`,
          );
        }
        await apply();
        // An employee made a contractor keeps their seat; made a client, they give it back.
        if (wasHolding && !holdsSeat(user)) this.seats.freed(tx, account, actor, user.email);
        return { status: 'done', user, seatAdded: false };
      }
      const result = await this.seats.admit(
        tx,
        account,
        actor,
        {
          kind,
          email: user.email,
          name: displayName(user),
          role,
          user,
          requestedBy: actor.slackUserId,
          // The set the change brings back with them: one that makes an admin is said in bold on the request.
          permissionSet: user.permissionSet
            ? await tx.findOne(PermissionSet, { id: user.permissionSet.id, account })
            : null,
          // The status it was asked from: an expired person deactivated before the approval is not brought back.
          payload: { sendInvitation: Boolean(opts.sendInvitation), fromStatus: user.status },
          addSeat: opts.addSeat,
        },
        apply,
      );
      return result.status === 'added'
        ? { status: 'done', user, seatAdded: result.seatAdded }
        : { status: 'requested', request: result.request };
    });
  }

  /** Closes, as done by the admin, the requests among `requestIds` that the change just made fulfils. */
  private async closeDone(
    tx: EntityManager,
    account: IAccount,
    actor: Actor,
    user: IUser,
    requestIds: string[],
  ): Promise<void> {
    if (!requestIds.length) return;
    const requests = await tx.find(SeatRequest, { id: { $in: requestIds }, account, status: 'pending' });
    const done = requests.filter((r) => {
      if (!(PEOPLE_CHANGES as readonly string[]).includes(r.kind)) return false;
      // Done when the person now has what was asked: no longer locked, deactivated or expired, or in the role.
      return r.kind === 'role_change'
        ? user.role === r.role
        : !['locked', 'deactivated', 'expired'].includes(user.status);
    });
    await this.seats.closeAsDone(
      tx,
      account,
      done.map((r) => r.id),
      actor,
      'The change was made directly from their person card.',
    );
  }

  private async apply(
    tx: EntityManager,
    account: IAccount,
    user: IUser,
    kind: Change,
    role: Role,
    sendInvitation: boolean,
    actorId: string,
  ): Promise<void> {
    const before = { status: user.status, role: user.role };
    // Checked again here for an approval: the domains may have changed since the request was filed.
    if (kind !== 'role_change') await refuseOutsideDomains(tx, account, user.email);
    if (kind === 'role_change') {
      user.role = role;
    } else {
      user.status = 'not_invited';
      user.deactivatedAt = null;
    }
    audit(tx, {
      account,
      actor: actorId,
      action: `user.${kind === 'role_change' ? 'role_changed' : kind === 'unlock' ? 'unlocked' : 'reactivated'}`,
      subjectType: 'user',
      subjectId: user.id,
      surface: 'slack',
      data: { email: user.email, before, after: { status: user.status, role: user.role } },
    });
    if (sendInvitation && kind !== 'role_change') {
      // An expired invitation sent anew keeps its personal message; an unlock or a reactivation of someone
      // deactivated is a new start.
      const personalMessage = before.status === 'expired' ? await latestPersonalMessage(tx, user) : null;
      await queueInvitation(tx, this.jobs, {
        account,
        user,
        invitedBy: actorId,
        personalMessage,
        surface: 'slack',
      });
    }
  }

  /**
   * The users an import created that are still locked: how many, how many of them need a paid seat, how
   * many have no login email, and how many have one outside the account's allowed email domains.
   */
  async lockedFromImport(em: EntityManager, account: IAccount, importId: string) {
    const domains = await allowedDomains(em, account);
    const [row] = await query<{ total: number; paid: number; noLogin: number; outside: number }>(
      em,
      sql`select count(*)::int as total,
            count(*) filter (where u.role = any(${PAID_ROLES}) and not u.login_missing and ${withinDomains(domains)})::int as paid,
            count(*) filter (where u.login_missing)::int as "noLogin",
            count(*) filter (where not u.login_missing and not ${withinDomains(domains)})::int as outside
          from ${importedBy(account.id, importId)} e join app_user u on u.id = e.user_id
          where u.account_id = ${account.id} and u.status = 'locked'`,
    );
    return {
      total: row?.total ?? 0,
      paid: row?.paid ?? 0,
      noLogin: row?.noLogin ?? 0,
      outside: row?.outside ?? 0,
    };
  }

  /**
   * Unlocks and invites every user an import created that is still locked, in file order: clients
   * always, paid roles while seats are free. Works in small transactions, so the account's seats are
   * locked only for a moment at a time; stops cleanly at the limit and says how many are left. People
   * whose email is outside the account's allowed email domains stay locked, counted apart.
   */
  async unlockImported(
    em: EntityManager,
    account: IAccount,
    actor: Actor,
    importId: string,
    opts: {
      /** After each batch, with how many were unlocked so far. */
      progress?: (invited: number) => void;
      /** Roster stopping: the batch under way is committed, and HandedBack thrown before the next. */
      signal?: AbortSignal;
    } = {},
  ): Promise<{ invited: number; left: number; noLogin: number; outside: number }> {
    if (!actor.isAdmin) throw new DomainError('not_admin', 'Only admins can unlock imported people.');
    let invited = 0;
    // Where each kind's walk through the import's people has reached (their audit events' ids). Someone
    // passed over (being changed by someone else at that moment, made a client meanwhile) is found by one
    // more walk from the start, once the walks end; the run ends when a walk from the start finds nobody.
    let after = { free: 0, paid: 0 };
    for (;;) {
      if (opts.signal?.aborted) throw new HandedBack();
      const done = await em.fork().transactional(async (tx) => {
        const usage = await this.seats.lock(tx, account);
        const domains = await allowedDomains(tx, account);
        const pick = async (paid: boolean, limit: number) => {
          if (limit <= 0) return [];
          const kind = paid ? 'paid' : 'free';
          const rows = await query<Unlocked & { event: string }>(
            tx,
            sql`select u.id, u.email, u.role, e.id as event from audit_event e
                  join app_user u on u.id = e.subject_id::uuid
                where e.account_id = ${account.id} and e.action = 'user.imported'
                  and e.data->>'importId' = ${importId} and e.id > ${after[kind]}
                  and u.account_id = ${account.id} and u.status = 'locked' and not u.login_missing
                  and (u.role = any(${PAID_ROLES})) = ${paid} and ${withinDomains(domains)}
                order by e.id limit ${limit} for update of u skip locked`,
          );
          if (rows.length) after[kind] = Number(rows.at(-1)?.event);
          return rows;
        };
        const rows = [
          ...(await pick(false, BULK_BATCH)),
          ...(await pick(true, Math.min(usage.free, BULK_BATCH))),
        ];
        await unlockAndInvite(tx, this.jobs, account, actor, rows, usage);
        return rows.map((r) => r.id);
      });
      // What was asked of an admin for these people is done: the requests are closed as such, in a
      // transaction of their own that locks only them, as an approval locks them first.
      if (done.length) await this.closeUnlockRequests(em, account, actor, done);
      invited += done.length;
      if (done.length === 0) {
        if (!after.free && !after.paid) break;
        after = { free: 0, paid: 0 };
        continue;
      }
      opts.progress?.(invited);
    }
    const { total, noLogin, outside } = await this.lockedFromImport(em, account, importId);
    return { invited, left: total - noLogin - outside, noLogin, outside };
  }

  /** Closes as done the pending requests to unlock `userIds` that are unlocked now. */
  private async closeUnlockRequests(
    em: EntityManager,
    account: IAccount,
    actor: Actor,
    userIds: string[],
  ): Promise<void> {
    await em.fork().transactional(async (tx) => {
      const asked = await query<{ id: string }>(
        tx,
        sql`select r.id from seat_request r join app_user u on u.id = r.user_id
              where r.account_id = ${account.id} and r.status = 'pending' and r.kind = 'unlock'
                and r.user_id = any(${userIds}::uuid[]) and u.status <> 'locked'
              order by r.id for update of r`,
      );
      await this.seats.closeAsDone(
        tx,
        account,
        asked.map((r) => r.id),
        actor,
        'They were unlocked and invited with Unlock and invite all, after their import.',
      );
    });
  }
}

/**
 * How many of the people import `importId` created `actorId` has unlocked since `since`: what an Unlock
 * and invite all stopped and taken up again (after a restart) did in all.
 */
export async function unlockedSince(
  em: EntityManager,
  account: IAccount,
  importId: string,
  actorId: string,
  since: Date,
): Promise<number> {
  const [row] = await query<{ n: number }>(
    em,
    sql`select count(*)::int as n from audit_event
        where account_id = ${account.id} and action = 'user.unlocked' and actor = ${actorId}
          and created_at >= ${since}
          and subject_id in (select e.user_id::text from ${importedBy(account.id, importId)} e)`,
  );
  return row?.n ?? 0;
}

/** A locked user picked for a bulk unlock. */
type Unlocked = { id: string; email: string; role: Role };

/**
 * Unlocks and invites `rows`, locked users locked for update whose addresses are within the account's
 * domains, set-based: one statement each for the users, their invitations (voiding any pending one), the
 * audit events a one-by-one unlock writes (unlocked, invitation, seat taken) and one delivery job for the
 * batch. The paid ones take seats counted from `usage`, taken under the account's seat lock, which must
 * have them free.
 */
async function unlockAndInvite(
  tx: EntityManager,
  jobs: JobQueue,
  account: IAccount,
  actor: Actor,
  rows: Unlocked[],
  usage: { used: number; limit: number },
): Promise<void> {
  if (!rows.length) return;
  const ids = rows.map((r) => r.id);
  await query(
    tx,
    sql`update app_user set status = 'invited', deactivated_at = null, updated_at = now()
        where account_id = ${account.id} and id = any(${ids}::uuid[])`,
  );
  const superseded = await query<{ user_id: string }>(
    tx,
    sql`update invitation set status = 'superseded', updated_at = now()
        where account_id = ${account.id} and user_id = any(${ids}::uuid[]) and status = 'pending'
        returning user_id`,
  );
  // The token is made when the invitation is delivered (its hash is null until then). Each person's
  // events in the order a one-by-one unlock writes them.
  const invitations = await query<{ id: string }>(
    tx,
    sql`with u as (
          select * from unnest(${ids}::uuid[], ${rows.map((r) => r.email)}::text[], ${rows.map((r) => r.role)}::text[])
            with ordinality as u(user_id, email, role, n)),
        inv as (
          insert into invitation (id, account_id, user_id, token_hash, status, expires_at, invited_by)
          select gen_random_uuid(), a.id, u.user_id, null, 'pending',
            now() + make_interval(days => a.invitation_expiry_days), ${actor.slackUserId}
          from u join account a on a.id = ${account.id}
          returning id, user_id),
        logged as (
          insert into audit_event (account_id, actor, action, subject_type, subject_id, surface, data)
          select ${account.id}::uuid, ${actor.slackUserId}, e.action, e.subject_type, e.subject_id, ${actor.surface}, e.data
          from u join inv on inv.user_id = u.user_id
          cross join lateral (values
            (1, 'user.unlocked', 'user', u.user_id::text, jsonb_build_object('email', u.email,
              'before', jsonb_build_object('status', 'locked', 'role', u.role),
              'after', jsonb_build_object('status', 'not_invited', 'role', u.role))),
            (2, case when u.user_id = any(${superseded.map((x) => x.user_id)}::uuid[])
                  then 'invitation.resent' else 'invitation.created' end,
              'invitation', inv.id::text, jsonb_build_object('email', u.email))
          ) as e(k, action, subject_type, subject_id, data)
          order by u.n, e.k)
        select inv.id from inv join u on u.user_id = inv.user_id order by u.n`,
  );
  const seated = rows.filter((r) => isPaidRole(r.role)).map((r) => r.email);
  if (seated.length) {
    await query(
      tx,
      sql`insert into audit_event (account_id, actor, action, subject_type, subject_id, surface, data)
          select ${account.id}::uuid, ${actor.slackUserId}, 'seat.taken', 'seat', null, ${actor.surface},
            jsonb_build_object('for', e.email, 'used', ${usage.used}::int + e.n, 'limit', ${usage.limit}::int,
              'seatAdded', false)
          from unnest(${seated}::text[]) with ordinality as e(email, n)`,
    );
  }
  await jobs.send(INVITE_JOBS.deliverBatch, { invitationIds: invitations.map((i) => i.id) }, { em: tx });
}

/** Whether the user `u`'s email is at one of `domains` (any, when there are none), as SQL. */
function withinDomains(domains: string[]) {
  return sql`(cardinality(${domains}::text[]) = 0 or lower(split_part(btrim(u.email), '@', 2)) = any(${domains}::text[]))`;
}

/**
 * The users an import created, in file order, from its audit events: filtered first, so the join to
 * the users goes through their primary key.
 */
function importedBy(accountId: string, importId: string) {
  return sql`(select id, subject_id::uuid as user_id from audit_event
      where account_id = ${accountId} and action = 'user.imported' and data->>'importId' = ${importId}
      offset 0)`;
}

const ROLE_LABEL_SHORT: Record<Role, string> = {
  employee: 'an employee',
  contractor: 'a contractor',
  client: 'a client',
};

function holdsSeat(user: IUser): boolean {
  return isPaidRole(user.role) && SEAT_HOLDING_STATUSES.includes(user.status);
}

/**
 * Whether the change gives the person a paid seat they do not hold now: they end with a paid role in a
 * seat-holding status. An employee made a contractor, or the reverse, keeps the seat they have.
 */
function needsNewSeat(user: IUser, kind: Change, role: Role): boolean {
  if (kind !== 'role_change') return isPaidRole(role);
  return isPaidRole(role) && SEAT_HOLDING_STATUSES.includes(user.status) && !holdsSeat(user);
}

/**
 * Refuses a reactivation whose form was opened for a status the person no longer has, read under their lock:
 * an "Invite again" of an expired person must not bring back someone deactivated since (in Slack, or by an
 * admin). Reactivating a deactivated person stays the card's own, deliberate Reactivate.
 */
function refuseOvertaken(user: IUser, openedFor: 'deactivated' | 'expired'): void {
  if (user.status === openedFor) return;
  const name = displayName(user);
  const form = openedFor === 'expired' ? 'Invite again' : 'Reactivate';
  const what = openedFor === 'expired' ? 'invited again' : 'reactivated';
  if (user.status === 'deactivated') {
    throw new DomainError(
      'conflict',
      `${name} was deactivated after the ${form} form was opened (in Slack or by an admin), so they were not ${what}. If they should come back, reactivate them from their card (\`/people ${user.email}\`).`,
    );
  }
  throw new DomainError(
    'conflict',
    `${name} is ${user.status.replace('_', ' ')} now, no longer ${openedFor}: they were changed after the ${form} form was opened, so they were not ${what}.`,
  );
}

/** The role the person ends up with; refuses a change that does not fit the person as they are. */
function refuseChange(user: IUser, kind: Change, newRole: Role | undefined): Role {
  // An expired invitation is brought back like a deactivation: the person needs a seat again.
  const expected = { unlock: ['locked'], reactivate: ['deactivated', 'expired'] } as const;
  if (kind !== 'role_change' && !(expected[kind] as readonly string[]).includes(user.status)) {
    throw new DomainError(
      'conflict',
      `${displayName(user)} is ${user.status.replace('_', ' ')}, not ${expected[kind].join(' or ')}.`,
    );
  }
  if (user.loginMissing && kind !== 'role_change') {
    throw new DomainError(
      'conflict',
      `${displayName(user)} has no login email yet (the import gave “${user.loginHint ?? ''}”): set one with Change email on their card (\`/people\`) first.`,
    );
  }
  const role = newRole ?? user.role;
  if (kind === 'role_change' && role === user.role) {
    throw new DomainError('conflict', `${displayName(user)} is already a ${role}.`);
  }
  return role;
}
