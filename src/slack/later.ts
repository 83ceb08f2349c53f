import type { EntityManager, MikroORM } from '@mikro-orm/postgresql';
import type {
  ChatDeleteArguments,
  ChatPostMessageArguments,
  ChatUpdateArguments,
  ViewsUpdateArguments,
  WebClient,
} from '@slack/web-api';
import { ErrorCode } from '@slack/web-api';
import { query, sql } from '../db/sql.ts';
import { type JobQueue, TryLater } from '../shared/jobs.ts';
import { messageGone, slackErrorCode } from './errors.ts';

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
      /**
       * Which redraw of the modal this is (see {@link issueRedraw}): a postponed one is dropped when a newer
       * redraw of the same modal was issued since.
       */
      seq?: number;
    };

/**
 * Registers the job that makes a postponed post, update, delete or modal redraw through the paced client;
 * while Slack is still busy the job is rescheduled (see TryLater), so the message is late, never lost. A
 * postponed modal redraw that a newer one has overtaken is dropped instead: made now, it would put back
 * what the newer one replaced.
 */
export async function defineSlackCalls(jobs: JobQueue, slack: WebClient, orm: MikroORM): Promise<void> {
  await jobs.define<LaterCall>(SLACK_CALL_JOB, async (call) => {
    const viewId = call.method === 'views.update' ? viewIdOf(call.args) : undefined;
    if (call.method === 'views.update' && call.seq !== undefined && viewId) {
      const latest = await latestRedraw(orm.em.fork(), viewId);
      if (latest !== null && latest > call.seq) {
        // What it was to show still reaches the person, as when the modal was redrawn under a stale hash.
        if (call.ifClosed) await slack.chat.postMessage(call.ifClosed);
        return;
      }
    }
    await make(slack, call).catch((err) => {
      // A message deleted meanwhile, or in a channel archived or left, has nothing left to change: done.
      // (Made at once instead, the error reaches whoever asked, who says so.)
      if ((call.method === 'chat.update' || call.method === 'chat.delete') && messageGone(err)) return;
      throw err;
    });
  });
}

/**
 * Numbers a redraw of the modal `viewId`, one more than the last issued: the number a postponed redraw
 * carries, to tell whether a newer redraw was issued since. Any instance issues them, in one statement.
 */
async function issueRedraw(em: EntityManager, viewId: string): Promise<number> {
  const [row] = await query<{ seq: string }>(
    em,
    sql`insert into slack_view_redraw (view_id, seq) values (${viewId}, 1)
        on conflict (view_id) do update set seq = slack_view_redraw.seq + 1, updated_at = now()
        returning seq`,
  );
  return Number(row?.seq ?? 0);
}

/** The number of the latest redraw issued for the modal `viewId`, or null when none was recorded. */
async function latestRedraw(em: EntityManager, viewId: string): Promise<number | null> {
  const [row] = await query<{ seq: string }>(
    em,
    sql`select seq from slack_view_redraw where view_id = ${viewId}`,
  );
  return row ? Number(row.seq) : null;
}

/** Forgets the redraw numbers of modals last redrawn more than `days` ago: no redraw is postponed that long. */
export async function pruneRedraws(em: EntityManager, days = 7): Promise<number> {
  const rows = await query<{ view_id: string }>(
    em,
    sql`delete from slack_view_redraw where updated_at < now() - make_interval(days => ${days}::int)
        returning view_id`,
  );
  return rows.length;
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

function viewIdOf(args: ViewsUpdateArguments): string | undefined {
  return 'view_id' in args && typeof args.view_id === 'string' ? args.view_id : undefined;
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
 * redrawn with the outcome of a click, taking down a post that should not be there). A modal redraw is
 * numbered in `em`'s database first, so a postponed one never overwrites a newer one.
 */
export async function nowOrLater(
  jobs: JobQueue,
  slack: WebClient,
  call: LaterCall,
  em?: EntityManager,
): Promise<boolean> {
  const viewId = call.method === 'views.update' ? viewIdOf(call.args) : undefined;
  if (call.method === 'views.update' && em && viewId) {
    call = { ...call, seq: await issueRedraw(em, viewId) };
  }
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
