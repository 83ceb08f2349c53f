import { mailFailure, refusedForGood, withoutAddresses, withoutAddressesError } from '../../shared/mailer.ts';
import { esc } from '../../slack/blocks.ts';
import { nowOrLater, SLACK_CALL_JOB } from '../../slack/later.ts';
import { firstTime } from '../../slack/once.ts';
import { isSlackBusy } from '../../slack/pacing.ts';
import type { Deps } from '../feature.ts';
import { DELIVERY_RETRY } from '../invites/invite.delivery.ts';
import { SeatRequest } from '../seats/seat-request.entity.ts';
import { confirmationMail } from './join-link.messages.ts';
import { JOIN_JOBS } from './join-link.service.ts';
import { joinerLeft, tellJoiner } from './tell-joiner.ts';

/** Posts `text` to a Slack user; queued while Slack is busy; a failure to tell is only logged. */
async function notify(deps: Deps, channel: string, text: string, what: string): Promise<void> {
  await nowOrLater(deps.jobs, deps.slack, { method: 'chat.postMessage', args: { channel, text } }).catch(
    (err) => deps.logger.warn({ err }, `could not tell ${what}`),
  );
}

/**
 * Emails a web join's confirmation link. Retried like an invitation's delivery (a mail server down for a
 * few hours loses nothing); the link is the same on every attempt. When the last attempt fails, the
 * confirmation ends (the person may fill in the form again), it is logged as an error, and the admin
 * who posted the link is told, once a day per link, that Roster cannot send its emails. An address the
 * mail server refuses for good (a mistyped one) ends the confirmation at once, and the poster is told,
 * once a day per link, that it was the address and not Roster's mail settings; an email the mail server
 * refuses for good (spam, policy, size) ends it at once too, the poster told so.
 */
export async function sendConfirmation(
  deps: Deps,
  confirmationId: string,
  opts: { lastAttempt: boolean },
): Promise<void> {
  const links = deps.joinLinks;
  const ready = await links.prepareConfirmation(deps.orm.em.fork(), confirmationId);
  if (!ready) return;
  const mail = confirmationMail({
    accountName: ready.account.name ?? 'the account',
    url: `${deps.config.publicUrl}/join/confirm/${ready.token}`,
    // The confirmation's own 24 hours, or the join link's end when it comes first.
    expiresAt: new Date(Math.min(ready.link.expiresAt.getTime(), ready.confirmation.expiresAt.getTime())),
    existing: ready.existing,
  });
  try {
    await deps.mailer.send({ to: ready.confirmation.email, ...mail });
  } catch (err) {
    // Refused for good (`550 5.1.1 User unknown`: most often a typo; `554 5.7.1 Rejected as spam`: the
    // email itself), every retry would be refused alike for hours, while the person waits for an email that
    // cannot come.
    const refusedWhat = refusedForGood(err);
    const refused = refusedWhat !== null;
    // Mail servers repeat the refused address: the job queue logs and stores the error without it.
    if (!opts.lastAttempt && !refused) throw withoutAddressesError(err);
    const { link } = ready;
    // In Roster's words, with the mail server's codes and without the address they repeat.
    const error = mailFailure(err);
    deps.logger.error(
      {
        err: { message: error, code: (err as { code?: string }).code },
        confirmationId,
        joinLinkId: link.id,
        job: JOIN_JOBS.sendConfirmation,
        retried: !refused,
      },
      'gave up emailing a join confirmation',
    );
    // Told to the poster while they are still an admin, with the mail server's error but without the
    // addresses such errors repeat: the joiner's address is not theirs to see.
    const posterIsAdmin = await deps.admins
      .isAdmin(deps.orm.em.fork(), ready.account, link.createdBy)
      .catch(() => false);
    const where = `your join link${link.channelId ? ` in <#${link.channelId}>` : ''}`;
    const day = new Date().toISOString().slice(0, 10);
    const once = `join-mail-${refusedWhat === 'message' ? 'rejected' : refused ? 'refused' : 'failed'}:${link.id}:${day}`;
    const text =
      refusedWhat === 'message'
        ? `:warning: Roster could not email a confirmation to someone joining through ${where}: ${esc(error.slice(0, 300))}. The mail server refused the email itself and would refuse it again, so Roster did not try again; whoever runs the mail server (SMTP_URL) can say why it refuses it. The person can fill in the join form again once that is fixed.`
        : refused
          ? `:warning: Roster could not email a confirmation to someone joining through ${where}: ${esc(error.slice(0, 300))}. The address they typed is refused for good, most often a typo, so Roster did not try again; Roster's mail settings are not at fault. The person can fill in the join form again with their correct address.`
          : `:warning: Roster could not email a confirmation to someone joining through ${where}, after trying for several hours. The last error was: ${esc(error.slice(0, 300))}\nCheck Roster's mail settings (SMTP_URL). The person can fill in the join form again once mail works.`;
    // The confirmation ends and the poster's notice is queued in one transaction: a stop between the two
    // can neither end it untold nor tell of one still holding back the form.
    await deps.orm.em.fork().transactional(async (tx) => {
      await links.abandonConfirmation(tx, confirmationId);
      if (posterIsAdmin && (await firstTime(tx, once))) {
        await deps.jobs.send(
          SLACK_CALL_JOB,
          { method: 'chat.postMessage', args: { channel: link.createdBy, text } },
          { em: tx },
        );
      }
    });
    if (refused) return;
    throw withoutAddressesError(err);
  }
  await links.markSent(deps.orm.em.fork(), confirmationId);
}

/**
 * Tells a person who joined through a link what an admin decided on their place (a DM, or an email for a
 * web join), retried like an invitation's delivery, and once only. When the last attempt fails, or the
 * mail server refuses the address or the email for good, it is logged as an error and the admin who decided is asked
 * to tell the person themselves.
 */
export async function tellJoinerOfDecision(
  deps: Deps,
  requestId: string,
  opts: { lastAttempt: boolean },
): Promise<void> {
  const em = deps.orm.em.fork();
  const request = await em.findOne(SeatRequest, requestId, { populate: ['account'] });
  if (!request || request.payload.joinerTold) return;
  if (await joinerLeft(deps.directory, em, request.account.getEntity(), request)) return;
  try {
    await tellJoiner(deps.slack, deps.mailer, request);
  } catch (err) {
    const emailed = !request.payload.slackUserId;
    // An address refused for good would be refused on every retry for hours: the admin is asked now.
    const refusedWhat = emailed ? refusedForGood(err) : null;
    const refused = refusedWhat !== null;
    // Slack asking to wait goes back as it is, to be waited out; anything else without the joiner's address.
    if (!opts.lastAttempt && !refused) throw isSlackBusy(err) ? err : withoutAddressesError(err);
    const error = emailed ? mailFailure(err) : withoutAddresses((err as Error).message);
    deps.logger.error(
      {
        err: { message: error, code: (err as { code?: string }).code },
        seatRequestId: requestId,
        job: JOIN_JOBS.tellJoiner,
        retried: !refused,
      },
      'gave up telling a joiner the decision on their place',
    );
    if (request.decidedBy) {
      const why = refused
        ? `: ${esc(error.slice(0, 300))}. ${refusedWhat === 'message' ? 'The mail server refused the email itself' : 'Their address is refused for good'}, so Roster did not try again.`
        : `, after trying for several hours. The last error was: ${esc(error.slice(0, 300))}`;
      await notify(
        deps,
        request.decidedBy,
        `:warning: Roster could not tell ${esc(request.email)} that their place was ${request.status}${why}\nPlease let them know yourself.`,
        'the admin who decided that the joiner was not told',
      );
    }
    if (refused) return;
    throw withoutAddressesError(err);
  }
  request.payload = { ...request.payload, joinerTold: true };
  await em.flush();
}

/** The join links' emails, with the invitations' retry policy ({@link DELIVERY_RETRY}). */
export async function defineJoinMail(deps: Deps): Promise<void> {
  const last = (retryCount: number) => ({ lastAttempt: retryCount >= DELIVERY_RETRY.retryLimit });
  await deps.jobs.define<{ confirmationId: string }>(
    JOIN_JOBS.sendConfirmation,
    ({ confirmationId }, { retryCount }) => sendConfirmation(deps, confirmationId, last(retryCount)),
    DELIVERY_RETRY,
  );
  await deps.jobs.define<{ requestId: string }>(
    JOIN_JOBS.tellJoiner,
    ({ requestId }, { retryCount }) => tellJoinerOfDecision(deps, requestId, last(retryCount)),
    DELIVERY_RETRY,
  );
}
