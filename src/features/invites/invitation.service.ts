import type { EntityManager } from '@mikro-orm/postgresql';
import { query, sql } from '../../db/sql.ts';
import type { JobQueue } from '../../shared/jobs.ts';
import type { IAccount } from '../accounts/account.entity.ts';
import { refuseOutsideDomains } from '../accounts/allowed-domains.ts';
import { audit } from '../audit/audit.service.ts';
import type { Surface } from '../audit/audit-event.entity.ts';
import type { IUser } from '../people/user.entity.ts';
import { type IInvitation, Invitation } from './invitation.entity.ts';

export const INVITE_JOBS = {
  deliver: 'invites.deliver',
  /** A CSV import batch's invitations, delivered one after another by one job (see deliverBatch). */
  deliverBatch: 'invites.deliver-batch',
  expire: 'invites.expire',
} as const;

/**
 * Creates a pending invitation for `user` inside `tx` (voiding any earlier one), marks the user invited
 * and queues the delivery. The link's token is made when the invitation is delivered, so no usable
 * token exists before then and only its hash is ever stored. Every invitation comes through here, so an
 * address outside the account's allowed email domains is refused here, whoever sends it.
 */
export async function queueInvitation(
  tx: EntityManager,
  jobs: JobQueue,
  input: {
    account: IAccount;
    user: IUser;
    invitedBy: string;
    personalMessage?: string | null;
    surface: Surface;
    now?: Date;
  },
): Promise<IInvitation> {
  await refuseOutsideDomains(tx, input.account, input.user.email);
  const now = input.now ?? new Date();
  const earlier = await tx.find(Invitation, { user: input.user, status: 'pending' });
  for (const inv of earlier) inv.status = 'superseded';
  await tx.flush();
  const invitation = tx.create(Invitation, {
    account: input.account,
    user: input.user,
    tokenHash: null,
    status: 'pending',
    expiresAt: new Date(now.getTime() + input.account.invitationExpiryDays * 86_400_000),
    invitedBy: input.invitedBy,
    personalMessage: input.personalMessage?.trim() || null,
  });
  input.user.status = 'invited';
  audit(tx, {
    account: input.account,
    actor: input.invitedBy,
    action: earlier.length ? 'invitation.resent' : 'invitation.created',
    subjectType: 'invitation',
    subjectId: invitation.id,
    surface: input.surface,
    data: { email: input.user.email },
  });
  await tx.flush();
  await jobs.send(INVITE_JOBS.deliver, { invitationId: invitation.id }, { em: tx });
  return invitation;
}

/**
 * The personal message of `user`'s latest invitation, for an invitation sent again (a resend, an expired
 * one sent anew): the inviter's words stay in the new DM, email and accept page.
 */
export async function latestPersonalMessage(tx: EntityManager, user: IUser): Promise<string | null> {
  const latest = await tx.findOne(Invitation, { user }, { orderBy: { createdAt: 'desc' } });
  return latest?.personalMessage ?? null;
}

/**
 * The note an upgrade leaves on an invitation whose link it voided, to be delivered again
 * (migrations/Migration20261204190000_redeliver_slack_connect_invitations.ts writes exactly this text).
 */
export const REDELIVER_NOTE =
  'The Slack DM went to someone of another organisation (Slack Connect): delivered again';

/**
 * Queues the delivery of the invitations an upgrade voided (see REDELIVER_NOTE), run when Roster starts.
 * The note is taken off in the transaction that queues the job, so each is queued once, however many
 * processes start at the same time. Returns how many were queued.
 */
export async function queueRedeliveries(em: EntityManager, jobs: JobQueue): Promise<number> {
  return em.transactional(async (tx) => {
    const rows = await query<{ id: string }>(
      tx,
      sql`update invitation set last_error = null, updated_at = now()
            where last_error = ${REDELIVER_NOTE} and status = 'pending' and delivered_at is null
            returning id`,
    );
    for (const { id } of rows) await jobs.send(INVITE_JOBS.deliver, { invitationId: id }, { em: tx });
    return rows.length;
  });
}
