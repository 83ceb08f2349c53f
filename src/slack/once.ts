import { randomUUID } from 'node:crypto';
import type { EntityManager } from '@mikro-orm/postgresql';
import { query, sql } from '../db/sql.ts';
import { TryLater } from '../shared/jobs.ts';
import type { Logger } from '../shared/logger.ts';

/**
 * True the first time a key is seen, false for every repeat: Slack retries a delivery it thinks was
 * lost, and a person can double-click. Keys are a view id and hash, an event id, an action's timestamp.
 */
export async function firstTime(em: EntityManager, key: string): Promise<boolean> {
  const rows = await query<{ key: string }>(
    em,
    sql`insert into slack_receipt (key) values (${key}) on conflict (key) do nothing returning key`,
  );
  return rows.length === 1;
}

/** How long a claim on once-only work lasts unless renewed (every third of it while the work runs). */
export const ONCE_LEASE_MS = 60_000;
/** How soon a job that found the same work claimed by another looks again. */
export const ONCE_POLL_MS = 5_000;

/** What once-only work is given: what an earlier try noted before it stopped, and a way to note. */
export type OnceRun = {
  /** What an earlier try that did not finish noted (the id of the file it was uploading), or null. */
  noted: string | null;
  /** Records `value` for a later try to check, should this one stop before the work is done. */
  note(value: string): Promise<void>;
};

/**
 * Does `work` (which calls Slack) once per key, without a transaction open across the calls: a short
 * statement claims the key with a lease, renewed while the work runs; another marks it done once the work
 * succeeded. A repeat of finished work does nothing. A copy that finds the key claimed by another worker
 * is told to try again shortly (TryLater), and takes the work over if the claim lapses (its worker died).
 * Work that fails gives the claim back at once, for its retry. What stays possible is a worker dying after
 * Slack did the work and before it was marked done: `work` finds what it noted and checks with Slack.
 * Returns whether the work ran now.
 */
export async function onceAcross(
  em: EntityManager,
  key: string,
  work: (run: OnceRun) => Promise<void>,
  log?: Logger,
): Promise<boolean> {
  const holder = randomUUID();
  const lease = ONCE_LEASE_MS / 1000;
  const [claim] = await query<{ noted: string | null }>(
    em,
    sql`insert into slack_once (key, holder, lease_until) values (${key}, ${holder}, now() + make_interval(secs => ${lease}))
        on conflict (key) do update set holder = excluded.holder, lease_until = excluded.lease_until
          where slack_once.done_at is null and (slack_once.lease_until is null or slack_once.lease_until < now())
        returning noted`,
  );
  if (!claim) {
    const [row] = await query<{ done_at: Date | null }>(
      em,
      sql`select done_at from slack_once where key = ${key}`,
    );
    if (row?.done_at) return false;
    throw new TryLater(
      ONCE_POLL_MS,
      `${key} is being done by another worker`,
      'the same work is being done by another worker',
    );
  }
  const mine = sql`key = ${key} and holder = ${holder}`;
  const renew = setInterval(() => {
    query(
      em.fork(),
      sql`update slack_once set lease_until = now() + make_interval(secs => ${lease}) where ${mine}`,
    ).catch((err: unknown) => log?.warn({ err, key }, 'could not renew a claim on once-only work'));
  }, ONCE_LEASE_MS / 3);
  renew.unref();
  try {
    await work({
      noted: claim.noted,
      async note(value) {
        const kept = await query<{ key: string }>(
          em,
          sql`update slack_once set noted = ${value} where ${mine} returning key`,
        );
        if (!kept.length) throw new Error(`the claim on ${key} lapsed while its work ran`);
      },
    });
  } catch (err) {
    clearInterval(renew);
    await query(em.fork(), sql`update slack_once set holder = null, lease_until = null where ${mine}`).catch(
      () => {},
    );
    throw err;
  }
  clearInterval(renew);
  await query(
    em,
    sql`update slack_once set done_at = now(), holder = null, lease_until = null where ${mine}`,
  );
  return true;
}

export const PRUNE_RECEIPTS_JOB = 'slack.prune-receipts';

/** Receipts older than `days` are removed: Slack retries within minutes, so a week is ample. */
export async function pruneReceipts(em: EntityManager, days = 7): Promise<number> {
  const rows = await query<{ key: string }>(
    em,
    sql`delete from slack_receipt where created_at < now() - make_interval(days => ${days}::int) returning key`,
  );
  const done = await query<{ key: string }>(
    em,
    sql`delete from slack_once where created_at < now() - make_interval(days => ${days}::int) returning key`,
  );
  return rows.length + done.length;
}
