import { createHmac, randomBytes } from 'node:crypto';
import type { EntityManager } from '@mikro-orm/postgresql';
import { UniqueConstraintViolationException } from '@mikro-orm/postgresql';
import { retryDeadlocks } from '../../db/deadlock.ts';
import { query, sql } from '../../db/sql.ts';
import { DomainError } from '../../shared/errors.ts';
import { hashToken } from '../../shared/ids.ts';
import { type JobQueue, TryLater } from '../../shared/jobs.ts';
import { Account, type IAccount, type IPermissionSet, PermissionSet } from '../accounts/account.entity.ts';
import { outsideAllowedDomains, refuseOutsideDomains } from '../accounts/allowed-domains.ts';
import { audit } from '../audit/audit.service.ts';
import type { Surface } from '../audit/audit-event.entity.ts';
import { type GuestCheck, permissionSetToGrant, refuseAdminSetForGuest } from '../people/grants.ts';
import { statusText } from '../people/labels.ts';
import { createUser, findContactByEmail, findUserByEmail, lockUser } from '../people/people.service.ts';
import { type IUser, isPaidRole, type Role, User } from '../people/user.entity.ts';
import type { Actor, SeatFlow, SeatService } from '../seats/seat.service.ts';
import { type IInvitation, Invitation } from './invitation.entity.ts';
import { latestPersonalMessage, queueInvitation } from './invitation.service.ts';
import { MAX_EMAILS, MAX_MESSAGE } from './invite-text.ts';

/**
 * How long a delivery holds its invitation (see prepareDelivery): longer than any one delivery takes
 * (a Slack lookup, a DM, an email with the mailer's own time-outs), so only a delivery that died meanwhile
 * lets it lapse.
 */
const DELIVERY_LEASE_SECONDS = 15 * 60;

/** How many invitations one transaction of the expiry takes. */
export const EXPIRE_BATCH = 1000;

export type InviteInput = {
  emails: string[];
  /** Names typed with the addresses (`Ana Lopez <ana@x.com>`), by lower-cased address. */
  names?: Record<string, { firstName?: string; lastName?: string }>;
  role: Role;
  permissionSetId?: string | null;
  sendNow: boolean;
  personalMessage?: string | null;
};

export type InviteOutcome =
  | { email: string; result: 'invited' | 'added' | 'converted'; user: IUser; sent: boolean }
  | { email: string; result: 'exists'; user: IUser }
  | { email: string; result: 'requested' }
  | { email: string; result: 'refused'; reason: string; noSeat?: true };

type Payload = {
  sendNow: boolean;
  personalMessage: string | null;
  permissionSetId: string | null;
  firstName?: string;
  lastName?: string;
};

/** Inviting people, delivering and accepting invitations, and what can be done to them later. */
export class InviteService {
  private readonly seats: SeatService;
  private readonly jobs: JobQueue;
  private readonly now: () => Date;
  /** The key links are derived with (see linkToken). */
  private readonly tokenKey: Buffer;
  private guests?: GuestCheck;

  /** How a guest in Slack is told apart; registered in the composition root (this service knows no Slack). */
  checkGuests(check: GuestCheck): void {
    this.guests = check;
  }

  constructor(
    seats: SeatService,
    jobs: JobQueue,
    now: () => Date = () => new Date(),
    opts: { tokenSecret?: string } = {},
  ) {
    this.seats = seats;
    this.jobs = jobs;
    this.now = now;
    this.tokenKey = opts.tokenSecret
      ? createHmac('sha256', opts.tokenSecret).update('roster-invitation-link').digest()
      : randomBytes(32);
  }

  /**
   * An invitation's link token: derived with a secret from the invitation and the nonce its first delivery
   * attempt stored, so an attempt retried after one whose sending worked but whose recording failed sends
   * the same link, and the first one the person received keeps working. Only the hash is stored; the id
   * and nonce give nothing without the secret. Voiding a delivered link means clearing its nonce as well.
   */
  private linkToken(invitationId: string, nonce: string): { token: string; hash: string } {
    const token = createHmac('sha256', this.tokenKey).update(`${invitationId}:${nonce}`).digest('base64url');
    return { token, hash: hashToken(token) };
  }

  /** What approving a seat request for an invitation does; registered in the composition root. */
  seatFlow(): SeatFlow {
    return {
      // Asked before a seat is taken: someone invited the address directly since (an admin, a join), and
      // approving must neither take a seat for them nor add one to the limit.
      refuse: async (tx, request, account) => {
        const existing = await findUserByEmail(tx, account, request.email);
        if (existing) {
          return `${request.email} is already a user (${existing.status.replace('_', ' ')}), so there is nothing to approve.`;
        }
        // The allowed email domains changed since the request was filed: approving could never succeed.
        return outsideAllowedDomains(tx, account, request.email);
      },
      approve: async (tx, request, account) => {
        const payload = request.payload as Payload;
        const existing = await findUserByEmail(tx, account, request.email);
        if (existing) return `${request.email} was already a user (${existing.status.replace('_', ' ')}).`;
        const permissionSet = payload.permissionSetId
          ? await tx.findOne(PermissionSet, { id: payload.permissionSetId, account })
          : null;
        await this.create(
          tx,
          account,
          request.email,
          request.role,
          permissionSet,
          request.requestedBy,
          payload,
          'slack',
        );
        return payload.sendNow
          ? `The invitation is on its way to ${request.email}.`
          : `${request.email} was added without an invitation.`;
      },
    };
  }

  /** Invites each address in its own transaction, so one refusal does not undo the others. */
  async invite(
    em: EntityManager,
    account: IAccount,
    actor: Actor,
    input: InviteInput,
  ): Promise<InviteOutcome[]> {
    const message = input.personalMessage?.trim() ?? '';
    if (message.length > MAX_MESSAGE) {
      throw new DomainError(
        'invalid_input',
        `Keep the personal message under ${MAX_MESSAGE} characters (it has ${message.length}).`,
        { field: 'message' },
      );
    }
    if (input.emails.length > MAX_EMAILS) {
      throw new DomainError('invalid_input', `At most ${MAX_EMAILS} addresses at once.`, { field: 'emails' });
    }
    const permissionSet = await permissionSetToGrant(
      em,
      account,
      actor,
      input.permissionSetId,
      input.emails.join(', ').slice(0, 200),
    );
    const payload: Payload = {
      sendNow: input.sendNow,
      personalMessage: input.personalMessage?.trim() || null,
      permissionSetId: permissionSet?.id ?? null,
    };
    const outcomes: InviteOutcome[] = [];
    for (const email of input.emails) {
      if (permissionSet?.isAdmin && this.guests) {
        // A guest in Slack is never a Roster admin: asked before the address's transaction, which never
        // waits on Slack.
        const guest = await this.guests(em, account, { email: email.trim() });
        try {
          await refuseAdminSetForGuest(em, account, actor, permissionSet, guest, email.trim());
        } catch (err) {
          if (!(err instanceof DomainError)) throw err;
          outcomes.push({ email: email.trim(), result: 'refused', reason: err.message });
          continue;
        }
      }
      const names = input.names?.[email.trim().toLowerCase()];
      outcomes.push(
        await this.inviteOne(em.fork(), account, actor, email.trim(), input.role, permissionSet, {
          ...payload,
          ...(names?.firstName ? { firstName: names.firstName } : {}),
          ...(names?.lastName ? { lastName: names.lastName } : {}),
        }),
      );
    }
    return outcomes;
  }

  private async inviteOne(
    em: EntityManager,
    account: IAccount,
    actor: Actor,
    email: string,
    role: Role,
    permissionSet: IPermissionSet | null,
    payload: Payload,
  ): Promise<InviteOutcome> {
    try {
      // Taken as every paid addition takes them (the account's seats, then a contact with the address); a
      // CSV import's batch takes them the other way round, and the one Postgres stops runs again.
      return await retryDeadlocks(() =>
        em.transactional(async (tx) => {
          const existing = await findUserByEmail(tx, account, email);
          if (existing) return { email, result: 'exists', user: existing };
          // Before a seat request is filed: an admin could not approve it.
          await refuseOutsideDomains(tx, account, email);
          const converting = Boolean(await findContactByEmail(tx, account, email));
          const result = await this.seats.admit(
            tx,
            account,
            actor,
            {
              kind: 'invite',
              email,
              name: [payload.firstName, payload.lastName].filter(Boolean).join(' ') || null,
              role,
              permissionSet,
              requestedBy: actor.slackUserId,
              payload,
            },
            () =>
              this.create(tx, account, email, role, permissionSet, actor.slackUserId, payload, actor.surface),
          );
          if (result.status === 'requested') return { email, result: 'requested' };
          const user = result.value;
          return {
            email,
            result: converting ? 'converted' : payload.sendNow ? 'invited' : 'added',
            user,
            sent: payload.sendNow,
          };
        }),
      );
    } catch (err) {
      if (err instanceof DomainError) {
        return {
          email,
          result: 'refused',
          reason: err.message,
          ...(err.code === 'no_seat' ? { noSeat: true as const } : {}),
        };
      }
      if (err instanceof UniqueConstraintViolationException) {
        // Another request added the same person a moment ago (a retry, a double submit).
        const user = await findUserByEmail(em.fork(), account, email);
        if (user) return { email, result: 'exists', user };
      }
      throw err;
    }
  }

  private async create(
    tx: EntityManager,
    account: IAccount,
    email: string,
    role: Role,
    permissionSet: IPermissionSet | null,
    addedBy: string,
    payload: Payload,
    surface: Surface,
  ): Promise<IUser> {
    const user = await createUser(tx, account, {
      email,
      role,
      status: 'not_invited',
      permissionSet,
      addedBy,
      // A name typed with the address; otherwise a contact's, if one had this email.
      firstName: payload.firstName,
      lastName: payload.lastName,
    });
    audit(tx, {
      account,
      actor: addedBy,
      action: 'user.added',
      subjectType: 'user',
      subjectId: user.id,
      surface,
      data: { email, role, sendNow: payload.sendNow },
    });
    if (payload.sendNow) {
      await queueInvitation(tx, this.jobs, {
        account,
        user,
        invitedBy: addedBy,
        personalMessage: payload.personalMessage,
        surface,
      });
    }
    await tx.flush();
    return user;
  }

  /**
   * Readies an invitation for delivery: a fresh token, whose hash replaces any earlier one, one more
   * attempt counted, and the invitation held for this delivery until it is recorded as delivered or
   * failed (or released). Null when there is nothing to deliver (cancelled, superseded, delivered, or
   * given up on: a Resend makes a new invitation);
   * TryLater while another delivery of it holds it, so two never send it at once.
   */
  async prepareDelivery(em: EntityManager, invitationId: string) {
    return em.transactional(async (tx) => {
      const [row] = await query<{ id: string; token_nonce: string | null; leased_ms: number | null }>(
        tx,
        sql`select id, token_nonce, case when delivering_until > now()
              then ceil(extract(epoch from delivering_until - now()) * 1000)::int end as leased_ms
            from invitation where id = ${invitationId} and status = 'pending' and delivered_at is null
              and delivery_failed_at is null for update`,
      );
      if (!row) return null;
      // Another delivery of it is under way: this one comes back when that one has had its time.
      if (row.leased_ms !== null) {
        throw new TryLater(
          row.leased_ms,
          `invitation ${invitationId} is being delivered by another job`,
          'the invitation is being delivered by another job',
        );
      }
      // The link's hash (the same on every attempt), the attempt and the lease (on the database's clock,
      // as every lease is compared), in the one write this transaction makes: a second write of the row
      // would check its foreign keys again, waiting for a person locked by a deactivation that waits for
      // this row.
      const nonce = row.token_nonce ?? randomBytes(16).toString('base64url');
      const { token, hash } = this.linkToken(invitationId, nonce);
      await query(
        tx,
        sql`update invitation set token_nonce = ${nonce}, token_hash = ${hash},
              delivery_attempts = delivery_attempts + 1,
              delivering_until = now() + make_interval(secs => ${DELIVERY_LEASE_SECONDS}), updated_at = now()
            where id = ${invitationId}`,
      );
      const invitation = await tx.findOneOrFail(Invitation, invitationId, {
        populate: ['user', 'account'],
        refresh: true,
      });
      return {
        token,
        invitation,
        user: invitation.user.getEntity(),
        account: invitation.account.getEntity(),
      };
    });
  }

  async recordDelivery(
    em: EntityManager,
    invitationId: string,
    result: { method: 'slack_dm' | 'email'; slackUserId?: string; error?: string },
  ): Promise<void> {
    const user = await em.transactional(async (tx) => {
      await query(tx, sql`select id from invitation where id = ${invitationId} for update`);
      const invitation = await tx.findOneOrFail(Invitation, invitationId, {
        populate: ['user', 'account'],
        refresh: true,
      });
      // Cancelled or replaced the moment it went out: it stays as that left it, not recorded as delivered.
      if (invitation.status !== 'pending') return null;
      invitation.deliveredAt = this.now();
      invitation.deliveringUntil = null;
      invitation.deliveryMethod = result.method;
      invitation.lastError = result.error ?? null;
      const user = invitation.user.getEntity();
      audit(tx, {
        account: invitation.account.getEntity(),
        actor: 'roster',
        action: 'invitation.delivered',
        subjectType: 'invitation',
        subjectId: invitation.id,
        surface: 'job',
        data: {
          email: user.email,
          method: result.method,
          attempts: invitation.deliveryAttempts,
          fellBackFrom: result.error,
        },
      });
      return user;
    });
    // The person learns their Slack id after the invitation is recorded, in a write of its own: a
    // transaction that held the invitation while it waited for the person would deadlock with a
    // deactivation, which holds the person while it cancels the invitation.
    if (user && result.slackUserId && !user.slackUserId) {
      await query(
        em.fork(),
        sql`update app_user set slack_user_id = ${result.slackUserId}, updated_at = now()
            where id = ${user.id} and slack_user_id is null
              and not exists (select 1 from app_user o where o.account_id = app_user.account_id
                and o.slack_user_id = ${result.slackUserId})`,
      );
    }
  }

  /**
   * Records a failed attempt. The last one (Roster stops retrying: out of retries, or the address refused
   * for good) marks the invitation as not delivered, which no later delivery takes up again, and is an audit
   * event, so the person's history shows the invitation never arrived.
   */
  async recordFailure(
    em: EntityManager,
    invitationId: string,
    error: string,
    gaveUp = false,
    /** Done in the same transaction when it is recorded as given up (the inviter's notice queued). */
    alsoOnGivingUp?: (tx: EntityManager) => Promise<void>,
  ): Promise<boolean> {
    return em.transactional(async (tx) => {
      await query(tx, sql`select id from invitation where id = ${invitationId} for update`);
      const invitation = await tx.findOne(Invitation, invitationId, {
        populate: ['user', 'account'],
        refresh: true,
      });
      // Cancelled or replaced while it was being delivered: its failure is nobody's concern any more.
      if (invitation?.status !== 'pending') return false;
      invitation.lastError = error.slice(0, 1000);
      invitation.deliveringUntil = null;
      if (gaveUp) {
        invitation.deliveryFailedAt = this.now();
        audit(tx, {
          account: invitation.account.getEntity(),
          actor: 'roster',
          action: 'invitation.delivery_failed',
          subjectType: 'invitation',
          subjectId: invitation.id,
          surface: 'job',
          data: { email: invitation.user.getEntity().email, attempts: invitation.deliveryAttempts, error },
        });
        await tx.flush();
        await alsoOnGivingUp?.(tx);
      }
      return true;
    });
  }

  /** Ends a delivery that stopped before it was delivered or recorded as failed (Slack asked to wait). */
  async releaseDelivery(em: EntityManager, invitationId: string): Promise<void> {
    await query(
      em,
      sql`update invitation set delivering_until = null where id = ${invitationId} and delivered_at is null`,
    );
  }

  /** The invitation behind a link, if the link still works; anything else is `null`, whatever the reason. */
  async findByToken(em: EntityManager, token: string) {
    if (!/^[A-Za-z0-9_-]{40,64}$/.test(token)) return null;
    const invitation = await em.findOne(
      Invitation,
      { tokenHash: hashToken(token) },
      { populate: ['user', 'account'] },
    );
    if (!invitation) return null;
    // As accept() judges it, so the page never offers an Accept that would then be refused.
    const user = invitation.user.getEntity();
    const usable =
      invitation.status === 'pending' &&
      invitation.expiresAt > this.now() &&
      user.status === 'invited' &&
      !(await outsideAllowedDomains(em, invitation.account.getEntity(), user.email));
    return { invitation, usable };
  }

  /**
   * Accepts an invitation: the user becomes active. Accepting twice (a double click) answers as the
   * first time did, for a few minutes; after that a used link is just no longer valid.
   */
  async accept(
    em: EntityManager,
    by: { token?: string; invitationId?: string; slackUserId?: string },
    surface: Surface,
  ): Promise<{ user: IUser; account: IAccount; already: boolean } | null> {
    return em.transactional(async (tx) => {
      const where = by.token ? sql`token_hash = ${hashToken(by.token)}` : sql`id = ${by.invitationId}`;
      const [found] = await query<{ id: string; user_id: string }>(
        tx,
        sql`select id, user_id from invitation where ${where}`,
      );
      if (!found) return null;
      // The person first, then the invitation: the order a cancel, a resend and a deactivation lock them
      // in, so an acceptance racing one of them waits for it instead of deadlocking with it.
      await query(tx, sql`select id from app_user where id = ${found.user_id} for update`);
      const [row] = await query<{ id: string }>(
        tx,
        sql`select id from invitation where id = ${found.id} for update`,
      );
      if (!row) return null;
      const invitation = await tx.findOneOrFail(Invitation, row.id, {
        populate: ['user', 'account'],
        refresh: true,
      });
      const account = invitation.account.getEntity();
      // A deactivation committing meanwhile must be seen, not overwritten with `active`.
      const user = (await lockUser(tx, account, invitation.user.id)) ?? invitation.user.getEntity();
      if (invitation.status === 'accepted') {
        const recent =
          invitation.acceptedAt && this.now().getTime() - invitation.acceptedAt.getTime() < 10 * 60_000;
        // Only someone still active is told they are in: deactivated (or locked) since, the link is just
        // no longer valid.
        return recent && user.status === 'active' ? { user, account, already: true } : null;
      }
      if (invitation.status !== 'pending' || invitation.expiresAt <= this.now() || user.status !== 'invited')
        return null;
      // The allowed email domains narrowed since it was sent: no login outside them, as for any new one.
      if (await outsideAllowedDomains(tx, account, user.email)) return null;
      invitation.status = 'accepted';
      invitation.acceptedAt = this.now();
      user.status = 'active';
      if (by.slackUserId && !user.slackUserId) user.slackUserId = by.slackUserId;
      audit(tx, {
        account,
        actor: by.slackUserId ?? user.email,
        action: 'invitation.accepted',
        subjectType: 'invitation',
        subjectId: invitation.id,
        surface,
        data: { email: user.email },
      });
      return { user, account, already: false };
    });
  }

  /**
   * Invitations past their expiry: each becomes `expired`, and its user, if still only invited, becomes
   * `expired` too and holds no seat. Rows another transaction holds (an acceptance in progress) are left
   * for the next run. Returns how many invitations expired.
   */
  async expire(em: EntityManager, limit = EXPIRE_BATCH): Promise<number> {
    return em.transactional(async (tx) => {
      const rows = await tx.getConnection().execute<
        {
          id: string;
          account_id: string;
          user_id: string;
          email: string;
          role: Role;
          user_expired: boolean;
        }[]
      >(
        // The invitation and its person are taken together, and skipped while another transaction holds
        // either: one holding the person (a cancel, a resend, an acceptance) goes on to write the
        // invitation, and waiting for it while holding the invitation would deadlock with it.
        `with due as (
           select i.id from invitation i join app_user u on u.id = i.user_id
            where i.status = 'pending' and i.expires_at <= ?
            order by i.expires_at limit ? for update of i, u skip locked),
         inv as (
           update invitation set status = 'expired', updated_at = now()
             from due where invitation.id = due.id
             returning invitation.id, invitation.account_id, invitation.user_id),
         users as (
           update app_user set status = 'expired', updated_at = now()
             from inv where app_user.id = inv.user_id and app_user.status = 'invited'
             returning app_user.id)
         select inv.id, inv.account_id, inv.user_id, u.email, u.role, (users.id is not null) as user_expired
           from inv join app_user u on u.id = inv.user_id left join users on users.id = inv.user_id`,
        [this.now(), limit],
        'all',
        tx.getTransactionContext(),
      );
      const actor: Actor = { slackUserId: 'roster', isAdmin: true, surface: 'job' };
      for (const row of rows) {
        const account = tx.getReference(Account, row.account_id);
        audit(tx, {
          account,
          actor: 'roster',
          action: 'invitation.expired',
          subjectType: 'invitation',
          subjectId: row.id,
          surface: 'job',
          data: { email: row.email, userExpired: row.user_expired },
        });
        if (row.user_expired && isPaidRole(row.role)) this.seats.freed(tx, account, actor, row.email);
      }
      await tx.flush();
      return rows.length;
    });
  }

  /**
   * Sends (or sends again) the invitation of a user who is invited or was added without one. `repeated`:
   * an invitation queued moments ago is still on its way (a double click, two admins at once), so nothing
   * more was sent and its link stays the one that works.
   */
  async resend(
    em: EntityManager,
    account: IAccount,
    actor: Actor,
    userId: string,
  ): Promise<{ user: IUser; repeated: boolean }> {
    return em.transactional(async (tx) => {
      const user = await this.userActorMayChange(tx, account, actor, userId);
      if (user.status !== 'invited' && user.status !== 'not_invited') {
        throw new DomainError(
          'conflict',
          `${user.email} is ${statusText(user.status)}, so there is no invitation to send.`,
        );
      }
      // Read under the person's lock, which the click before this one held until it committed. One whose
      // delivery has failed is not on its way: sending it again is what the inviter asks for.
      const [onItsWay] = await query<{ id: string }>(
        tx,
        sql`select id from invitation where user_id = ${user.id} and status = 'pending' and delivered_at is null
              and last_error is null and created_at > now() - make_interval(secs => ${RESEND_REPEAT_SECONDS})`,
      );
      if (onItsWay) return { user, repeated: true };
      await queueInvitation(tx, this.jobs, {
        account,
        user,
        invitedBy: actor.slackUserId,
        personalMessage: await latestPersonalMessage(tx, user),
        surface: actor.surface,
      });
      return { user, repeated: false };
    });
  }

  /**
   * Cancels a pending invitation: its link stops working, the person no longer holds a seat, and seat
   * requests about them are closed, as for any deactivation. A second press (a double click, the button
   * pressed again in another message) finds the invitation already cancelled and changes nothing:
   * `already` says so.
   */
  async cancel(
    em: EntityManager,
    account: IAccount,
    actor: Actor,
    userId: string,
  ): Promise<{ user: IUser; already: boolean }> {
    return em.transactional(async (tx) => {
      // Before the person, the order an approval locks them in.
      const requestIds = isUuid(userId) ? await this.seats.lockRequestsAbout(tx, account, userId) : [];
      const user = await this.userActorMayChange(tx, account, actor, userId);
      if (user.status === 'deactivated' && user.deactivatedAt) {
        // Deactivated by a cancel (not since reactivated, nor deactivated another way afterwards).
        const cancelled = await tx.count(Invitation, {
          user,
          status: 'cancelled',
          cancelledAt: { $gte: user.deactivatedAt },
        });
        if (cancelled) return { user, already: true };
      }
      if (user.status !== 'invited' && user.status !== 'not_invited') {
        throw new DomainError(
          'conflict',
          `${user.email} is ${statusText(user.status)}: there is no invitation to cancel.`,
        );
      }
      const pending = await tx.find(Invitation, { user, status: 'pending' });
      for (const inv of pending) {
        inv.status = 'cancelled';
        inv.cancelledAt = this.now();
      }
      user.status = 'deactivated';
      user.deactivatedAt = this.now();
      audit(tx, {
        account,
        actor: actor.slackUserId,
        action: 'invitation.cancelled',
        subjectType: 'user',
        subjectId: user.id,
        surface: actor.surface,
        data: { email: user.email, invitations: pending.map((i) => i.id) },
      });
      await this.seats.closeForDeactivation(tx, account, requestIds, actor);
      if (isPaidRole(user.role)) this.seats.freed(tx, account, actor, user.email);
      return { user, already: false };
    });
  }

  /**
   * Users whose invitation is pending, not yet sent or expired, newest first, `limit` of them from just
   * after the user `after` (a page's last one), with how many there are in all and whether more follow.
   * An admin sees all, anyone else those they added: checked here on every page, so a page's position,
   * which comes back from Slack as anyone could write it, never widens what is shown. The order is by when
   * each person was added, which a Resend or Cancel in between does not change, so paging on skips nobody.
   * `null` when `after` is no longer a user of the account (erased since the last page).
   */
  async pending(em: EntityManager, account: IAccount, actor: Actor, limit = 50, after?: string) {
    const mine = actor.isAdmin ? sql`` : sql` and u.added_by = ${actor.slackUserId}`;
    const where = sql`u.account_id = ${account.id} and u.status in ('invited', 'not_invited', 'expired')${mine}`;
    let from = sql``;
    if (after) {
      const [cursor] = isUuid(after)
        ? await query<{ id: string }>(
            em,
            sql`select id from app_user where id = ${after} and account_id = ${account.id}`,
          )
        : [];
      if (!cursor) return null;
      // Compared in the database, at its microseconds: a JavaScript date would round them to milliseconds.
      from = sql` and (u.created_at, u.id) < (select c.created_at, c.id from app_user c where c.id = ${after})`;
    }
    const page = await query<{ id: string }>(
      em,
      sql`select u.id from app_user u where ${where}${from}
            order by u.created_at desc, u.id desc limit ${limit + 1}`,
    );
    const [{ total }] = (await query<{ total: number }>(
      em,
      sql`select count(*)::int as total from app_user u where ${where}`,
    )) as [{ total: number }];
    const ids = page.slice(0, limit).map((r) => r.id);
    const users = new Map((await em.find(User, { id: { $in: ids }, account })).map((u) => [u.id, u]));
    const invitations = await em.find(Invitation, { user: { $in: ids }, status: 'pending' });
    const byUser = new Map(invitations.map((i) => [i.user.id, i]));
    const rows = ids
      .map((id) => users.get(id))
      .filter((user): user is IUser => !!user)
      .map((user) => ({ user, invitation: byUser.get(user.id) as IInvitation | undefined }));
    return { rows, total, more: page.length > limit };
  }

  private async userActorMayChange(
    tx: EntityManager,
    account: IAccount,
    actor: Actor,
    userId: string,
  ): Promise<IUser> {
    // Locked: a resend must not set back to `invited` someone a cancel or deactivation just took out.
    const user = await lockUser(tx, account, userId);
    if (!user) throw new DomainError('not_found', 'That person is no longer in Roster.');
    if (!actor.isAdmin && user.addedBy !== actor.slackUserId) {
      throw new DomainError('not_allowed', 'Only the person who invited them or an admin can do that.');
    }
    return user;
  }
}

/** How recent an undelivered invitation is for a Resend or Send to be taken as a repeat of the click that queued it. */
const RESEND_REPEAT_SECONDS = 10;

function isUuid(value: string): boolean {
  return /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(value);
}

export async function accountName(em: EntityManager, account: IAccount): Promise<string> {
  const fresh = await em.findOne(Account, account.id);
  return fresh?.name ?? 'your company';
}
