import { DeadlockException } from '@mikro-orm/core';

/**
 * Runs `work` (one transaction) again when Postgres ended it as a deadlock's victim: the other transaction
 * has then gone on, and running again gives the answer the person would have had a moment later. Postgres
 * advises exactly this; most paths take their locks in one order and never need it, but a CSV import's
 * batch takes contacts before the account's seats, the other way round from a conversion.
 */
export async function retryDeadlocks<T>(
  work: () => Promise<T>,
  attempts = 3,
  /** Another failure that running again resolves (the caller says why). */
  also?: (err: unknown) => boolean,
): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await work();
    } catch (err) {
      if (attempt >= attempts || !(err instanceof DeadlockException || also?.(err))) throw err;
    }
  }
}
