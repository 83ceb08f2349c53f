import { query, sql } from '../../db/sql.ts';
import type { Block } from '../../slack/blocks.ts';
import type { Deps } from '../feature.ts';
import { withProgress } from './slack/blocks.ts';

export const INVITE_PROGRESS_JOB = 'invites.progress';

/**
 * The inviter's summary of one round of invitations, kept up to date as they are delivered: which users,
 * since when, where the summary is (none yet while Slack asked Roster to wait), and the count last shown.
 */
export type ProgressJob = {
  inviter: string;
  userIds: string[];
  since: string;
  summary: { text: string; blocks: Block[] };
  channel?: string;
  ts?: string;
  shown?: number;
};

/** How often the summary is redrawn while deliveries go on, and when it stops being followed. */
const EVERY_SECONDS = 3;
const FOLLOW_MS = 6 * 3600_000;

/**
 * Counts of a round's invitations: delivered, failed (Roster stopped trying: an address refused for good,
 * or out of retries), and settled (delivered, failed, cancelled or replaced since).
 */
async function counts(deps: Deps, job: ProgressJob) {
  const [row] = await query<{
    total: number;
    delivered: number;
    by_dm: number;
    failed: number;
    settled: number;
  }>(
    deps.orm.em.fork(),
    sql`select count(*)::int as total,
          count(*) filter (where delivered_at is not null)::int as delivered,
          count(*) filter (where delivery_method = 'slack_dm')::int as by_dm,
          count(*) filter (where delivered_at is null and delivery_failed_at is not null
            and status = 'pending')::int as failed,
          count(*) filter (where delivered_at is not null or status <> 'pending'
            or delivery_failed_at is not null)::int as settled
        from invitation where user_id = any(${job.userIds}::uuid[]) and created_at >= ${job.since}::timestamptz`,
  );
  return row ?? { total: 0, delivered: 0, by_dm: 0, failed: 0, settled: 0 };
}

/** The summary's last line, once every invitation of the round is delivered, failed or withdrawn. */
function doneLine(c: { delivered: number; by_dm: number; failed: number }): string {
  const how = `${c.by_dm} by Slack DM, ${c.delivered - c.by_dm} by email`;
  if (!c.failed) {
    return `:white_check_mark: All ${c.delivered} invitation${c.delivered === 1 ? '' : 's'} delivered: ${how}.`;
  }
  const all = c.delivered + c.failed;
  return `:warning: ${c.delivered} of ${all} invitation${all === 1 ? '' : 's'} delivered (${how}); ${c.failed} could not be: a DM from Roster says why for each, and \`/invite pending\` lists ${c.failed === 1 ? 'it' : 'them'} with Resend.`;
}

/**
 * One look at a round's deliveries: the summary is posted if Slack had asked Roster to wait when it was
 * due, redrawn when the count moved, and followed again a few seconds later until every invitation is
 * settled. Bulk work: it goes through the paced client, and waits when Slack asks.
 */
export async function followProgress(deps: Deps, job: ProgressJob): Promise<void> {
  const c = await counts(deps, job);
  const done = c.settled >= c.total;
  const line = done
    ? doneLine(c)
    : `:outbox_tray: Delivering: ${c.delivered} of ${c.total} sent so far. Slack paces Roster's messages, so a large round takes a little while; this line keeps count.`;
  const message = c.total ? withProgress(job.summary, line) : job.summary;
  let next = { ...job };
  if (!job.ts) {
    const posted = await deps.slack.chat.postMessage({ channel: job.inviter, ...message });
    next = { ...next, channel: posted.channel ?? job.inviter, ts: posted.ts ?? '', shown: c.delivered };
  } else if (job.shown !== c.delivered || done) {
    await deps.slack.chat.update({ channel: job.channel ?? job.inviter, ts: job.ts, ...message });
    next = { ...next, shown: c.delivered };
  }
  if (done || Date.now() - Date.parse(job.since) > FOLLOW_MS) return;
  await deps.jobs.send(INVITE_PROGRESS_JOB, next, { startAfter: EVERY_SECONDS });
}

export async function defineProgress(deps: Deps): Promise<void> {
  await deps.jobs.define<ProgressJob>(INVITE_PROGRESS_JOB, (job) => followProgress(deps, job), {
    retryLimit: 5,
    retryDelay: 5,
  });
}
