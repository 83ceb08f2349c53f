import type { EntityManager } from '@mikro-orm/postgresql';

/**
 * True the first time a key is seen, false for every repeat: Slack retries a delivery it thinks was
 * lost, and a person can double-click. Keys are a view id and hash, an event id, an action's timestamp.
 */
export async function firstTime(em: EntityManager, key: string): Promise<boolean> {
  const rows = await em
    .getConnection()
    .execute<{ key: string }[]>(
      'insert into slack_receipt (key) values (?) on conflict (key) do nothing returning key',
      [key],
      'all',
      em.getTransactionContext(),
    );
  return rows.length === 1;
}
