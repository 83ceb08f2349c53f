import type { EntityManager } from '@mikro-orm/postgresql';
import { CompiledQuery, type Transaction } from 'kysely';

export type Exec = <T = Record<string, unknown>>(sql: string, params?: unknown[]) => Promise<T[]>;

/**
 * Raw SQL on the EntityManager's connection (inside its transaction, if any), written with Postgres'
 * own `$1..$n` placeholders and sent as bind parameters: batches carry their rows as one JSON
 * parameter, which must never be spliced into the SQL text. The text is sent as written, so jsonb's
 * `?` operator keeps working.
 */
export function sql(em: EntityManager): Exec {
  return async (query, params = []) => {
    const trx = em.getTransactionContext<Transaction<unknown>>();
    const result = await (trx ?? em.getConnection().getClient()).executeQuery(
      CompiledQuery.raw(query, params),
    );
    return result.rows as never;
  };
}

export const json = (value: unknown) => JSON.stringify(value);
