import type { App } from '@slack/bolt';
import type { Block } from '../../../slack/blocks.ts';
import { busyFor } from '../../../slack/later.ts';
import type { Deps } from '../../feature.ts';
import { INVITE_PROGRESS_JOB, type ProgressJob } from '../invite.progress.ts';
import type { InviteOutcome } from '../invite.service.ts';

/**
 * Shows the inviter their summary at once, and has a job follow the deliveries on it. When Slack asks
 * Roster to slow down, the job posts the summary once the Retry-After has passed: it is late, never lost.
 */
export async function tellInviter(
  deps: Deps,
  client: App['client'],
  inviter: string,
  outcomes: InviteOutcome[],
  summary: { text: string; blocks: Block[] },
): Promise<void> {
  const userIds = outcomes.flatMap((o) =>
    o.result !== 'exists' && 'sent' in o && o.sent ? [o.user.id] : [],
  );
  // A little before now: the invitations were created in the transaction that just committed.
  const job: ProgressJob = { inviter, userIds, since: new Date(Date.now() - 60_000).toISOString(), summary };
  try {
    const posted = await client.chat.postMessage({ channel: inviter, ...summary });
    if (!userIds.length) return;
    await deps.jobs.send(
      INVITE_PROGRESS_JOB,
      { ...job, channel: posted.channel, ts: posted.ts, shown: -1 },
      {
        startAfter: 2,
      },
    );
  } catch (err) {
    const waitMs = busyFor(err);
    if (waitMs === undefined) throw err;
    // Not before the Retry-After Slack gave: asking again sooner would only be refused again.
    await deps.jobs.send(INVITE_PROGRESS_JOB, job, { startAfter: Math.max(2, Math.ceil(waitMs / 1000)) });
  }
}
