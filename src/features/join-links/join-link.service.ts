import { createHmac, randomBytes } from 'node:crypto';
import { LockMode } from '@mikro-orm/core';
import type { EntityManager } from '@mikro-orm/postgresql';
import { UniqueConstraintViolationException } from '@mikro-orm/postgresql';
import { z } from 'zod';
import { retryDeadlocks } from '../../db/deadlock.ts';
import { query, type Sql, sql } from '../../db/sql.ts';
import { DomainError } from '../../shared/errors.ts';
import { hashToken, newToken } from '../../shared/ids.ts';
import type { JobQueue } from '../../shared/jobs.ts';
import { Account, type IAccount } from '../accounts/account.entity.ts';
import { allowedDomains, atDomains, outsideDomains } from '../accounts/allowed-domains.ts';
import { audit } from '../audit/audit.service.ts';
import type { Surface } from '../audit/audit-event.entity.ts';
import type { GuestKind, Member } from '../directory/directory.service.ts';
import { createUser, findUserByEmail, permissionSetByName } from '../people/people.service.ts';
import { type IUser, isPaidRole, type Role, User } from '../people/user.entity.ts';
import type { Actor, SeatFlow, SeatService } from '../seats/seat.service.ts';
import type { ISeatRequest } from '../seats/seat-request.entity.ts';
import { type IJoinLink, JoinConfirmation, JoinLink } from './join-link.entity.ts';
import {
  domainAllowed,
  domainsText,
  isDomain,
  joinDomains,
  linkState,
  MAX_DOMAINS,
  MAX_DOMAINS_TEXT,
  onlyFor,
} from './join-link.terms.ts';

export const JOIN_JOBS = {
  sendConfirmation: 'join.send-confirmation',
  tellJoiner: 'join.tell-joiner',
  expireLinks: 'join.expire-links',
  refreshMessage: 'join.refresh-message',
  tellUnposted: 'join.tell-unposted',
} as const;
/**
 * A link whose message was still not recorded this long after it was written is closed (see
 * {@link JoinLinkService.closeUnposted}). Posting it takes Slack's answer alone, which the listeners' client
 * gives up on within about half a minute (three tries of 10 s at most): a link this old is not being posted
 * by any instance, its process stopped before it could post or record the message.
 */
/** The most links `/joinlink list` shows: one block each, with its heading and notes, within a message's 50. */
export const LIST_SHOWN = 25;

export const UNPOSTED_MINUTES = 10;
export const CONFIRMATION_HOURS = 24;
/**
 * At most this many confirmation emails go to one address per account in an hour, whatever links, forms
 * and network addresses ask: the public join form must not be a way to flood someone's inbox.
 */
export const CONFIRMATIONS_PER_ADDRESS_HOUR = 3;

/**
 * What a join form's submission did: an email queued; none, because one to that address is still on its
 * way or the address had its emails for the hour; or none, because `mayQueue` said no.
 */
export type ConfirmationOutcome = 'queued' | 'pending' | 'address_limited' | 'refused';
const TOKEN = /^[A-Za-z0-9_-]{40,64}$/;

export const createInput = z.object({
  role: z.enum(['employee', 'contractor', 'client']),
  expiryDays: z.number().int().min(1).max(365),
  maxUses: z.number().int().min(1).max(100_000).nullable(),
  allowedDomains: z
    .array(z.string().max(253).refine(isDomain, 'Not a domain.'))
    .max(MAX_DOMAINS)
    .refine((domains) => domainsText(domains).length <= MAX_DOMAINS_TEXT),
  channelId: z.string().min(1),
});
export type CreateInput = z.infer<typeof createInput>;

export type Person = {
  email: string;
  name?: string | null;
  slackUserId?: string | null;
  /** A guest of the workspace in Slack (not a full member), when known to be one. */
  guest?: GuestKind | null;
};

export type JoinResult =
  | { status: 'joined'; user: IUser }
  /** A Roster record already exists for the address; only an `active` one is "in" (see {@link standing}). */
  | { status: 'exists'; user: IUser }
  /**
   * A seat request was filed: no paid seat was free, the admin who posted the link is no longer an
   * admin, so the link's joins need an admin's approval, or the person is a Slack guest, whom a link never
   * admits to a paid seat on its own.
   */
  | { status: 'requested'; reason: RequestReason; guest?: GuestKind }
  | { status: 'domain_not_allowed'; allowed: string[] }
  | { status: 'link_full' }
  | { status: 'link_invalid' };

/** Why a join waits for an admin (see {@link requestedText}). */
export type RequestReason = 'no_seat' | 'needs_approval' | 'waiting' | 'guest';

/**
 * What Slack said, before a join's transaction opened, about people the directory mirror could not answer
 * for: by Slack user id, null for one Slack does not know.
 */
export type Asked = ReadonlyMap<string, Member | null>;
const NOTHING_ASKED: Asked = new Map();

type Options = {
  /**
   * Whether a Slack user is an admin of the account now, from the database alone (the directory mirror,
   * Roster's users) and, for someone the mirror does not hold, what `asked` says Slack told: it runs inside
   * the joining transaction, which must never wait on Slack. A link admits paid members on its poster's
   * authority, so every join asks this of the link's poster.
   */
  isAdmin: (em: EntityManager, account: IAccount, slackUserId: string, asked: Asked) => Promise<boolean>;
  /**
   * Asks Slack what a join's checks will need and the mirror does not know yet, before the join's
   * transaction opens: the link's poster, and with `email` (a join on the web) the member with that address.
   * Slack may be slow or tell Roster to wait (429), and a transaction open meanwhile would hold a pooled
   * connection for the whole wait: a few joins at once could take every connection Roster has.
   */
  prefetch?: (
    em: EntityManager,
    account: IAccount,
    need: { poster: string; email?: string },
  ) => Promise<Asked>;
  now?: () => Date;
  /**
   * The secret confirmation tokens are derived from, so every attempt to email one confirmation carries
   * the same link; without it, a random one per process (an attempt on another instance makes a new link).
   */
  tokenSecret?: string;
  /** Tells a person who joined through a link what an admin decided on their seat request. */
  tellJoiner?: (request: ISeatRequest) => Promise<void>;
  /**
   * Whether an address belongs to a guest of the workspace in Slack, as far as the directory mirror knows
   * and, for flags it has not learnt, `asked` says: asked for a join on the web, where Slack does not say who
   * is joining. Inside the joining transaction, like {@link Options.isAdmin}.
   */
  guestByEmail?: (
    em: EntityManager,
    account: IAccount,
    email: string,
    asked: Asked,
  ) => Promise<GuestKind | null>;
  /** Whether Slack has deactivated this member, as the directory mirror knows it (the database alone). */
  deletedInSlack?: (em: EntityManager, account: IAccount, slackUserId: string) => Promise<boolean>;
};

/** Join links: created and revoked by admins, used by people to join on their own. */
export class JoinLinkService {
  private readonly seats: SeatService;
  private readonly jobs: JobQueue;
  private readonly now: () => Date;
  private readonly tellJoiner?: (request: ISeatRequest) => Promise<void>;
  private readonly isAdmin: Options['isAdmin'];
  private readonly guestByEmail?: Options['guestByEmail'];
  private readonly prefetch?: Options['prefetch'];
  private readonly deletedInSlack?: Options['deletedInSlack'];
  private readonly tokenKey: Buffer;

  constructor(seats: SeatService, jobs: JobQueue, opts: Options) {
    this.seats = seats;
    this.jobs = jobs;
    this.isAdmin = opts.isAdmin;
    this.guestByEmail = opts.guestByEmail;
    this.prefetch = opts.prefetch;
    this.deletedInSlack = opts.deletedInSlack;
    this.tokenKey = opts.tokenSecret
      ? createHmac('sha256', opts.tokenSecret).update('roster-join-confirmation').digest()
      : randomBytes(32);
    this.now = opts.now ?? (() => new Date());
    this.tellJoiner = opts.tellJoiner;
  }

  /** What approving a join's seat request does; registered in the composition root. */
  seatFlow(): SeatFlow {
    // The use was counted when the request was filed, so approving only creates the user.
    return {
      // The account's domains may have narrowed since the join: an address outside them gets no login.
      refuse: async (tx, request, account) => {
        // Asked before a seat is taken: the address became a person since (an admin invited them, and may
        // have deactivated them), and approving must neither take a seat nor add one to the limit.
        const existing = await findUserByEmail(tx, account, request.email);
        if (existing)
          return `${request.email.trim()} is already a user (${existing.status.replace('_', ' ')}), so there is nothing to approve.`;
        // Or added meanwhile under another address, by their Slack account: the same person.
        const joinerId = request.payload.slackUserId;
        const linked =
          typeof joinerId === 'string' ? await tx.findOne(User, { account, slackUserId: joinerId }) : null;
        if (linked)
          return `${request.email.trim()} is already a user as ${linked.email} (${linked.status.replace('_', ' ')}), so there is nothing to approve.`;
        const linkId = request.payload.joinLinkId;
        const link = typeof linkId === 'string' ? await tx.findOne(JoinLink, { id: linkId, account }) : null;
        const outside = outsideDomains(request.email, await allowedDomains(tx, account));
        if (outside) return outside;
        if (link && !domainAllowed(link, request.email))
          return `${request.email.trim()} is not at the join link's email domains (${atDomains(link.allowedEmailDomains)}).`;
        // Someone Slack deactivated while their join waited has left: approving it would give them a login
        // and a paid seat, active, with nothing left to deactivate them again.
        const joiner = request.payload.slackUserId;
        if (typeof joiner === 'string' && (await this.deletedInSlack?.(tx, account, joiner)))
          return `${request.email.trim()} was deactivated in Slack after asking to join, so there is nothing to approve.`;
        return null;
      },
      approve: async (tx, request, account) => {
        const slackUserId = (request.payload.slackUserId as string | null | undefined) ?? null;
        // Added meanwhile under another address (invited by their Slack account): the same person.
        const existing =
          (await findUserByEmail(tx, account, request.email)) ??
          (slackUserId ? await tx.findOne(User, { account, slackUserId }) : null);
        if (existing) return `${existing.email} was already a user.`;
        await this.createMember(
          tx,
          account,
          request.role,
          {
            email: request.email,
            name: request.name,
            slackUserId,
          },
          request.payload.joinLinkId as string,
          request.requestedBy,
          'slack',
        );
        return `${request.email} is now an active member.`;
      },
      ...(this.tellJoiner ? { tell: this.tellJoiner } : {}),
    };
  }

  /**
   * Why `input` would make no link, as far as the database alone can tell (a link domain outside the
   * account's), or null: read without locks, for the form to show on its field before it is answered.
   */
  async createProblem(em: EntityManager, account: IAccount, input: CreateInput): Promise<DomainError | null> {
    return this.domainsProblem(em, account, createInput.parse(input).allowedDomains);
  }

  private async domainsProblem(
    em: EntityManager,
    account: IAccount,
    domains: readonly string[],
  ): Promise<DomainError | null> {
    // Both the account's domains and the link's apply to a join: a link domain outside the account's
    // would admit nobody, and say otherwise in its message.
    const accountDomains = await allowedDomains(em, account);
    const outside = accountDomains.length ? domains.filter((d) => !accountDomains.includes(d)) : [];
    if (!outside.length) return null;
    return new DomainError(
      'not_allowed',
      `${atDomains(outside)} ${outside.length === 1 ? 'is' : 'are'} not among the account's allowed email domains (${atDomains(accountDomains)}), so nobody could join with ${outside.length === 1 ? 'it' : 'them'}. Leave the field empty to admit the account's domains, or change them with \`/seats settings\`.`,
      { field: 'domains' },
    );
  }

  /**
   * Creates a link and posts its message through `post`. No transaction is open while Slack takes the post:
   * the link is written first, then posted, then its message recorded, each step short. When the message
   * cannot be posted the link is deleted again, so none is kept that nobody can see. The raw token only ever
   * reaches `post`.
   */
  async create(
    em: EntityManager,
    account: IAccount,
    actor: Actor,
    input: CreateInput,
    post: (link: IJoinLink, token: string) => Promise<{ channel: string; ts: string }>,
  ): Promise<IJoinLink> {
    if (!actor.isAdmin) throw new DomainError('not_admin', 'Only admins can post join links.');
    const valid = createInput.parse(input);
    const { token, hash } = newToken();
    const link = await em.transactional(async (tx) => {
      const problem = await this.domainsProblem(tx, account, valid.allowedDomains);
      if (problem) throw problem;
      const created = tx.create(JoinLink, {
        account,
        tokenHash: hash,
        role: valid.role,
        expiresAt: new Date(this.now().getTime() + valid.expiryDays * 86_400_000),
        maxUses: valid.maxUses,
        uses: 0,
        allowedEmailDomains: valid.allowedDomains,
        createdBy: actor.slackUserId,
        channelId: valid.channelId,
      });
      await tx.flush();
      return created;
    });
    let posted: { channel: string; ts: string };
    try {
      posted = await post(link, token);
    } catch (err) {
      // Nobody saw its URL, so nobody can use it: it goes, rather than stay in the list as if it were out.
      await query(em, sql`delete from join_link where id = ${link.id} and message_ts is null`);
      throw err;
    }
    return em.transactional(async (tx) => {
      const [row] = await query<{ uses: number; max_uses: number | null; revoked_at: Date | null }>(
        tx,
        sql`update join_link set channel_id = ${posted.channel}, message_ts = ${posted.ts}, updated_at = now()
             where id = ${link.id} returning uses, max_uses, revoked_at`,
      );
      link.channelId = posted.channel;
      link.messageTs = posted.ts;
      audit(tx, {
        account,
        actor: actor.slackUserId,
        action: 'join_link.created',
        subjectType: 'join_link',
        subjectId: link.id,
        surface: actor.surface,
        data: {
          role: valid.role,
          expiryDays: valid.expiryDays,
          maxUses: valid.maxUses,
          domains: valid.allowedDomains,
          channel: posted.channel,
        },
      });
      // Revoked, or filled by the people quickest to click, while Slack was still answering: the message
      // was not known then, so it is redrawn now.
      if (row && (row.revoked_at || (row.max_uses != null && row.uses >= row.max_uses))) {
        await this.jobs.send(JOIN_JOBS.refreshMessage, { linkId: link.id }, { em: tx });
      }
      await tx.flush();
      return link;
    });
  }

  /** Revokes a link; revoking it again changes nothing. */
  async revoke(
    em: EntityManager,
    account: IAccount,
    actor: Actor,
    linkId: string,
  ): Promise<{ link: IJoinLink; already: boolean }> {
    if (!actor.isAdmin) throw new DomainError('not_admin', 'Only admins can revoke join links.');
    return em.transactional(async (tx) => {
      const link = await tx.findOne(
        JoinLink,
        { id: linkId, account },
        { lockMode: LockMode.PESSIMISTIC_WRITE },
      );
      if (!link) throw new DomainError('not_found', 'That join link no longer exists.');
      if (link.revokedAt) return { link, already: true };
      link.revokedAt = this.now();
      link.revokedBy = actor.slackUserId;
      audit(tx, {
        account,
        actor: actor.slackUserId,
        action: 'join_link.revoked',
        subjectType: 'join_link',
        subjectId: link.id,
        surface: actor.surface,
        data: { uses: link.uses, maxUses: link.maxUses },
      });
      return { link, already: false };
    });
  }

  /**
   * A page of the account's links for `/joinlink list`, at most {@link LIST_SHOWN} (a line each in a message
   * of 50 blocks): those that still admit people first, newest first, as only they can be revoked; then, once
   * every working link was shown, the closed ones, newest first. `after` is the last working link of the
   * page before (looked up in this account; null when it is not there), and `more` says whether working
   * links older than this page's remain, each reachable by Show more. `total` counts every link.
   */
  async list(
    em: EntityManager,
    account: IAccount,
    after?: string,
  ): Promise<{ links: IJoinLink[]; total: number; more: number } | null> {
    const now = this.now();
    const from = after ? await em.findOne(JoinLink, { id: after, account }) : null;
    if (after && !from) return null;
    const older = from
      ? {
          $or: [{ createdAt: { $lt: from.createdAt } }, { createdAt: from.createdAt, id: { $lt: from.id } }],
        }
      : {};
    const working = await em.find(
      JoinLink,
      { account, revokedAt: null, expiresAt: { $gt: now }, ...older },
      { orderBy: { createdAt: 'desc', id: 'desc' }, limit: LIST_SHOWN + 1 },
    );
    const shown = working.slice(0, LIST_SHOWN);
    const last = shown.at(-1);
    const more =
      working.length > LIST_SHOWN && last
        ? await em.count(JoinLink, {
            account,
            revokedAt: null,
            expiresAt: { $gt: now },
            $or: [
              { createdAt: { $lt: last.createdAt } },
              { createdAt: last.createdAt, id: { $lt: last.id } },
            ],
          })
        : 0;
    const closed =
      !more && shown.length < LIST_SHOWN
        ? await em.find(
            JoinLink,
            { account, $or: [{ revokedAt: { $ne: null } }, { expiresAt: { $lte: now } }] },
            { orderBy: { createdAt: 'desc' }, limit: LIST_SHOWN - shown.length },
          )
        : [];
    return { links: [...shown, ...closed], total: await em.count(JoinLink, { account }), more };
  }

  /**
   * Links written more than {@link UNPOSTED_MINUTES} ago whose message was never recorded: the process
   * posting them stopped on the way, so nobody may have their URL and Roster could never redraw their
   * message. Each is closed (revoked by Roster) and its maker told by a job queued with it, once, by one
   * conditional UPDATE: any number of instances may run this at once. A link being posted now is younger.
   */
  async closeUnposted(em: EntityManager): Promise<IJoinLink[]> {
    const before = new Date(this.now().getTime() - UNPOSTED_MINUTES * 60_000);
    return this.closeWhere(
      em,
      sql`update join_link set revoked_at = ${this.now()}, updated_at = now()
           where message_ts is null and revoked_at is null and created_at <= ${before}
           returning id`,
      'join_link.revoked',
      { reason: 'not posted' },
      (tx, link) => this.jobs.send(JOIN_JOBS.tellUnposted, { linkId: link.id }, { em: tx }),
    );
  }

  /**
   * Links past their expiry that were not yet announced: marks them announced and records the expiry,
   * once each, however often and on however many instances this runs. Each message's redraw is a job
   * queued with the mark, so Slack being busy or down then delays it rather than losing it.
   */
  async expireDue(em: EntityManager): Promise<IJoinLink[]> {
    return this.closeWhere(
      em,
      sql`update join_link set expiry_announced_at = now(), updated_at = now()
         where expires_at <= ${this.now()} and expiry_announced_at is null and revoked_at is null
         returning id`,
      'join_link.expired',
      {},
      (tx, link) => this.jobs.send(JOIN_JOBS.refreshMessage, { linkId: link.id }, { em: tx }),
    );
  }

  /**
   * The links one conditional UPDATE (`claim`, returning their ids) took, each audited as `action` by
   * Roster and handed to `then` in the same transaction: taken once, however many instances run it.
   */
  private async closeWhere(
    em: EntityManager,
    claim: Sql,
    action: 'join_link.revoked' | 'join_link.expired',
    data: Record<string, unknown>,
    then?: (tx: EntityManager, link: IJoinLink) => Promise<unknown>,
  ): Promise<IJoinLink[]> {
    return em.transactional(async (tx) => {
      const rows = await query<{ id: string }>(tx, claim);
      if (rows.length === 0) return [];
      const links = await tx.find(
        JoinLink,
        { id: { $in: rows.map((r) => r.id) } },
        { populate: ['account'], refresh: true },
      );
      for (const link of links) {
        audit(tx, {
          account: link.account.getEntity(),
          actor: 'roster',
          action,
          subjectType: 'join_link',
          subjectId: link.id,
          surface: 'job',
          data: { ...data, uses: link.uses, maxUses: link.maxUses },
        });
        await then?.(tx, link);
      }
      await tx.flush();
      return links;
    });
  }

  /** The link behind a token, if it still works; unknown, expired, revoked and full are all `null`. */
  async findUsable(em: EntityManager, token: string): Promise<IJoinLink | null> {
    if (!TOKEN.test(token)) return null;
    const link = await em.findOne(JoinLink, { tokenHash: hashToken(token) }, { populate: ['account'] });
    return link && linkState(link, this.now()) === 'active' ? link : null;
  }

  /**
   * Someone joins through a link: domain checked, an existing user told their status, otherwise one use
   * of the link counted and the user created active, or a seat request filed when no seat is free.
   */
  async join(
    em: EntityManager,
    linkId: string,
    person: Person,
    surface: Surface,
    /** The account the request came from: a link of another account answers as an unknown one. */
    within?: IAccount,
  ): Promise<JoinResult> {
    const asked = await this.askFirst(em, linkId, person.email, person.guest === undefined, within);
    try {
      // The link, the account's seats, then a contact with the address; an import batch takes the last two
      // the other way round, and the one Postgres stops as a deadlock runs again.
      return await retryDeadlocks(() =>
        em.transactional((tx) => this.joinIn(tx, linkId, person, surface, asked, within)),
      );
    } catch (err) {
      return this.raced(em, err, linkId, person.email);
    }
  }

  /**
   * What a join through `linkId` will need that only Slack can say, asked before its transaction opens (see
   * {@link Options.prefetch}); `guest` when the joiner's guest flags must be looked up by their address.
   * Read without locks and only to choose what to ask: the transaction reads everything again. Nothing is
   * asked for a join that will not get that far; should the transaction need what was not asked (the
   * address's user removed meanwhile), it decides as when Slack cannot say: an admin approves the join.
   */
  private async askFirst(
    em: EntityManager,
    linkId: string,
    rawEmail: string,
    guest: boolean,
    within?: IAccount,
  ): Promise<Asked> {
    if (!this.prefetch) return NOTHING_ASKED;
    const email = rawEmail.trim();
    // A fork of its own, so the transaction's identity map never serves this read's copy of the link.
    const read = em.fork();
    const link = await read.findOne(
      JoinLink,
      { id: linkId, ...(within ? { account: within } : {}) },
      { populate: ['account'] },
    );
    if (!link) return NOTHING_ASKED;
    const state = linkState(link, this.now());
    if (state === 'revoked' || state === 'expired' || (await this.outside(read, link, email)))
      return NOTHING_ASKED;
    const account = link.account.getEntity();
    if (await findUserByEmail(read, account, email)) return NOTHING_ASKED;
    return this.prefetch(read, account, { poster: link.createdBy, ...(guest ? { email } : {}) });
  }

  /**
   * Uses are counted by one conditional UPDATE in the joining transaction: it locks the link's row, so
   * concurrent joins queue on it and the last place goes to exactly one of them. The user (or the seat
   * request) is written in the same transaction, so a use is never counted for nothing.
   */
  private async joinIn(
    tx: EntityManager,
    linkId: string,
    person: Person,
    surface: Surface,
    asked: Asked,
    within?: IAccount,
  ): Promise<JoinResult> {
    const email = person.email.trim();
    const link = await tx.findOne(
      JoinLink,
      { id: linkId, ...(within ? { account: within } : {}) },
      { populate: ['account'] },
    );
    if (!link) return { status: 'link_invalid' };
    const state = linkState(link, this.now());
    if (state === 'revoked' || state === 'expired') return { status: 'link_invalid' };
    const account = link.account.getEntity();
    const outside = await this.outside(tx, link, email);
    if (outside) return outside;
    // Someone in Roster under their Slack account is that person, whatever address Slack now gives them.
    const existing =
      (await findUserByEmail(tx, account, email)) ??
      (person.slackUserId ? await tx.findOne(User, { account, slackUserId: person.slackUserId }) : null);
    if (existing) return { status: 'exists', user: existing };
    // Read again here, from the database and what Slack said before the transaction (nothing in it waits on
    // Slack): the poster may have lost their rights, or the mirror learnt a guest, while Slack answered.
    const posterIsAdmin = await this.isAdmin(tx, account, link.createdBy, asked);
    // The Join button says whether the person is a guest; on the web, the address they confirmed may be
    // a Slack guest's, which the link must not make a paid member either.
    const slackGuest =
      person.guest !== undefined
        ? person.guest
        : ((await this.guestByEmail?.(tx, account, email, asked)) ?? null);

    // Someone an admin turned down through this link asks again on the place they already took: the admins
    // decide again, and the link keeps its other places for other people.
    const [turnedDown] = await query(
      tx,
      sql`select 1 from seat_request where account_id = ${account.id} and kind = 'join' and status = 'rejected'
            and payload->>'joinLinkId' = ${link.id}
            and (lower(btrim(email)) = ${email.toLowerCase()}
              ${person.slackUserId ? sql`or payload->>'slackUserId' = ${person.slackUserId}` : sql``})
          limit 1`,
    );
    const [counted] = turnedDown
      ? [{ uses: link.uses, max_uses: link.maxUses ?? null }]
      : await query<{ uses: number; max_uses: number | null }>(
          tx,
          sql`update join_link set uses = uses + 1, updated_at = now()
             where id = ${link.id} and revoked_at is null and expires_at > ${this.now()} and (max_uses is null or uses < max_uses)
             returning uses, max_uses`,
        );
    if (!counted) {
      // The link as it stands now, not as first read: a revoke or the expiry may have come between.
      const [now] = await query<{ full: boolean }>(
        tx,
        sql`select (revoked_at is null and expires_at > ${this.now()} and max_uses is not null
                    and uses >= max_uses) as full
              from join_link where id = ${link.id}`,
      );
      return now?.full ? { status: 'link_full' } : { status: 'link_invalid' };
    }

    // The admin who posted the link approved paid seats for the people joining through it while seats
    // are free, so the join acts with an admin's authority; with no seat free it becomes a seat request.
    // Once the poster is no longer an admin (rights removed, deactivated), that approval lapses: a paid
    // join becomes a seat request an admin must approve, whatever seats are free. A Slack guest sees the
    // link only because an admin let them into that channel, not because anyone chose them for a paid
    // seat: their paid join is a seat request too. A client link admits them as a client.
    const guest = isPaidRole(link.role) && slackGuest ? slackGuest : null;
    // Someone an admin turned down asks the admins again, however many seats are free: the poster's
    // approval of the link does not overrule an admin's decision on this person.
    const actor: Actor = {
      slackUserId: person.slackUserId ?? email,
      isAdmin: posterIsAdmin && !guest && !turnedDown,
      surface,
    };
    const result = await this.seats.admit(
      tx,
      account,
      actor,
      {
        kind: 'join',
        email,
        name: person.name ?? null,
        role: link.role,
        // A Slack joiner is the requester admins see; a web joiner has no Slack id, so the link's admin is.
        requestedBy: person.slackUserId ?? link.createdBy,
        payload: {
          joinLinkId: link.id,
          slackUserId: person.slackUserId ?? null,
          surface,
          ...(posterIsAdmin ? {} : { posterNoLongerAdmin: link.createdBy }),
          ...(turnedDown ? { turnedDownBefore: true } : {}),
          ...(guest ? { slackGuest: guest } : {}),
        },
        onNoSeat: 'request',
      },
      () => this.createMember(tx, account, link.role, person, link.id, actor.slackUserId, surface),
    );
    // A join waiting for an admin holds its place on the link, so approvals never take a link past
    // its maximum.
    audit(tx, {
      account,
      actor: actor.slackUserId,
      action: 'join_link.used',
      subjectType: 'join_link',
      subjectId: link.id,
      surface,
      data: {
        email,
        outcome: result.status === 'added' ? 'joined' : 'seat_requested',
        ...(posterIsAdmin ? {} : { posterNoLongerAdmin: link.createdBy }),
        ...(slackGuest ? { slackGuest } : {}),
        uses: counted.uses,
        maxUses: counted.max_uses,
        ...(result.status === 'added' ? { userId: result.value.id } : { seatRequestId: result.request.id }),
      },
    });
    if (!turnedDown && counted.max_uses != null && counted.uses >= counted.max_uses) {
      // The last place went: the channel message should say the link is full.
      await this.jobs.send(JOIN_JOBS.refreshMessage, { linkId: link.id }, { em: tx });
    }
    await tx.flush();
    if (result.status === 'added') return { status: 'joined', user: result.value };
    if (guest) return { status: 'requested', reason: 'guest', guest };
    return { status: 'requested', reason: posterIsAdmin ? 'no_seat' : 'needs_approval' };
  }

  /**
   * Why `email` may not join through `link`, or null when it may: a join must be at the account's allowed
   * email domains and at the link's own, each when set. The account's are read as committed now.
   */
  private async outside(
    em: EntityManager,
    link: IJoinLink,
    email: string,
  ): Promise<{ status: 'domain_not_allowed'; allowed: string[] } | null> {
    const accountDomains = await allowedDomains(em, link.account);
    if (domainAllowed(link, email) && !outsideDomains(email, accountDomains)) return null;
    return { status: 'domain_not_allowed', allowed: joinDomains(link, accountDomains) ?? [] };
  }

  /** The same person joining twice at once: the second finds the first's user, or its pending request. */
  private async raced(em: EntityManager, err: unknown, linkId: string, email: string): Promise<JoinResult> {
    if (err instanceof DomainError && err.code === 'conflict')
      return { status: 'requested', reason: 'waiting' };
    if (err instanceof UniqueConstraintViolationException) {
      const fresh = em.fork();
      const link = await fresh.findOne(JoinLink, linkId);
      const user = link
        ? await findUserByEmail(fresh, fresh.getReference(Account, link.account.id), email)
        : null;
      if (user) return { status: 'exists', user };
    }
    throw err;
  }

  private async createMember(
    tx: EntityManager,
    account: IAccount,
    role: Role,
    person: Person,
    linkId: string,
    actor: string,
    surface: Surface,
  ) {
    const [first, ...rest] = (person.name ?? '').trim().split(/\s+/);
    const permissionSet = await permissionSetByName(tx, account, role === 'client' ? 'Client' : 'Member');
    const user = await createUser(tx, account, {
      email: person.email.trim(),
      role,
      status: 'active',
      permissionSet,
      addedBy: person.slackUserId ?? null,
      firstName: first || null,
      lastName: rest.join(' ') || null,
      slackUserId: person.slackUserId ?? null,
    });
    audit(tx, {
      account,
      actor,
      action: 'user.added',
      subjectType: 'user',
      subjectId: user.id,
      surface,
      data: { email: user.email, role, status: 'active', joinLinkId: linkId },
    });
    await tx.flush();
    return user;
  }

  /**
   * A web join waits for the email to be confirmed; the confirmation email goes out from a job. The
   * address must fit the link's domains and the account's (the link's message shows the link's; the
   * account's are what anyone joining would be told anyway), checked before anything is written or mailed.
   */
  async requestConfirmation(
    em: EntityManager,
    link: IJoinLink,
    person: { email: string; name: string },
    /**
     * Asked only when an email would be queued (the link's own rate limit): false queues nothing. It is
     * given the open transaction, which its own checks must join: a second connection taken from the pool
     * while this one waits would let a few submissions at once hold every connection, waiting for more.
     */
    mayQueue: (tx: EntityManager, count: boolean) => boolean | Promise<boolean> = () => true,
  ): Promise<ConfirmationOutcome> {
    const outside = await this.outside(em, link, person.email);
    if (outside) throw new DomainError('not_allowed', onlyFor(outside.allowed), { field: 'email' });
    const email = person.email.trim();
    return em.transactional(async (tx) => {
      // One submission per address and account at a time, so two at once cannot both take the last email.
      const key = `join-confirmation:${link.account.id}:${email.toLowerCase()}`;
      await query(tx, sql`select pg_advisory_xact_lock(hashtextextended(${key}, 0))`);
      const now = this.now();
      const [seen] = await query<{ recent: number; unsent: number }>(
        tx,
        sql`select count(*)::int as recent,
                   count(*) filter (where c.join_link_id = ${link.id} and c.sent_at is null
                     and c.used_at is null and c.expires_at > ${now})::int as unsent
              from join_confirmation c join join_link l on l.id = c.join_link_id
             where l.account_id = ${link.account.id} and lower(btrim(c.email)) = ${email.toLowerCase()}
               and c.created_at > ${new Date(now.getTime() - 3_600_000)}`,
      );
      // An address asked for before answers as any other would when the rate limits are used up: only its
      // hit is not counted, since it queues no email. Answered "Check your inbox" past the limits while
      // others got "Too many tries", the page would tell which addresses were asked for.
      const askedBefore = !!seen && (seen.unsent > 0 || seen.recent >= CONFIRMATIONS_PER_ADDRESS_HOUR);
      if (askedBefore && !(await mayQueue(tx, false))) return 'refused';
      // The email of an earlier submission is still on its way: it serves this one too, with the name
      // typed this time (a corrected typo is not thrown away; the Confirm page shows it either way).
      if (seen && seen.unsent > 0) {
        await query(
          tx,
          sql`update join_confirmation set name = ${person.name.trim()}
               where join_link_id = ${link.id} and lower(btrim(email)) = ${email.toLowerCase()}
                 and sent_at is null and used_at is null and expires_at > ${now}`,
        );
        return 'pending';
      }
      if (seen && seen.recent >= CONFIRMATIONS_PER_ADDRESS_HOUR) return 'address_limited';
      if (!(await mayQueue(tx, true))) return 'refused';
      const confirmation = tx.create(JoinConfirmation, {
        joinLink: link.id,
        email,
        name: person.name.trim(),
        // The raw token is derived again when the email is sent, from this nonce and the secret; only its
        // hash is stored or queued.
        tokenHash: newToken().hash,
        tokenNonce: randomBytes(16).toString('base64url'),
        expiresAt: new Date(now.getTime() + CONFIRMATION_HOURS * 3_600_000),
        createdAt: now,
      });
      await tx.flush();
      await this.jobs.send(JOIN_JOBS.sendConfirmation, { confirmationId: confirmation.id }, { em: tx });
      return 'queued' as const;
    });
  }

  /**
   * A confirmation's raw token: derived with a secret from its id and the random nonce stored with it, so
   * an email sent again after an attempt whose sending worked but whose recording failed carries the same
   * link, and the first stays good. The database keeps only the hash; the id and nonce give nothing without
   * the secret, and the secret alone gives no link. A confirmation made before nonces were kept has none:
   * its link is derived from the id alone, as it was when its email may already have gone.
   */
  private confirmationToken(confirmationId: string, nonce: string | null): { token: string; hash: string } {
    const token = createHmac('sha256', this.tokenKey)
      .update(nonce ? `${confirmationId}:${nonce}` : confirmationId)
      .digest('base64url');
    return { token, hash: hashToken(token) };
  }

  /**
   * The confirmation's token (only its hash kept) for the email, the same on every attempt. Null when
   * already sent, when its own time ran out or it was used (a retry hours late, after a stop), or when the
   * link stopped working before the email could go out: no email with a link that no longer works.
   */
  async prepareConfirmation(em: EntityManager, confirmationId: string) {
    return em.transactional(async (tx) => {
      const confirmation = await tx.findOne(
        JoinConfirmation,
        { id: confirmationId, sentAt: null, usedAt: null, expiresAt: { $gt: this.now() } },
        { populate: ['joinLink', 'joinLink.account'] },
      );
      if (!confirmation) return null;
      const link = confirmation.joinLink.getEntity();
      const account = link.account.getEntity();
      const existing = await findUserByEmail(tx, account, confirmation.email);
      if (!existing && linkState(link, this.now()) !== 'active') return null;
      const { token, hash } = this.confirmationToken(confirmation.id, confirmation.tokenNonce ?? null);
      confirmation.tokenHash = hash;
      return { token, confirmation, link, account, existing };
    });
  }

  async markSent(em: EntityManager, confirmationId: string): Promise<void> {
    await query(em, sql`update join_confirmation set sent_at = now() where id = ${confirmationId}`);
  }

  /**
   * A confirmation whose email could not be sent after every attempt: it ends, so it no longer holds back
   * a new submission of the form for the same address.
   */
  async abandonConfirmation(em: EntityManager, confirmationId: string): Promise<void> {
    await query(
      em,
      sql`update join_confirmation set expires_at = least(expires_at, ${this.now()}) where id = ${confirmationId} and sent_at is null`,
    );
  }

  /**
   * What an emailed confirmation would do, for the page its link opens: only reads, so a mail scanner
   * fetching the link changes nothing. Null for a used, expired or unknown token. A good confirmation whose
   * link stopped since it was sent says so (`ended`): its holder, not in Roster, hears that they did not
   * join, and why.
   */
  async findConfirmation(
    em: EntityManager,
    token: string,
  ): Promise<
    | { ended: null; email: string; name: string; role: Role; accountName: string | null }
    | { ended: 'full' | 'invalid' }
    | null
  > {
    if (!TOKEN.test(token)) return null;
    const confirmation = await em.findOne(
      JoinConfirmation,
      { tokenHash: hashToken(token), usedAt: null, expiresAt: { $gt: this.now() } },
      { populate: ['joinLink', 'joinLink.account'] },
    );
    const link = confirmation?.joinLink.getEntity();
    if (!confirmation || !link) return null;
    const state = linkState(link, this.now());
    // Someone already in Roster (who joined with another confirmation, say) is not told they did not
    // join: they hear what a used confirmation says, that there is nothing more to do.
    if (state !== 'active' && (await findUserByEmail(em, link.account.getEntity(), confirmation.email)))
      return null;
    if (state === 'full') return { ended: 'full' };
    if (state !== 'active') return { ended: 'invalid' };
    return {
      ended: null,
      email: confirmation.email,
      name: confirmation.name,
      role: link.role,
      accountName: link.account.getEntity().name ?? null,
    };
  }

  /**
   * Confirming (the Confirm button on the emailed link's page) joins, by the same rules as the Join
   * button. The confirmation is used in the joining transaction, so it works once; a used one answers
   * like an unknown one, so the link tells whoever holds it later nothing about the person. `name`, when
   * given, is the name as the Confirm page showed it and the person left or corrected it (already
   * validated): it is the one saved, not whatever the form that sent the email said.
   */
  async confirm(
    em: EntityManager,
    token: string,
    opts: { name?: string } = {},
  ): Promise<JoinResult & { accountName?: string | null; accountId?: string; linkEnded?: boolean }> {
    if (!TOKEN.test(token)) return { status: 'link_invalid' };
    const hash = hashToken(token);
    // Read before it is claimed, so what the join needs of Slack is asked before the transaction opens.
    const [pending] = await query<{ join_link_id: string; email: string }>(
      em,
      sql`select join_link_id, email from join_confirmation
           where token_hash = ${hash} and used_at is null and expires_at > ${this.now()}`,
    );
    if (!pending) return { status: 'link_invalid' };
    const asked = await this.askFirst(em, pending.join_link_id, pending.email, true);
    let claimed: { join_link_id: string; email: string } | undefined;
    try {
      // The link, the account's seats, then a contact with the address, as a join through the button: the
      // one Postgres stops as a deadlock with an import batch runs again, its claim rolled back with it.
      return await retryDeadlocks(() =>
        em.transactional(async (tx) => {
          claimed = undefined;
          const [row] = await query<{ join_link_id: string; email: string; name: string }>(
            tx,
            sql`update join_confirmation set used_at = now(), name = coalesce(${opts.name?.trim() || null}, name)
               where token_hash = ${hash} and used_at is null and expires_at > ${this.now()} returning join_link_id, email, name`,
          );
          if (!row) return { status: 'link_invalid' as const };
          claimed = row;
          const result = await this.joinIn(
            tx,
            row.join_link_id,
            { email: row.email, name: row.name },
            'web',
            asked,
          );
          // A good confirmation whose link was revoked or expired since the page was opened: the person
          // hears that of the link, not that their confirmation was used.
          const ended = result.status === 'link_invalid' ? { linkEnded: true } : {};
          return { ...result, ...ended, ...(await this.accountOf(tx, row.join_link_id)) };
        }),
      );
    } catch (err) {
      if (!claimed) throw err;
      const result = await this.raced(em, err, claimed.join_link_id, claimed.email);
      return { ...result, ...(await this.accountOf(em.fork(), claimed.join_link_id)) };
    }
  }

  private async accountOf(em: EntityManager, linkId: string) {
    const link = await em.findOne(JoinLink, linkId, { populate: ['account'] });
    return { accountName: link?.account.getEntity().name ?? null, accountId: link?.account.id };
  }
}
