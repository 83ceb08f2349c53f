import { json, query, sql } from '../../db/sql.ts';
import { isSlackBusy } from '../../slack/pacing.ts';
import type { Deps } from '../feature.ts';
import { SEAT_JOBS } from './seat.service.ts';
import { type ISeatRequest, SeatRequest } from './seat-request.entity.ts';
import { outcomeForRequester, requestMessage, withChannelRefused } from './slack/blocks.ts';

type RequestJob = { requestId: string };

/** What Slack says when a channel cannot take Roster's post. */
const CHANNEL_GONE = new Set([
  'not_in_channel',
  'channel_not_found',
  'is_archived',
  'shared_with_another_organisation',
]);
const SHARED_CHANNEL = Object.assign(new Error('approval channel shared through Slack Connect'), {
  data: { error: 'shared_with_another_organisation' },
});

/** Posting requests to admins, keeping every copy up to date, telling requesters, expiring old requests. */
export async function registerSeatJobs(deps: Deps): Promise<void> {
  const { jobs, orm, slack, seats, admins, logger } = deps;

  async function load(requestId: string) {
    const em = orm.em.fork();
    // The permission set is shown on the admins' message: an admin set is said in bold.
    const request = await em.findOne(SeatRequest, requestId, { populate: ['account', 'permissionSet'] });
    return { em, request };
  }

  async function updateCopies(request: ISeatRequest, em: ReturnType<typeof orm.em.fork>) {
    const usage = await seats.usage(em, request.account.getEntity());
    const message = requestMessage(request, usage);
    for (const copy of request.messages) {
      await slack.chat.update({ channel: copy.channel, ts: copy.ts, ...message }).catch((err) => {
        // Slack being busy postpones the whole refresh (it redraws every copy); any other refusal is logged.
        if (isSlackBusy(err)) throw err;
        logger.warn({ err, requestId: request.id }, 'could not update a seat request message');
      });
    }
  }

  /** The request's status as stored now: an admin may decide it while its copies are being posted. */
  async function pending(em: ReturnType<typeof orm.em.fork>, requestId: string): Promise<boolean> {
    const [row] = await query<{ status: string }>(
      em,
      sql`select status from seat_request where id = ${requestId}`,
    );
    return row?.status === 'pending';
  }

  /**
   * A decision redraws the copies saved when its job runs. One made while copies were still being posted
   * may have missed the later ones, so once every copy posted is saved, a decided request is redrawn again.
   */
  async function redrawIfDecided(em: ReturnType<typeof orm.em.fork>, requestId: string) {
    if (!(await pending(em, requestId))) await jobs.send(SEAT_JOBS.refreshRequest, { requestId });
  }

  await jobs.define<RequestJob>(SEAT_JOBS.postRequest, async ({ requestId }) => {
    const { em, request } = await load(requestId);
    if (!request) return;
    if (request.status !== 'pending') {
      // A retry after a run that posted copies and then failed: the decision may not have seen them all.
      if (request.messages.length) await jobs.send(SEAT_JOBS.refreshRequest, { requestId });
      return;
    }
    const account = request.account.getEntity();
    // A channel that refused the request once is not tried again: a retry finishes the DMs to the admins.
    const refused = request.payload.channelRefused as { channel: string; code: string } | undefined;
    const channel = refused ? null : (account.approvalChannelId ?? null);
    let targets = channel ? [channel] : await admins.adminIds(em, account);
    let message = requestMessage(request, await seats.usage(em, account));
    if (refused) message = withChannelRefused(message, refused.channel, refused.code);
    if (channel && !request.messages.length) {
      // The approval channel may have been archived, or Roster removed from it: the request goes to every
      // admin by DM instead, and they are told why, so it is never left unseen.
      try {
        // A channel shared with another organisation since it was chosen (Slack Connect) would show them the
        // requester's and the person's names and addresses: the admins are asked by DM instead.
        const info = await slack.conversations.info({ channel });
        const shared = info.channel as
          | { is_ext_shared?: boolean; is_pending_ext_shared?: boolean }
          | undefined;
        if (shared?.is_ext_shared || shared?.is_pending_ext_shared) throw SHARED_CHANNEL;
        const res = await slack.chat.postMessage({ channel, ...message });
        request.messages = [{ channel: res.channel ?? channel, ts: res.ts ?? '', target: channel }];
        await em.flush();
        await redrawIfDecided(em, request.id);
        return;
      } catch (err) {
        const code = (err as { data?: { error?: string } }).data?.error;
        if (!code || !CHANNEL_GONE.has(code)) throw err;
        logger.warn(
          { requestId, channel, slackError: code },
          'approval channel refused a seat request; asking admins by DM',
        );
        // Merged into the stored payload in SQL, and only while the request waits: an admin deciding it
        // meanwhile wrote the payload too, and the copy loaded with this job would undo their decision.
        const [waiting] = await query<{ id: string }>(
          em,
          sql`update seat_request set payload = payload || ${json({ channelRefused: { channel, code } })}::jsonb
              where id = ${request.id} and status = 'pending' returning id`,
        );
        if (!waiting) return;
        targets = await admins.adminIds(em, account);
        message = withChannelRefused(message, channel, code);
      }
    }
    if (targets.length === 0) {
      logger.warn({ requestId }, 'no admin to ask for a seat request');
      await slack.chat.postMessage({
        channel: request.requestedBy,
        text: `:warning: Roster found no admin to approve the seat for ${request.email}. Ask a workspace admin to set an approval channel with \`/seats channel #channel\`.`,
      });
      return;
    }
    // Posted copies are saved one by one, so a retry after a failure posts only the missing ones.
    // Posting to many admins takes minutes at Slack's pace: once an admin has decided, the rest are not
    // sent a request they can no longer act on.
    const posted = new Set(request.messages.map((m) => m.target ?? m.channel));
    for (const target of targets) {
      if (posted.has(target)) continue;
      if (!(await pending(em, request.id))) break;
      const res = await slack.chat.postMessage({ channel: target, ...message });
      request.messages = [...request.messages, { channel: res.channel ?? target, ts: res.ts ?? '', target }];
      await em.flush();
    }
    await redrawIfDecided(em, request.id);
  });

  await jobs.define<RequestJob>(SEAT_JOBS.refreshRequest, async ({ requestId }) => {
    const { em, request } = await load(requestId);
    if (request) await updateCopies(request, em);
  });

  await jobs.define<RequestJob>(SEAT_JOBS.requestDecided, async ({ requestId }) => {
    const { em, request } = await load(requestId);
    if (!request) return;
    await updateCopies(request, em);
    if (request.payload.requesterNotified) return;
    const tell = seats.flow(request.kind)?.tell;
    if (tell) await tell(request);
    else
      await slack.chat.postMessage({
        channel: request.requestedBy,
        text: outcomeForRequester(request, request.payload.outcome as string | undefined),
      });
    request.payload = { ...request.payload, requesterNotified: true };
    await em.flush();
  });

  await jobs.define(SEAT_JOBS.expireRequests, async () => {
    const expired = await seats.expire(orm.em.fork());
    if (expired) logger.info({ expired }, 'seat requests expired');
  });
  await jobs.boss.schedule(SEAT_JOBS.expireRequests, '*/15 * * * *');

  // The kept seat counts, checked against the people once a night (see SeatService.recount).
  await jobs.define(SEAT_JOBS.recount, async () => {
    for (const fixed of await seats.recount(orm.em.fork())) {
      logger.warn(
        fixed,
        'the kept count of paid seats differed from the people holding one; it was put right',
      );
    }
  });
  await jobs.boss.schedule(SEAT_JOBS.recount, '23 3 * * *');
}
