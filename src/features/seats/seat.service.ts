import type { EntityManager } from '@mikro-orm/postgresql';
import { UniqueConstraintViolationException } from '@mikro-orm/postgresql';
import { retryDeadlocks } from '../../db/deadlock.ts';
import { json, query, sql } from '../../db/sql.ts';
import { DomainError } from '../../shared/errors.ts';
import type { JobQueue } from '../../shared/jobs.ts';
import { Account, type IAccount, type IPermissionSet } from '../accounts/account.entity.ts';
import { audit, auditRefusal } from '../audit/audit.service.ts';
import type { Surface } from '../audit/audit-event.entity.ts';
import type { GuestKind } from '../directory/directory.service.ts';
import {
  type IUser,
  isPaidRole,
  PAID_ROLES,
  type Role,
  SEAT_HOLDING_STATUSES,
} from '../people/user.entity.ts';
import { type ISeatRequest, SeatRequest, type SeatRequestKind } from './seat-request.entity.ts';

export const REQUEST_TTL_DAYS = 14;
/** A Slack user id (an email or `roster` in `requestedBy` is not one, and is never asked of Slack). */
const SLACK_USER_ID = /^[UW][A-Z0-9]{2,}$/;
/** A reject reason's limit, the same in the form and here. */
export const MAX_REASON = 500;

/** The highest seat limit Roster takes, by /seats, the settings or an approval that adds a seat. */
export const MAX_SEAT_LIMIT = 100_000;

export const SEAT_JOBS = {
  postRequest: 'seats.post-request',
  refreshRequest: 'seats.refresh-request',
  requestDecided: 'seats.request-decided',
  expireRequests: 'seats.expire-requests',
  recount: 'seats.recount',
} as const;

export type SeatUsage = { used: number; limit: number; free: number };

export type Actor = {
  slackUserId: string;
  isAdmin: boolean;
  surface: Surface;
  /** A guest of the workspace in Slack, when known to be one: the admins asked are told. */
  guest?: GuestKind | null;
};

/** What an approved request does: the flow that asked continues here, inside the approving transaction. */
export type SeatFlow = {
  approve(tx: EntityManager, request: ISeatRequest, account: IAccount): Promise<string>;
  /**
   * Why the request can no longer be approved at all, asked before a seat is taken; null when it can. A
   * refused request is closed (rejected, saying why), so nobody is left with a request nobody may approve.
   */
  refuse?(tx: EntityManager, request: ISeatRequest, account: IAccount): Promise<string | null>;
  /**
   * Tells whoever the request is for about its decision or expiry, in place of the default DM to
   * `requestedBy` (a join through a link tells the person joining, who may not be in Slack at all).
   */
  tell?(request: ISeatRequest): Promise<void>;
};

export type RequestInput = {
  kind: SeatRequestKind;
  email: string;
  name?: string | null;
  role: Role;
  permissionSet?: IPermissionSet | null;
  user?: IUser | null;
  requestedBy: string;
  payload?: Record<string, unknown>;
};

export type Decision = 'approve' | 'approve_add_seat' | 'reject';

export type DecisionResult =
  | { outcome: 'approved'; request: ISeatRequest; usage: SeatUsage; detail: string; seatAdded: boolean }
  | { outcome: 'rejected'; request: ISeatRequest }
  | { outcome: 'no_seat'; request: ISeatRequest; usage: SeatUsage }
  | { outcome: 'outsider'; request: ISeatRequest; outsiders: string[] }
  /** The flow refused it (see {@link SeatFlow.refuse}): closed, with `reason`. */
  | { outcome: 'refused'; request: ISeatRequest; reason: string }
  | { outcome: 'already_decided'; request: ISeatRequest };

/**
 * Of the Slack user ids given, those known to be of another organisation (met through Slack Connect).
 * May ask Slack, so it is never called inside a transaction.
 */
export type OutsiderCheck = (
  em: EntityManager,
  account: IAccount,
  slackUserIds: string[],
) => Promise<string[]>;

/** Seat accounting: the one place that decides whether a paid seat may be taken. */
export class SeatService {
  private readonly jobs: JobQueue;
  private readonly flows = new Map<SeatRequestKind, SeatFlow>();
  private outsiders?: OutsiderCheck;
  private readonly now: () => Date;

  constructor(jobs: JobQueue, now: () => Date = () => new Date()) {
    this.jobs = jobs;
    this.now = now;
  }

  /** Features register what approval of their kind of request does. */
  register(kind: SeatRequestKind, flow: SeatFlow): void {
    this.flows.set(kind, flow);
  }

  /**
   * How approvals tell people of another organisation (Slack Connect) apart; registered in the composition
   * root, since this service knows nothing of Slack.
   */
  checkOutsiders(check: OutsiderCheck): void {
    this.outsiders = check;
  }

  /**
   * The Slack users a request is by or for who are known to be of another organisation: a request filed
   * before Roster refused them (an old version) must not give them a seat when approved now. Read without
   * a lock and before the approving transaction, since it may ask Slack; who a request names never changes.
   */
  private async outsidersOf(em: EntityManager, account: IAccount, requestId: string): Promise<string[]> {
    if (!this.outsiders) return [];
    const request = await em.fork().findOne(SeatRequest, { id: requestId, account }, { populate: ['user'] });
    if (request?.status !== 'pending') return [];
    const forSlackId = request.payload.slackUserId;
    const ids = new Set(
      [
        request.requestedBy,
        typeof forSlackId === 'string' ? forSlackId : null,
        request.user?.getEntity().slackUserId ?? null,
      ].filter((id): id is string => typeof id === 'string' && SLACK_USER_ID.test(id)),
    );
    return ids.size ? this.outsiders(em, account, [...ids]) : [];
  }

  /** The flow registered for a kind of request, if any. */
  flow(kind: SeatRequestKind): SeatFlow | undefined {
    return this.flows.get(kind);
  }

  /**
   * The account's paid seats as this transaction sees them: the committed count the database keeps
   * (`seat_usage`) plus the changes this transaction has made and not yet committed (`seat_change`,
   * which no other transaction sees). Reading it costs the same for ten seat holders as for 100,000.
   */
  async usage(em: EntityManager, account: IAccount): Promise<SeatUsage> {
    const [row] = await query<{ used: number; limit: number }>(
      em,
      sql`select a.seat_limit as limit,
         (coalesce((select s.used from seat_usage s where s.account_id = a.id), 0)
           + coalesce((select sum(c.delta) from seat_change c where c.account_id = a.id), 0))::int as used
       from account a where a.id = ${account.id}`,
    );
    if (!row) throw new Error(`account ${account.id} not found`);
    return { used: row.used, limit: row.limit, free: Math.max(0, row.limit - row.used) };
  }

  /**
   * Counts every account's seat holders again and puts right a kept count that differs, returning what
   * was put right. The triggers keep the count exact whatever Roster writes; only writes made around
   * them (triggers disabled for a data-only restore, say) can leave it wrong. Each account is counted
   * holding its row lock and its count's row lock, so no seat is taken or freed during its count.
   */
  async recount(em: EntityManager): Promise<{ accountId: string; kept: number; counted: number }[]> {
    const accounts = await query<{ id: string }>(em, sql`select id from account order by id`);
    const fixed: { accountId: string; kept: number; counted: number }[] = [];
    for (const { id } of accounts) {
      await em.fork().transactional(async (tx) => {
        await query(tx, sql`select id from account where id = ${id} for no key update`);
        await query(
          tx,
          sql`insert into seat_usage (account_id, used) values (${id}, 0) on conflict (account_id) do nothing`,
        );
        const [row] = await query<{ kept: number; counted: number }>(
          tx,
          sql`select s.used as kept, (select count(*)::int from app_user u where u.account_id = s.account_id
                and u.role = any(${PAID_ROLES}) and u.status = any(${SEAT_HOLDING_STATUSES})) as counted
              from seat_usage s where s.account_id = ${id} for update`,
        );
        if (!row || row.kept === row.counted) return;
        await query(tx, sql`update seat_usage set used = ${row.counted} where account_id = ${id}`);
        fixed.push({ accountId: id, ...row });
      });
    }
    return fixed;
  }

  /**
   * Locks the account's seats for the rest of the transaction and returns their usage. Every paid
   * addition takes this lock first, so two of them never both see the last free seat; and before any
   * person or contact row it locks, so two transactions never hold them in opposite orders (a deadlock).
   */
  async lock(tx: EntityManager, account: IAccount): Promise<SeatUsage> {
    if (!tx.isInTransaction()) throw new Error('seats can only be locked inside a transaction');
    await tx.flush();
    await query(tx, sql`select id from account where id = ${account.id} for no key update`);
    return this.usage(tx, account);
  }

  /** Refuses an admin's paid addition for `subject` when no seat is free in `usage`. */
  refuseWhenFull(usage: SeatUsage, subject: string): void {
    if (usage.free > 0) return;
    throw new DomainError(
      'no_seat',
      `No paid seat is free (${usage.used} of ${usage.limit} used), so ${subject} was not added.`,
    );
  }

  /**
   * Takes a paid seat for an admin's addition, inside `tx`, before the user row that holds it is written.
   * With no seat free, `addSeat` raises the limit by one; without it the admin is told there is none.
   */
  async take(
    tx: EntityManager,
    account: IAccount,
    opts: { actor: Actor; addSeat?: boolean; subject: string },
  ): Promise<{ usage: SeatUsage; seatAdded: boolean }> {
    const usage = await this.lock(tx, account);
    let seatAdded = false;
    if (usage.free === 0) {
      if (!opts.addSeat) this.refuseWhenFull(usage, opts.subject);
      if (usage.limit >= MAX_SEAT_LIMIT) {
        throw new DomainError(
          'no_seat',
          `No paid seat is free (${usage.used} of ${usage.limit} used), and the seat limit cannot go above ${MAX_SEAT_LIMIT}, so ${opts.subject} was not added. Free a seat first.`,
        );
      }
      await this.changeLimit(
        tx,
        account,
        usage.limit,
        usage.limit + 1,
        opts.actor,
        `added for ${opts.subject}`,
      );
      usage.limit += 1;
      seatAdded = true;
    }
    usage.used += 1;
    usage.free = usage.limit - usage.used;
    audit(tx, {
      account,
      actor: opts.actor.slackUserId,
      action: 'seat.taken',
      subjectType: 'seat',
      surface: opts.actor.surface,
      data: { for: opts.subject, used: usage.used, limit: usage.limit, seatAdded },
    });
    return { usage, seatAdded };
  }

  /**
   * Adds someone through the seat rules, inside `tx`: a free role goes straight through; an admin takes
   * a seat (or, with `addSeat`, adds one); anyone else files a seat request that waits for an admin.
   * `onNoSeat: 'request'` turns "no seat free" into a request too (a join through an admin's link).
   */
  async admit<T>(
    tx: EntityManager,
    account: IAccount,
    actor: Actor,
    input: RequestInput & { addSeat?: boolean; onNoSeat?: 'error' | 'request' },
    create: () => Promise<T>,
  ): Promise<
    { status: 'added'; value: T; seatAdded: boolean } | { status: 'requested'; request: ISeatRequest }
  > {
    if (!isPaidRole(input.role)) return { status: 'added', value: await create(), seatAdded: false };
    if (actor.guest) input = { ...input, payload: { ...input.payload, requesterGuest: actor.guest } };
    if (actor.isAdmin) {
      if (input.onNoSeat === 'request' && !input.addSeat) {
        const usage = await this.lock(tx, account);
        if (usage.free === 0)
          return { status: 'requested', request: await this.request(tx, account, input, actor.surface) };
      }
      const taken = await this.take(tx, account, {
        actor,
        addSeat: input.addSeat,
        subject: input.email.trim(),
      });
      return { status: 'added', value: await create(), seatAdded: taken.seatAdded };
    }
    return { status: 'requested', request: await this.request(tx, account, input, actor.surface) };
  }

  /** Records that a seat was given back (deactivation, a paid user made a client). */
  freed(tx: EntityManager, account: IAccount, actor: Actor, subject: string): void {
    audit(tx, {
      account,
      actor: actor.slackUserId,
      action: 'seat.freed',
      subjectType: 'seat',
      surface: actor.surface,
      data: { for: subject },
    });
  }

  /**
   * Locks the pending seat requests about an existing person (to unlock, reactivate or make them paid),
   * for a deactivation about to close them. Taken before the person's row, the order an approval takes
   * them in (the request, then the person), so the two never deadlock.
   */
  async lockRequestsAbout(tx: EntityManager, account: IAccount, userId: string): Promise<string[]> {
    if (!tx.isInTransaction()) throw new Error('seat requests can only be locked inside a transaction');
    const rows = await query<{ id: string }>(
      tx,
      sql`select id from seat_request where account_id = ${account.id} and user_id = ${userId}
          and status = 'pending' order by id for update`,
    );
    return rows.map((r) => r.id);
  }

  /**
   * The pending requests about the person `userId` (locked with lockRequestsAbout), whose login email an
   * admin is changing to `email`: they take the new address, so the old one is free for a request of its
   * own, and their admins' copies are redrawn with it. Refused, changing nothing, while another request
   * waits for the new address: an admin decides that one first.
   */
  async readdress(tx: EntityManager, account: IAccount, userId: string, email: string): Promise<void> {
    const problem = await this.readdressProblem(tx, account, userId, email);
    if (problem) throw problem;
    const moved = await query<{ id: string }>(
      tx,
      // A person without a name was named by their address when the request was filed: it moves too.
      sql`update seat_request set email = ${email}, updated_at = now(),
            name = case when lower(btrim(name)) = lower(btrim(email)) then ${email} else name end
          where account_id = ${account.id} and user_id = ${userId} and status = 'pending'
          returning id`,
    );
    for (const { id } of moved) {
      await this.jobs.send(SEAT_JOBS.refreshRequest, { requestId: id }, { em: tx });
    }
  }

  /**
   * Why the pending requests about the person `userId` cannot take the address `email` (see readdress),
   * or null (as when there are none); reads only, so a form can say it before it closes.
   */
  async readdressProblem(
    em: EntityManager,
    account: IAccount,
    userId: string,
    email: string,
  ): Promise<DomainError | null> {
    const [clash] = await query<{ id: string }>(
      em,
      sql`select other.id from seat_request other
          where other.account_id = ${account.id} and other.status = 'pending'
            and lower(btrim(other.email)) = lower(btrim(${email}))
            and other.user_id is distinct from ${userId}::uuid
            and exists (select 1 from seat_request mine where mine.account_id = ${account.id}
              and mine.user_id = ${userId}::uuid and mine.status = 'pending')
          limit 1`,
    );
    return clash
      ? new DomainError(
          'conflict',
          `A seat request for ${email} is already waiting for an admin. Approve or reject it first, then change the email.`,
          { field: 'email' },
        )
      : null;
  }

  /**
   * Closes the pending requests `ids` (locked with lockRequestsAbout) because their person was deactivated:
   * no admin is left with a request to approve for someone who is gone. Each ends expired, saying why; the
   * admins' copies are redrawn and the requester told, as for any decision. Returns how many were closed.
   */
  async closeForDeactivation(
    tx: EntityManager,
    account: IAccount,
    ids: string[],
    actor: Actor,
  ): Promise<number> {
    return this.closeAll(tx, account, ids, actor, {
      status: 'expired',
      payload: { closedBecause: 'deactivated' },
      action: 'seat_request.expired',
      data: { reason: 'person deactivated' },
    });
  }

  /**
   * Closes the pending requests `ids` (locked with lockRequestsAbout) whose change an admin has just made
   * themselves, from the person card: approved by that admin, saying how, so no admin is left with buttons
   * for something done and the requester hears of it. The seat was taken with the admin's change.
   */
  async closeAsDone(
    tx: EntityManager,
    account: IAccount,
    ids: string[],
    actor: Actor,
    outcome: string,
  ): Promise<number> {
    return this.closeAll(tx, account, ids, actor, {
      status: 'approved',
      payload: { outcome, closedBecause: 'done' },
      action: 'seat_request.approved',
      data: { seatAdded: false, madeDirectly: true },
    });
  }

  /**
   * Closes those of the requests `ids` still pending as `status`, decided by `actor`: each audited as
   * `action`, its admins' copies redrawn and its requester told (requestDecided). Returns how many.
   */
  private async closeAll(
    tx: EntityManager,
    account: IAccount,
    ids: string[],
    actor: Actor,
    close: { status: 'expired' | 'approved'; payload: object; action: string; data: object },
  ): Promise<number> {
    if (!ids.length) return 0;
    const rows = await query<{ id: string; email: string }>(
      tx,
      sql`update seat_request set status = ${close.status}, decided_by = ${actor.slackUserId}, decided_at = ${this.now()},
            payload = payload || ${json(close.payload)}::jsonb, updated_at = now()
          where id = any(${ids}::uuid[]) and account_id = ${account.id} and status = 'pending'
          returning id, email`,
    );
    for (const row of rows) {
      audit(tx, {
        account,
        actor: actor.slackUserId,
        action: close.action,
        subjectType: 'seat_request',
        subjectId: row.id,
        surface: actor.surface,
        data: { email: row.email, ...close.data },
      });
      await this.jobs.send(SEAT_JOBS.requestDecided, { requestId: row.id }, { em: tx });
    }
    return rows.length;
  }

  /** A requester's paid-seat addition: a pending request, posted to the admins by a background job. */
  async request(
    tx: EntityManager,
    account: IAccount,
    input: RequestInput,
    surface: Surface,
  ): Promise<ISeatRequest> {
    const email = input.email.trim();
    const pending = await tx.findOne(SeatRequest, {
      account,
      status: 'pending',
      email: { $ilike: email.replace(/([%_\\])/g, '\\$1') },
    });
    if (pending) {
      throw new DomainError('conflict', `A seat request for ${email} is already waiting for an admin.`);
    }
    const request = tx.create(SeatRequest, {
      account,
      kind: input.kind,
      status: 'pending',
      email,
      name: input.name ?? null,
      role: input.role,
      permissionSet: input.permissionSet ?? null,
      user: input.user ?? null,
      requestedBy: input.requestedBy,
      payload: input.payload ?? {},
      expiresAt: new Date(this.now().getTime() + REQUEST_TTL_DAYS * 86_400_000),
      messages: [],
    });
    audit(tx, {
      account,
      actor: input.requestedBy,
      action: 'seat_request.created',
      subjectType: 'seat_request',
      subjectId: request.id,
      surface,
      data: { kind: input.kind, email, role: input.role },
    });
    try {
      await tx.flush();
    } catch (err) {
      if (err instanceof UniqueConstraintViolationException) {
        throw new DomainError('conflict', `A seat request for ${email} is already waiting for an admin.`);
      }
      throw err;
    }
    await this.jobs.send(SEAT_JOBS.postRequest, { requestId: request.id }, { em: tx });
    return request;
  }

  /**
   * An admin's decision on a request. Decides once: a double click, a retry or a second admin gets
   * `already_decided`. Approval continues the flow that asked, in the same transaction as the seat.
   */
  async decide(
    em: EntityManager,
    account: IAccount,
    input: { requestId: string; actor: Actor; decision: Decision; reason?: string | null },
  ): Promise<DecisionResult> {
    if (!input.actor.isAdmin) {
      await auditRefusal(em, {
        account,
        actor: input.actor.slackUserId,
        action: 'seat_request.decision_refused',
        subjectType: 'seat_request',
        subjectId: /^[0-9a-f-]{36}$/i.test(input.requestId) ? input.requestId : null,
        surface: input.actor.surface,
        data: { decision: input.decision, reason: 'not an admin' },
      });
      throw new DomainError('not_admin', 'Only admins can approve seat requests.');
    }
    if (input.reason && input.reason.trim().length > MAX_REASON) {
      throw new DomainError(
        'invalid_input',
        `Keep the reason under ${MAX_REASON} characters (it has ${input.reason.trim().length}).`,
        { field: 'reason' },
      );
    }
    const outsiders =
      input.decision === 'reject' || !/^[0-9a-f-]{36}$/i.test(input.requestId)
        ? []
        : await this.outsidersOf(em, account, input.requestId);
    // An approval takes the account's seats, then a contact with the address (creating the user); an import
    // batch takes them the other way round, and the one Postgres stops as a deadlock runs again. Someone
    // added meanwhile at the address without the seat lock (a free role, a join) makes the user's insert
    // meet theirs: run again, the flow's own check finds them and closes the request, saying so.
    return retryDeadlocks(
      () => this.decideOnce(em, account, input, outsiders),
      3,
      (err) => err instanceof UniqueConstraintViolationException,
    );
  }

  private decideOnce(
    em: EntityManager,
    account: IAccount,
    input: { requestId: string; actor: Actor; decision: Decision; reason?: string | null },
    outsiders: string[],
  ): Promise<DecisionResult> {
    return em.transactional(async (tx) => {
      const [locked] = await query<{ id: string }>(
        tx,
        sql`select id from seat_request where id = ${input.requestId} and account_id = ${account.id} for update`,
      );
      if (!locked) throw new DomainError('not_found', 'That seat request no longer exists.');
      const request = await tx.findOneOrFail(SeatRequest, input.requestId, { refresh: true });
      if (request.status !== 'pending') return { outcome: 'already_decided', request };
      if (request.expiresAt <= this.now()) {
        // Expired here rather than by the expiry job: audited the same way, so the history (and the
        // seat_request.decided webhook) says so.
        await this.close(
          tx,
          account,
          request,
          { status: 'expired' },
          {
            actor: 'roster',
            surface: 'job',
            action: 'seat_request.expired',
            data: { email: request.email },
          },
        );
        return { outcome: 'already_decided', request };
      }

      const decided = { decidedBy: input.actor.slackUserId, decidedAt: this.now() };
      const by = { actor: input.actor.slackUserId, surface: input.actor.surface };
      if (input.decision === 'reject') {
        const reason = input.reason?.trim() || null;
        await this.close(
          tx,
          account,
          request,
          { status: 'rejected', ...decided, reason },
          {
            ...by,
            action: 'seat_request.rejected',
            data: { email: request.email, reason },
          },
        );
        return { outcome: 'rejected', request };
      }

      if (outsiders.length) {
        // Roster admits only members of this workspace: the request is closed, no seat taken. Nobody of
        // the other organisation is told (no DM, no mail of this account's goes to them); a requester of
        // this workspace hears that it was closed.
        const requesterOutsider = outsiders.includes(request.requestedBy);
        const payload = {
          ...request.payload,
          closedBecause: 'outsider',
          outsiders,
          ...(requesterOutsider || this.flows.get(request.kind)?.tell ? { requesterNotified: true } : {}),
        };
        await this.close(
          tx,
          account,
          request,
          { status: 'expired', ...decided, payload },
          {
            ...by,
            action: 'seat_request.expired',
            data: {
              email: request.email,
              reason: 'another organisation (Slack Connect)',
              outsiders,
              decision: input.decision,
            },
          },
        );
        return { outcome: 'outsider', request, outsiders };
      }

      const flow = this.flows.get(request.kind);
      if (!flow) throw new Error(`no flow registered for seat requests of kind ${request.kind}`);
      const refuse = async (reason: string): Promise<DecisionResult> => {
        const payload = { ...request.payload, closedBecause: 'refused' };
        await this.close(
          tx,
          account,
          request,
          { status: 'rejected', ...decided, reason, payload },
          {
            ...by,
            action: 'seat_request.rejected',
            data: { email: request.email, reason, refusedOnApproval: true },
          },
        );
        return { outcome: 'refused', request, reason };
      };
      const refused = await flow.refuse?.(tx, request, account);
      if (refused) return refuse(refused);
      const usage = await this.lock(tx, account);
      // Asked again now that the seats are held: an admin who added the person directly meanwhile (which
      // takes the seats first too) has committed, and approving must not take, or add, a seat for nothing.
      const refusedSince = await flow.refuse?.(tx, request, account);
      if (refusedSince) return refuse(refusedSince);
      if (usage.free === 0 && input.decision !== 'approve_add_seat') {
        return { outcome: 'no_seat', request, usage };
      }
      const taken = await this.take(tx, account, {
        actor: input.actor,
        addSeat: input.decision === 'approve_add_seat',
        subject: request.email,
      });
      const detail = await flow.approve(tx, request, account);
      const payload = { ...request.payload, outcome: detail };
      await this.close(
        tx,
        account,
        request,
        { status: 'approved', ...decided, payload },
        {
          ...by,
          action: 'seat_request.approved',
          data: { email: request.email, seatAdded: taken.seatAdded },
        },
      );
      return { outcome: 'approved', request, usage: taken.usage, detail, seatAdded: taken.seatAdded };
    });
  }

  /**
   * A request decided in `tx`: its new state, the audit event that records it, and the job that updates
   * its message and tells the requester, all committed with the decision.
   */
  private async close(
    tx: EntityManager,
    account: IAccount,
    request: ISeatRequest,
    changes: Partial<Pick<ISeatRequest, 'status' | 'decidedBy' | 'decidedAt' | 'reason' | 'payload'>>,
    event: { actor: string; surface: Surface; action: string; data: Record<string, unknown> },
  ): Promise<void> {
    Object.assign(request, changes);
    audit(tx, {
      account,
      actor: event.actor,
      action: event.action,
      subjectType: 'seat_request',
      subjectId: request.id,
      surface: event.surface,
      data: event.data,
    });
    await tx.flush();
    await this.jobs.send(SEAT_JOBS.requestDecided, { requestId: request.id }, { em: tx });
  }

  /** Sets the number of paid seats; refuses a limit below the seats in use. */
  async setLimit(em: EntityManager, account: IAccount, limit: number, actor: Actor): Promise<SeatUsage> {
    if (!actor.isAdmin) {
      await auditRefusal(em, {
        account,
        actor: actor.slackUserId,
        action: 'seat_limit.change_refused',
        subjectType: 'account',
        subjectId: account.id,
        surface: actor.surface,
        data: { to: limit, reason: 'not an admin' },
      });
      throw new DomainError('not_admin', 'Only admins can change the seat limit.');
    }
    if (!Number.isInteger(limit) || limit < 0 || limit > MAX_SEAT_LIMIT) {
      throw new DomainError(
        'invalid_input',
        `The seat limit must be a whole number from 0 to ${MAX_SEAT_LIMIT}.`,
      );
    }
    return em.transactional(async (tx) => {
      const usage = await this.lock(tx, account);
      if (limit < usage.used) {
        throw new DomainError(
          'invalid_input',
          `${usage.used} paid seats are in use, so the limit cannot be ${limit}. Deactivate people or make them clients first.`,
        );
      }
      await this.changeLimit(tx, account, usage.limit, limit, actor, 'set');
      return { used: usage.used, limit, free: limit - usage.used };
    });
  }

  /** Marks pending requests past their expiry as expired and queues the requesters' notices. */
  async expire(em: EntityManager): Promise<number> {
    return em.transactional(async (tx) => {
      const rows = await query<{ id: string; account_id: string; email: string }>(
        tx,
        sql`update seat_request set status = 'expired', updated_at = now()
           where status = 'pending' and expires_at <= ${this.now()} returning id, account_id, email`,
      );
      for (const row of rows) {
        audit(tx, {
          account: tx.getReference(Account, row.account_id),
          actor: 'roster',
          action: 'seat_request.expired',
          subjectType: 'seat_request',
          subjectId: row.id,
          surface: 'job',
          data: { email: row.email },
        });
        await this.jobs.send(SEAT_JOBS.requestDecided, { requestId: row.id }, { em: tx });
      }
      await tx.flush();
      return rows.length;
    });
  }

  private async changeLimit(
    tx: EntityManager,
    account: IAccount,
    from: number,
    to: number,
    actor: Actor,
    why: string,
  ) {
    await query(tx, sql`update account set seat_limit = ${to}, updated_at = now() where id = ${account.id}`);
    audit(tx, {
      account,
      actor: actor.slackUserId,
      action: 'seat_limit.changed',
      subjectType: 'account',
      subjectId: account.id,
      surface: actor.surface,
      data: { from, to, why },
    });
  }
}
