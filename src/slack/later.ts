import type {
  ChatDeleteArguments,
  ChatPostMessageArguments,
  ChatUpdateArguments,
  ViewsUpdateArguments,
  WebClient,
} from '@slack/web-api';
import { ErrorCode } from '@slack/web-api';
import { type JobQueue, TryLater } from '../shared/jobs.ts';
import { slackErrorCode } from './errors.ts';

/** A message posted, updated or deleted, or a modal redrawn, by a job when Slack could not take it at once. */
export const SLACK_CALL_JOB = 'slack.call';

type LaterCall =
  | { method: 'chat.postMessage'; args: ChatPostMessageArguments }
  | { method: 'chat.update'; args: ChatUpdateArguments }
  | { method: 'chat.delete'; args: ChatDeleteArguments }
  | {
      method: 'views.update';
      args: ViewsUpdateArguments;
      /**
       * Posted instead when the modal is gone (closed meanwhile) or was redrawn meanwhile (the `hash` given is
       * stale): what it was to show still reaches the person.
       */
      ifClosed?: ChatPostMessageArguments;
    };

/**
 * Registers the job that makes a postponed post, update, delete or modal redraw through the paced client;
 * while Slack is still busy the job is rescheduled (see TryLater), so the message is late, never lost.
 */
export async function defineSlackCalls(jobs: JobQueue, slack: WebClient): Promise<void> {
  await jobs.define<LaterCall>(SLACK_CALL_JOB, async (call) => {
    await make(slack, call);
  });
}

async function make(slack: WebClient, call: LaterCall): Promise<void> {
  if (call.method === 'chat.postMessage') await slack.chat.postMessage(call.args);
  else if (call.method === 'chat.update') await slack.chat.update(call.args);
  else if (call.method === 'chat.delete') await slack.chat.delete(call.args);
  else if (call.method === 'views.update') {
    try {
      await slack.views.update(call.args);
    } catch (err) {
      // `hash_conflict`: the modal was redrawn meanwhile (another click), so this redraw, which carried the
      // hash it was made for, would never be taken; the person still gets what it was to show.
      const error = slackErrorCode(err);
      if (!call.ifClosed || (error !== 'not_found' && error !== 'hash_conflict')) throw err;
      await slack.chat.postMessage(call.ifClosed);
    }
  }
}

/** How long Slack asked to wait, when `err` says "not now"; undefined for any other error. */
export function busyFor(err: unknown): number | undefined {
  if (err instanceof TryLater) return err.retryInMs;
  const e = err as { code?: string; retryAfter?: number };
  if (e?.code === ErrorCode.RateLimitedError) return Math.max(1, e.retryAfter ?? 1) * 1000;
  return undefined;
}

/**
 * Makes the call now; when Slack answers "slow down" (a 429 to the client that answers people, or the
 * paced client's turn far away), queues it to be made once Slack allows. True when it was made now.
 * Only for messages whose lateness is harmless and that are made once (a summary, a final update, a modal
 * redrawn with the outcome of a click, taking down a post that should not be there).
 */
export async function nowOrLater(jobs: JobQueue, slack: WebClient, call: LaterCall): Promise<boolean> {
  try {
    await make(slack, call);
    return true;
  } catch (err) {
    const waitMs = busyFor(err);
    if (waitMs === undefined) throw err;
    await jobs.boss.send(SLACK_CALL_JOB, call, { startAfter: Math.ceil(waitMs / 1000) });
    return false;
  }
}
