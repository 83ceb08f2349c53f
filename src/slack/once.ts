import type { EntityManager } from '@mikro-orm/postgresql';
import { query, sql } from '../db/sql.ts';

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

export const PRUNE_RECEIPTS_JOB = 'slack.prune-receipts';

/** Receipts older than `days` are removed: Slack retries within minutes, so a week is ample. */
export async function pruneReceipts(em: EntityManager, days = 7): Promise<number> {
  const rows = await query<{ key: string }>(
    em,
    sql`delete from slack_receipt where created_at < now() - make_interval(days => ${days}::int) returning key`,
  );
  return rows.length;
}
