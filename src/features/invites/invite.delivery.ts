import { query, sql } from '../../db/sql.ts';
import { isEmailAddress } from '../../shared/email.ts';
import type { Logger } from '../../shared/logger.ts';
import { mailFailure, refusedForGood, withoutAddressesError } from '../../shared/mailer.ts';
import { SLACK_CALL_JOB } from '../../slack/later.ts';
import { firstTime } from '../../slack/once.ts';
import { isSlackBusy } from '../../slack/pacing.ts';
import { emailHtml, escapeHtml, lines, SafeHtml } from '../../web/html.ts';
import type { IAccount } from '../accounts/account.entity.ts';
import { outsideAllowedDomains } from '../accounts/allowed-domains.ts';
import { isOfWorkspace, memberOf } from '../directory/directory.service.ts';
import type { Deps } from '../feature.ts';
import { INVITEE_ROLE } from '../people/labels.ts';
import type { IUser } from '../people/user.entity.ts';
import type { IInvitation } from './invitation.entity.ts';
import { INVITE_JOBS } from './invitation.service.ts';
import type { InviteService } from './invite.service.ts';
import {
  batchDeliveryFailedMessage,
  deliveryFailedMessage,
  type GiveUpCause,
  type InvitationLetter,
  invitationDm,
} from './slack/blocks.ts';

/**
 * The email: plain text and HTML saying who invites you, to what, as what, and the link. Replies go to the
 * inviter: the sender is Roster's own address, often one nobody reads.
 */
export function invitationEmail(to: IUser, l: InvitationLetter) {
  const subject = `${l.inviter} invited you to ${l.accountName}`;
  const replyTo = l.inviterEmail ? { name: l.inviter, address: l.inviterEmail } : undefined;
  const text = [
    `Hello${to.firstName ? ` ${to.firstName}` : ''},`,
    '',
    `${l.inviter} invited you to join ${l.accountName} as ${l.role}.`,
    ...(l.message ? ['', `“${l.message}”`] : []),
    '',
    `Accept the invitation: ${l.link}`,
    '',
    `The link works until ${l.expires.toUTCString()}. If you were not expecting this, you can ignore it.`,
  ].join('\n');
  const html = emailHtml(
    new SafeHtml(`<p>Hello${to.firstName ? ` ${escapeHtml(to.firstName)}` : ''},</p>
<p><strong>${escapeHtml(l.inviter)}</strong> invited you to join <strong>${escapeHtml(l.accountName)}</strong> as ${escapeHtml(l.role)}.</p>
${l.message ? `<blockquote style="border-left:3px solid #ccc;margin:0;padding-left:1em">${lines(l.message).value}</blockquote>` : ''}
<p><a href="${escapeHtml(l.link)}" style="display:inline-block;background:#4a154b;color:#fff;padding:10px 18px;border-radius:6px;text-decoration:none;font-weight:600">Accept the invitation</a></p>
<p style="color:#616061;font-size:13px">Or open ${escapeHtml(l.link)}<br>The link works until ${escapeHtml(l.expires.toUTCString())}. If you were not expecting this, you can ignore it.</p>`),
  );
  return { subject, text, html, ...(replyTo ? { replyTo } : {}) };
}

/**
 * How long delivery keeps trying: quick retries first (a blip), then every ten minutes for a few hours (a
 * mail server down for maintenance). Past the last attempt the inviter is told and can press Resend. An
 * address or an email the mail server refuses for good (5xx, see refusedForGood) is not retried at all.
 */
export const DELIVERY_RETRY = {
  retryLimit: 30,
  retryDelay: 1,
  retryBackoff: true,
  retryDelayMax: 600,
} as const;

/**
 * Whether Roster stopped trying to deliver an invitation: the mail server refused the address for good, or
 * every retry failed. Not its attempts: a delivery Slack's rate limits held back counts one without using up
 * a retry, and is still being tried.
 */
export function deliveryGaveUp(i: Pick<IInvitation, 'deliveryFailedAt'>): boolean {
  return !!i.deliveryFailedAt;
}

/** The inviter as Slack shows them: their name (a plain word when Slack cannot say) and their email. */
async function inviter(
  deps: Deps,
  account: IAccount,
  invitedBy: string | null | undefined,
): Promise<{ name: string; email: string | null }> {
  if (!invitedBy) return { name: 'Someone', email: null };
  const person = await deps.admins.member(deps.orm.em.fork(), account, invitedBy).catch((err) => {
    if (isSlackBusy(err)) throw err;
    return null;
  });
  const email = person?.email && !person.deleted && isEmailAddress(person.email) ? person.email : null;
  return { name: person?.name || 'Someone', email };
}

/** The inviter's name as Slack shows it; a plain word when Slack cannot say. */
export async function inviterName(
  deps: Deps,
  account: IAccount,
  invitedBy: string | null | undefined,
): Promise<string> {
  return (await inviter(deps, account, invitedBy)).name;
}

/**
 * Delivers one invitation: by Slack DM when the person is in the workspace, otherwise (or when the DM
 * fails) by email. A failure is recorded and thrown so the job is retried; on the last attempt the
 * inviter is told. An address or an email the mail server refuses for good ends the delivery at once:
 * recorded as not delivered, the inviter told, nothing thrown. A delivered, cancelled, replaced or given-up invitation is
 * never delivered again.
 */
export async function deliverInvitation(
  deps: Deps,
  invites: InviteService,
  invitationId: string,
  opts: DeliveryOptions,
): Promise<void> {
  const { orm, logger } = deps;
  const ready = await invites.prepareDelivery(orm.em.fork(), invitationId);
  if (!ready) return;
  const { token, invitation, user } = ready;
  const account = ready.account as IAccount;
  try {
    const from = await inviter(deps, account, invitation.invitedBy);
    const letter: InvitationLetter = {
      inviter: from.name,
      inviterEmail: from.email,
      accountName: account.name ?? 'your company',
      role: INVITEE_ROLE[user.role] ?? user.role,
      message: invitation.personalMessage ?? null,
      link: `${deps.config.publicUrl}/invitations/${token}`,
      expires: invitation.expiresAt,
    };
    const log = logger.child({
      job: INVITE_JOBS.deliver,
      invitationId,
      attempt: invitation.deliveryAttempts,
    });
    await send(deps, invites, { invitation, user, account }, letter, log, opts);
  } catch (err) {
    // However the delivery stopped (Slack asked to wait, the mail server refused), the next try must not
    // find the invitation still held by this one.
    await invites.releaseDelivery(orm.em.fork(), invitationId).catch(() => {});
    throw isSlackBusy(err) ? err : withoutAddressesError(err);
  }
}

/** An invitation Roster stopped trying to deliver, as its inviter is told of it. */
export type GaveUp = {
  inviter: string;
  user: Pick<IUser, 'id' | 'email' | 'firstName' | 'lastName'>;
  error: string;
  how: GiveUpCause;
};

type DeliveryOptions = {
  lastAttempt: boolean;
  /**
   * Delivered as part of a batch, which tells each inviter once for all its invitations given up: a
   * given-up delivery is marked as untold (`invitation.failure_untold`) instead of queueing a DM of its own.
   */
  batched?: boolean;
};

/** Sends a prepared invitation by DM or email, and records how it went. */
async function send(
  deps: Deps,
  invites: InviteService,
  { invitation, user, account }: { invitation: IInvitation; user: IUser; account: IAccount },
  letter: InvitationLetter,
  log: Logger,
  opts: DeliveryOptions,
): Promise<void> {
  const { slack, mailer, orm, jobs } = deps;
  const invitationId = invitation.id;
  let dmError: string | undefined;
  // The directory mirror answers "is this person in Slack?"; Slack is asked only about an address it lacks.
  const known = await deps.directory.byEmail(orm.em.fork(), account as IAccount, user.email);
  const found = known
    ? null
    : await slack.users.lookupByEmail({ email: user.email }).catch((err) => {
        // Slack being busy is not "not in Slack": the delivery waits for Slack rather than sending an email.
        if (isSlackBusy(err)) throw err;
        return null;
      });
  // Slack also finds people of other organisations met in Slack Connect channels: only a member of this
  // workspace gets the DM; anyone else is invited by email, where the address itself is what is trusted.
  const looked = found?.user ? memberOf(found.user) : null;
  const member =
    looked && !looked.deleted && isOfWorkspace(looked, (account as IAccount).teamId) ? looked : null;
  const slackId = known?.slackUserId ?? member?.slackUserId;
  // Cancelled or replaced while Slack was asked about them: nothing goes out, and nobody is told of it.
  const [pending] = await query<{ expired: boolean }>(
    orm.em.fork(),
    sql`select expires_at <= now() as expired from invitation where id = ${invitationId} and status = 'pending'`,
  );
  if (!pending) {
    log.info('invitation no longer pending: not sent');
    return;
  }
  /**
   * Records that Roster stopped trying, and has the inviter hear of it, in the transaction that records it,
   * so a stop between the two can neither leave it untold nor tell it twice: a single delivery queues the
   * inviter's DM; a batch's marks it as untold, for the batch to tell each inviter once (even a retry of
   * the batch after a stop).
   */
  const giveUp = async (error: string, how: GiveUpCause): Promise<boolean> => {
    const inviter = invitation.invitedBy;
    return invites.recordFailure(orm.em.fork(), invitationId, error, true, async (tx) => {
      if (!inviter) return;
      if (opts.batched) {
        await query(tx, sql`update invitation set failure_untold = ${how} where id = ${invitationId}`);
        return;
      }
      await jobs.send(
        SLACK_CALL_JOB,
        {
          method: 'chat.postMessage',
          args: { channel: inviter, ...deliveryFailedMessage(user, error, how) },
        },
        { em: tx },
      );
    });
  };
  // Its link expired while it waited (Roster stopped, Slack or the mail server holding it back): a link
  // that no longer works is not sent.
  if (pending.expired) {
    if (await giveUp('Not sent: its link expired before it could be delivered', 'expired')) {
      log.error({ reason: 'link expired before delivery' }, 'gave up delivering an invitation');
    }
    return;
  }
  // The allowed email domains narrowed since it was queued (a retry hours later): no link goes out.
  const outside = await outsideAllowedDomains(orm.em.fork(), account as IAccount, user.email);
  if (outside) {
    if (await giveUp(`Not sent: ${outside}`, 'domain')) {
      log.error({ reason: 'outside the allowed email domains' }, 'gave up delivering an invitation');
    }
    return;
  }
  if (slackId) {
    let posted = false;
    try {
      // Posted to the user id, which Slack delivers in the app's DM with them: no conversations.open
      // (Tier 3, 50 a minute) per invitation.
      await slack.chat.postMessage({ channel: slackId, ...invitationDm(invitation.id, letter) });
      posted = true;
    } catch (err) {
      if (isSlackBusy(err)) throw err;
      dmError = `Slack DM failed: ${(err as Error).message}`;
      log.warn({ err }, 'invitation DM failed; sending it by email');
    }
    if (posted) {
      // Sent: a failure to record it is retried by the job (the same link again), never a reason to email
      // the same invitation as well.
      await invites.recordDelivery(orm.em.fork(), invitationId, { method: 'slack_dm', slackUserId: slackId });
      log.info({ method: 'slack_dm' }, 'invitation delivered');
      return;
    }
  }
  try {
    await mailer.send({ to: user.email, ...invitationEmail(user, letter) });
  } catch (err) {
    // The mail server's words often repeat the invitee's address, and so do the transport's error fields
    // (`rejected`, `response`): the failure is told, recorded and thrown (for the log and the job's stored
    // output) in words of Roster's that say what went wrong without it.
    const error = `Email failed: ${mailFailure(err)}`;
    // An address refused for good (`550 5.1.1 User unknown`: most often a typo), or the email itself
    // (`554 5.7.1 Rejected as spam`), would be refused on every retry for hours while the inviter waits: the
    // inviter hears now, and presses Resend once the address or the message is put right.
    // A person in Slack whose DM failed is tried again: the next DM may go through whatever the address.
    const refusedWhat = dmError ? null : refusedForGood(err);
    const refused = refusedWhat !== null;
    if (opts.lastAttempt || refused) {
      if (!(await giveUp(error, refusedWhat ?? 'retried'))) return;
      log.error({ reason: error, retried: !refused }, 'gave up delivering an invitation');
    } else if (!(await invites.recordFailure(orm.em.fork(), invitationId, error))) return;
    if (refused) return;
    throw Object.assign(new Error(error), { code: (err as { code?: string }).code });
  }
  await invites.recordDelivery(orm.em.fork(), invitationId, { method: 'email', error: dmError });
  log.info({ method: 'email' }, 'invitation delivered');
}

/**
 * Delivers the invitations of one CSV import batch (up to 1,000), one after another, as
 * {@link deliverInvitation} delivers each. One that fails is recorded and the others go on; the batch is
 * then retried on the same schedule as a single delivery, and a retry delivers only those not delivered yet
 * (a delivered, cancelled or replaced invitation is skipped). While Slack asks Roster to slow down, the
 * batch stops where it is and comes back when Slack allows, without using up an attempt.
 *
 * One job for a batch, not one per invitation: an import of 100,000 invitations writes 100 jobs, not
 * 100,000, inside its transactions, and Slack's pace, not the job queue, sets how fast they go out.
 */
export async function deliverBatch(
  deps: Deps,
  invites: InviteService,
  invitationIds: string[],
  opts: { lastAttempt: boolean },
): Promise<void> {
  let failed = 0;
  let first: Error | undefined;
  try {
    for (const invitationId of invitationIds) {
      try {
        await deliverInvitation(deps, invites, invitationId, { ...opts, batched: true });
      } catch (err) {
        if (isSlackBusy(err)) throw err;
        failed++;
        first ??= err as Error;
      }
    }
  } finally {
    // Told before the batch stops for Slack's pace too: the invitations given up are not taken up again.
    // What an earlier try of this batch gave up on before it was stopped is told now.
    await tellInvitersOfBatch(deps, invitationIds).catch((err) =>
      deps.logger.warn({ err }, 'could not tell the importer that invitations were not delivered'),
    );
  }
  if (failed) {
    throw new Error(
      `${failed} of ${invitationIds.length} invitations could not be delivered yet (first: ${first?.message})`,
    );
  }
}

/**
 * One DM per inviter for a batch's invitations given up, in place of one per invitation: an import of
 * thousands of invitations while the mail server is down would otherwise send as many DMs. Addresses the
 * mail server refuses for good (typos, most often) are listed with every batch; a failure of the mail
 * server itself, the same for every batch, is told once a day, and `/invite pending` lists them all.
 */
async function tellInvitersOfBatch(deps: Deps, invitationIds: string[]): Promise<void> {
  // The marks are taken and the DMs queued in one transaction: told once, whatever stops where.
  await deps.orm.em.fork().transactional(async (tx) => {
    const marked = await query<{
      invitation_id: string;
      status: string;
      inviter: string;
      how: GiveUpCause;
      error: string | null;
      id: string;
      email: string;
      first_name: string | null;
      last_name: string | null;
    }>(
      tx,
      sql`with untold as (
            select id, failure_untold from invitation
            where id = any(${invitationIds}::uuid[]) and failure_untold is not null
            order by id for update)
          update invitation i set failure_untold = null
          from untold, app_user u
          where i.id = untold.id and u.id = i.user_id
          returning i.id as invitation_id, i.status, i.invited_by as inviter, untold.failure_untold as how, i.last_error as error,
                    u.id, u.email, u.first_name, u.last_name`,
    );
    // Cancelled or replaced since it was given up: nobody's concern any more, and not told.
    const untold = marked.filter((row) => row.status === 'pending');
    // In the order of the batch, as they were delivered.
    const at = new Map(invitationIds.map((id, i) => [id, i]));
    untold.sort((a, b) => (at.get(a.invitation_id) ?? 0) - (at.get(b.invitation_id) ?? 0));
    const byInviter = new Map<string, GaveUp[]>();
    for (const row of untold) {
      const failure: GaveUp = {
        inviter: row.inviter,
        how: row.how,
        error: row.error ?? '',
        user: { id: row.id, email: row.email, firstName: row.first_name, lastName: row.last_name },
      };
      const theirs = byInviter.get(row.inviter);
      if (theirs) theirs.push(failure);
      else byInviter.set(row.inviter, [failure]);
    }
    const day = new Date().toISOString().slice(0, 10);
    for (const [inviter, failures] of byInviter) {
      const mailWide = failures.some((f) => f.how === 'retried' || f.how === 'message');
      const toldToday = mailWide && !(await firstTime(tx, `invite-batch-mail:${inviter}:${day}`));
      const told = toldToday ? failures.filter((f) => f.how !== 'retried' && f.how !== 'message') : failures;
      if (!told.length) continue;
      await deps.jobs.send(
        SLACK_CALL_JOB,
        { method: 'chat.postMessage', args: { channel: inviter, ...batchDeliveryFailedMessage(told) } },
        { em: tx },
      );
    }
  });
}

/**
 * A batch delivers its invitations one at a time at Slack's pace, so it may run for many minutes: it
 * counts as stuck (and is started again, skipping what was delivered) only after two hours.
 */
const BATCH_EXPIRY_SECONDS = 2 * 60 * 60;

/** Registers the delivery jobs, retried with backoff per {@link DELIVERY_RETRY}. */
export async function defineDelivery(deps: Deps, invites: InviteService): Promise<void> {
  await deps.jobs.define<{ invitationId: string }>(
    INVITE_JOBS.deliver,
    ({ invitationId }, { retryCount }) =>
      deliverInvitation(deps, invites, invitationId, {
        lastAttempt: retryCount >= DELIVERY_RETRY.retryLimit,
      }),
    // Four at a time: Slack's pace (the shared buckets), not one worker's round trips, sets the rate.
    { ...DELIVERY_RETRY, localConcurrency: 4 },
  );
  await deps.jobs.define<{ invitationIds: string[] }>(
    INVITE_JOBS.deliverBatch,
    ({ invitationIds }, { retryCount }) =>
      deliverBatch(deps, invites, invitationIds, {
        lastAttempt: retryCount >= DELIVERY_RETRY.retryLimit,
      }),
    { ...DELIVERY_RETRY, expireInSeconds: BATCH_EXPIRY_SECONDS, localConcurrency: 4 },
  );
}
