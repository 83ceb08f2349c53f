import type { EntityManager } from '@mikro-orm/postgresql';

/** A sliding one-minute window per key, in memory: enough to stop a script hammering one instance. */
export class RateLimiter {
  private readonly hits = new Map<string, number[]>();
  private readonly windowMs: number;
  private readonly now: () => number;

  constructor(windowMs = 60_000, now: () => number = Date.now) {
    this.windowMs = windowMs;
    this.now = now;
  }

  allow(key: string, limit: number): boolean {
    const now = this.now();
    const recent = (this.hits.get(key) ?? []).filter((t) => now - t < this.windowMs);
    if (recent.length >= limit) {
      this.hits.set(key, recent);
      return false;
    }
    recent.push(now);
    this.hits.set(key, recent);
    if (this.hits.size > 10_000) {
      for (const [k, times] of this.hits)
        if (times.every((t) => now - t >= this.windowMs)) this.hits.delete(k);
    }
    return true;
  }

  wouldAllow(key: string, limit: number): boolean {
    const now = this.now();
    return (this.hits.get(key) ?? []).filter((t) => now - t < this.windowMs).length < limit;
  }
}

/** What the join pages need of a limiter: in memory (one process) or in Postgres (every instance). */
export type Limiter = {
  /**
   * Whether one more hit under `key` is allowed, and counts it. `tx`: a transaction already open, which
   * the check joins rather than taking a second connection from the pool while the first waits.
   */
  allow(key: string, limit: number, tx?: EntityManager): boolean | Promise<boolean>;
  /** Whether one more hit under `key` would be allowed, counting none. */
  wouldAllow(key: string, limit: number, tx?: EntityManager): boolean | Promise<boolean>;
};

/**
 * The same sliding window, kept in PostgreSQL (table rate_limit_hit) so every Roster instance on the
 * database counts together. Each check holds a transaction lock on its key, so two instances never both
 * take the last allowed hit.
 */
export class SharedRateLimiter implements Limiter {
  private readonly em: EntityManager;
  private readonly windowMs: number;
  private checks = 0;

  constructor(em: EntityManager, windowMs = 60_000) {
    this.em = em;
    this.windowMs = windowMs;
  }

  async allow(key: string, limit: number, within?: EntityManager): Promise<boolean> {
    // Now and then, forget the keys nobody has used within the window.
    if (++this.checks % 500 === 0) {
      await this.em
        .fork()
        .getConnection()
        .execute('delete from rate_limit_hit where at < now() - make_interval(secs => ?)', [
          this.windowMs / 1000,
        ]);
    }
    return (within ?? this.em.fork()).transactional(async (tx) => {
      const run = (sql: string, params: unknown[]) =>
        tx.getConnection().execute<Record<string, unknown>[]>(sql, params, 'all', tx.getTransactionContext());
      await run('select pg_advisory_xact_lock(hashtextextended(?, 0))', [`rate:${key}`]);
      await run('delete from rate_limit_hit where key = ? and at <= now() - make_interval(secs => ?)', [
        key,
        this.windowMs / 1000,
      ]);
      const inserted = await run(
        `insert into rate_limit_hit (key, at)
         select ?, now() where (select count(*) from rate_limit_hit where key = ?) < ? returning key`,
        [key, key, limit],
      );
      return inserted.length > 0;
    });
  }

  async wouldAllow(key: string, limit: number, within?: EntityManager): Promise<boolean> {
    const em = within ?? this.em.fork();
    const [row] = await em
      .getConnection()
      .execute<{ n: number }[]>(
        'select count(*)::int as n from rate_limit_hit where key = ? and at > now() - make_interval(secs => ?)',
        [key, this.windowMs / 1000],
        'all',
        em.getTransactionContext(),
      );
    return (row?.n ?? 0) < limit;
  }
}
