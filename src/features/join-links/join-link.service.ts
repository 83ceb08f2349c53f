import type { EntityManager } from '@mikro-orm/postgresql';
import { UniqueConstraintViolationException } from '@mikro-orm/postgresql';
import { z } from 'zod';
import { DomainError } from '../../shared/errors.ts';
import { hashToken, newToken } from '../../shared/ids.ts';
import type { JobQueue } from '../../shared/jobs.ts';
import { Account, type IAccount } from '../accounts/account.entity.ts';
import { audit } from '../audit/audit.service.ts';
import type { Surface } from '../audit/audit-event.entity.ts';
import { createUser, findUserByEmail, permissionSetByName } from '../people/people.service.ts';
import type { IUser, Role } from '../people/user.entity.ts';
import type { Actor, SeatService } from '../seats/seat.service.ts';
import { type IJoinLink, JoinConfirmation, JoinLink } from './join-link.entity.ts';

export const JOIN_JOBS = {
  sendConfirmation: 'join.send-confirmation',
  expireLinks: 'join.expire-links',
} as const;
const CONFIRMATION_HOURS = 24;
const domainList = z
  .string()
  .transform((s) =>
    s
      .split(/[\s,;]+/)
      .map((d) => d.trim().toLowerCase().replace(/^@/, ''))
      .filter(Boolean),
  )
  .pipe(z.array(z.string().regex(/^[a-z0-9-]+(\.[a-z0-9-]+)+$/, 'Domains look like example.com')));

export function parseDomains(text: string): { ok: true; domains: string[] } | { ok: false; error: string } {
  const parsed = domainList.safeParse(text);
  return parsed.success
    ? { ok: true, domains: parsed.data }
    : {
        ok: false,
        error: `Not a domain: ${text.split(/[\s,;]+/).find((d) => d && !/^@?[a-z0-9-]+(\.[a-z0-9-]+)+$/i.test(d))}. Domains look like example.com.`,
      };
}

export type Person = { email: string; name?: string | null; slackUserId?: string | null };

export type JoinResult =
  | { status: 'joined'; user: IUser }
  | { status: 'exists'; user: IUser }
  | { status: 'requested' }
  | { status: 'domain_not_allowed'; allowed: string[] }
  | { status: 'link_invalid' };

/** Join links: created and revoked by admins, used by people to join on their own. */
export class JoinLinkService {
  private readonly seats: SeatService;
  private readonly jobs: JobQueue;
  private readonly now: () => Date;

  constructor(seats: SeatService, jobs: JobQueue, now: () => Date = () => new Date()) {
    this.seats = seats;
    this.jobs = jobs;
    this.now = now;
    seats.register('join', {
      approve: async (tx, request, account) => {
        const existing = await findUserByEmail(tx, account, request.email);
        if (existing) return `${request.email} was already a user.`;
        await this.createMember(
          tx,
          account,
          request.role,
          {
            email: request.email,
            name: request.name,
            slackUserId: (request.payload.slackUserId as string | null) ?? null,
          },
          request.payload.joinLinkId as string,
        );
        return `${request.email} is now an active member.`;
      },
    });
  }

  /**
   * Creates a link and posts its message through `post`, in one transaction: when the message cannot be
   * posted nothing is kept, so no link exists that nobody can see.
   */
  async create(
    em: EntityManager,
    account: IAccount,
    actor: Actor,
    input: {
      role: Role;
      expiryDays: number;
      maxUses: number | null;
      allowedDomains: string[];
      channelId: string;
    },
    post: (link: IJoinLink, token: string) => Promise<{ channel: string; ts: string }>,
  ): Promise<IJoinLink> {
    if (!actor.isAdmin) throw new DomainError('not_admin', 'Only admins can post join links.');
    return em.transactional(async (tx) => {
      const { token, hash } = newToken();
      const link = tx.create(JoinLink, {
        account,
        tokenHash: hash,
        role: input.role,
        expiresAt: new Date(this.now().getTime() + input.expiryDays * 86_400_000),
        maxUses: input.maxUses,
        uses: 0,
        allowedEmailDomains: input.allowedDomains,
        createdBy: actor.slackUserId,
        channelId: input.channelId,
      });
      audit(tx, {
        account,
        actor: actor.slackUserId,
        action: 'join_link.created',
        subjectType: 'join_link',
        subjectId: link.id,
        surface: actor.surface,
        data: {
          role: input.role,
          expiryDays: input.expiryDays,
          maxUses: input.maxUses,
          domains: input.allowedDomains,
          channel: input.channelId,
        },
      });
      await tx.flush();
      const posted = await post(link, token);
      link.channelId = posted.channel;
      link.messageTs = posted.ts;
      return link;
    });
  }

  async revoke(em: EntityManager, account: IAccount, actor: Actor, linkId: string): Promise<IJoinLink> {
    if (!actor.isAdmin) throw new DomainError('not_admin', 'Only admins can revoke join links.');
    const link = await em.findOne(JoinLink, { id: linkId, account });
    if (!link) throw new DomainError('not_found', 'That join link no longer exists.');
    if (!link.revokedAt) {
      link.revokedAt = this.now();
      link.revokedBy = actor.slackUserId;
      audit(em, {
        account,
        actor: actor.slackUserId,
        action: 'join_link.revoked',
        subjectType: 'join_link',
        subjectId: link.id,
        surface: actor.surface,
        data: { uses: link.uses },
      });
      await em.flush();
    }
    return link;
  }

  list(em: EntityManager, account: IAccount) {
    return em.find(JoinLink, { account }, { orderBy: { createdAt: 'desc' }, limit: 25 });
  }

  /** Links past their expiry that have not been announced as expired; marks them announced. */
  async expireDue(em: EntityManager): Promise<IJoinLink[]> {
    return em.transactional(async (tx) => {
      const links = await tx.find(
        JoinLink,
        { expiresAt: { $lte: this.now() }, expiryAnnouncedAt: null, revokedAt: null },
        { populate: ['account'] },
      );
      for (const link of links) {
        link.expiryAnnouncedAt = this.now();
        audit(tx, {
          account: link.account.getEntity(),
          actor: 'roster',
          action: 'join_link.expired',
          subjectType: 'join_link',
          subjectId: link.id,
          surface: 'job',
          data: { uses: link.uses },
        });
      }
      return links;
    });
  }

  /** The link behind a token, if it still works; unknown, expired and revoked are all `null`. */
  async findUsable(em: EntityManager, token: string): Promise<IJoinLink | null> {
    if (!/^[A-Za-z0-9_-]{40,64}$/.test(token)) return null;
    const link = await em.findOne(JoinLink, { tokenHash: hashToken(token) }, { populate: ['account'] });
    return link && usable(link, this.now()) ? link : null;
  }

  /**
   * Someone joins through a link: domain checked, an existing user told their status, otherwise the
   * link's use is counted and the user created active, or a seat request filed when no seat is free.
   * The link row is locked by the count, so uses never pass the maximum.
   */
  async join(em: EntityManager, linkId: string, person: Person, surface: Surface): Promise<JoinResult> {
    const email = person.email.trim();
    try {
      return await em.transactional(async (tx) => {
        const link = await tx.findOne(JoinLink, linkId, { populate: ['account'] });
        if (!link || !usable(link, this.now())) return { status: 'link_invalid' };
        const account = link.account.getEntity();
        const allowed = link.allowedEmailDomains.length
          ? link.allowedEmailDomains
          : account.allowedEmailDomains;
        const domain = email.split('@')[1]?.toLowerCase() ?? '';
        if (allowed.length && !allowed.includes(domain)) return { status: 'domain_not_allowed', allowed };
        const existing = await findUserByEmail(tx, account, email);
        if (existing) return { status: 'exists', user: existing };

        const counted = await tx.getConnection().execute<{ uses: number }[]>(
          `update join_link set uses = uses + 1, updated_at = now()
             where id = ? and revoked_at is null and expires_at > ? and (max_uses is null or uses < max_uses)
             returning uses`,
          [link.id, this.now()],
          'all',
          tx.getTransactionContext(),
        );
        if (counted.length === 0) return { status: 'link_invalid' };

        // The admin who posted the link agreed to paid seats while they are free; with none free the
        // join waits for an admin like any other paid addition.
        const actor: Actor = { slackUserId: person.slackUserId ?? email, isAdmin: true, surface };
        const result = await this.seats.admit(
          tx,
          account,
          actor,
          {
            kind: 'join',
            email,
            name: person.name ?? null,
            role: link.role,
            requestedBy: link.createdBy,
            payload: { joinLinkId: link.id, slackUserId: person.slackUserId ?? null },
            onNoSeat: 'request',
          },
          () => this.createMember(tx, account, link.role, person, link.id),
        );
        return result.status === 'added' ? { status: 'joined', user: result.value } : { status: 'requested' };
      });
    } catch (err) {
      // The same person joining twice at once: the second finds the first's user, or its pending request.
      if (err instanceof UniqueConstraintViolationException) {
        const link = await em.fork().findOneOrFail(JoinLink, linkId);
        const user = await findUserByEmail(em.fork(), em.getReference(Account, link.account.id), email);
        if (user) return { status: 'exists', user };
      }
      if (err instanceof DomainError && err.code === 'conflict') return { status: 'requested' };
      throw err;
    }
  }

  private async createMember(
    tx: EntityManager,
    account: IAccount,
    role: Role,
    person: Person,
    linkId: string,
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
      actor: person.slackUserId ?? person.email,
      action: 'join_link.used',
      subjectType: 'join_link',
      subjectId: linkId,
      surface: 'slack',
      data: { email: person.email, userId: user.id, role },
    });
    await tx.flush();
    return user;
  }

  /** A web join waits for the email to be confirmed; the confirmation email goes out from a job. */
  async requestConfirmation(
    em: EntityManager,
    link: IJoinLink,
    person: { email: string; name: string },
  ): Promise<void> {
    await em.transactional(async (tx) => {
      const confirmation = tx.create(JoinConfirmation, {
        joinLink: link.id,
        email: person.email.trim(),
        name: person.name.trim(),
        tokenHash: newToken().hash,
        expiresAt: new Date(this.now().getTime() + CONFIRMATION_HOURS * 3_600_000),
      });
      await tx.flush();
      await this.jobs.send(JOIN_JOBS.sendConfirmation, { confirmationId: confirmation.id }, { em: tx });
    });
  }

  /** Makes the confirmation's token (only its hash kept) for the email; null if already sent. */
  async prepareConfirmation(em: EntityManager, confirmationId: string) {
    return em.transactional(async (tx) => {
      const confirmation = await tx.findOne(
        JoinConfirmation,
        { id: confirmationId, sentAt: null },
        { populate: ['joinLink', 'joinLink.account'] },
      );
      if (!confirmation) return null;
      const { token, hash } = newToken();
      confirmation.tokenHash = hash;
      const link = confirmation.joinLink.getEntity();
      const account = link.account.getEntity();
      const existing = await findUserByEmail(tx, account, confirmation.email);
      return { token, confirmation, link, account, existing };
    });
  }

  async markSent(em: EntityManager, confirmationId: string): Promise<void> {
    await em
      .getConnection()
      .execute('update join_confirmation set sent_at = now() where id = ?', [confirmationId]);
  }

  /** Opening the emailed link joins, once; an unknown, used or expired token is `link_invalid`. */
  async confirm(em: EntityManager, token: string): Promise<JoinResult & { accountName?: string | null }> {
    if (!/^[A-Za-z0-9_-]{40,64}$/.test(token)) return { status: 'link_invalid' };
    const [row] = await em
      .getConnection()
      .execute<{ id: string; join_link_id: string; email: string; name: string }[]>(
        `update join_confirmation set used_at = now()
         where token_hash = ? and used_at is null and expires_at > ? returning id, join_link_id, email, name`,
        [hashToken(token), this.now()],
      );
    if (!row) return { status: 'link_invalid' };
    const result = await this.join(em.fork(), row.join_link_id, { email: row.email, name: row.name }, 'web');
    if (result.status === 'link_invalid' || result.status === 'domain_not_allowed') {
      // Let the person try the same link again later rather than burning it.
      await em.getConnection().execute('update join_confirmation set used_at = null where id = ?', [row.id]);
    }
    const link = await em.fork().findOne(JoinLink, row.join_link_id, { populate: ['account'] });
    return { ...result, accountName: link?.account.getEntity().name };
  }
}

function usable(link: IJoinLink, now: Date): boolean {
  return (
    !link.revokedAt &&
    link.expiresAt > now &&
    (link.maxUses === null || link.maxUses === undefined || link.uses < link.maxUses)
  );
}
