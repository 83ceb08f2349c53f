import { Writable } from 'node:stream';
import { initORM, type ORM } from '../src/db/orm.ts';
import { ensureAccount } from '../src/features/accounts/account.service.ts';
import { Contact } from '../src/features/contacts/contact.entity.ts';
import { JobQueue, TryLater } from '../src/shared/jobs.ts';
import { createLogger } from '../src/shared/logger.ts';
import { TokenRefused } from '../src/slack/token-watch.ts';
import { eventually } from './support/app.ts';
import { createTestDatabase, type TestDatabase } from './support/database.ts';

let db: TestDatabase;
let orm: ORM;
let jobs: JobQueue;
const ran: string[] = [];

beforeAll(async () => {
  db = await createTestDatabase();
  orm = await initORM(db.url);
  jobs = await JobQueue.start(db.url, createLogger('silent'));
  await jobs.define<{ name: string }>('test.record', async ({ name }) => void ran.push(name));
});
afterAll(async () => {
  await jobs.stop();
  await orm.close(true);
  await db.drop();
});

describe('background jobs', () => {
  it('enqueued in a transaction, exist only if it commits', async () => {
    const account = await ensureAccount(orm.em.fork(), 'T_JOBS');
    await orm.em.fork().transactional(async (tx) => {
      tx.create(Contact, { account, name: 'Committed' });
      await tx.flush();
      await jobs.send('test.record', { name: 'committed' }, { em: tx });
    });
    await expect(
      orm.em.fork().transactional(async (tx) => {
        tx.create(Contact, { account, name: 'Rolled back' });
        await tx.flush();
        await jobs.send('test.record', { name: 'rolled back' }, { em: tx });
        throw new Error('something failed half way');
      }),
    ).rejects.toThrow('something failed half way');

    await eventually(() => ran.includes('committed'));
    await jobs.send('test.record', { name: 'marker' });
    await eventually(() => ran.includes('marker'));
    expect(ran).not.toContain('rolled back');
    expect(await orm.em.fork().count(Contact, { name: 'Rolled back' })).toBe(0);
    const [row] = await orm.em
      .fork()
      .getConnection()
      .execute<{ n: number }[]>(
        `select count(*)::int as n from pgboss.job where data->>'name' = 'rolled back'`,
      );
    expect(row?.n).toBe(0);
  });

  it('reschedule a job that must wait for Slack with its singleton key, one per key in a stately queue', async () => {
    const tries = new Map<string, number>();
    await jobs.define<{ key: string }>(
      'test.paced',
      async ({ key }) => {
        const n = (tries.get(key) ?? 0) + 1;
        tries.set(key, n);
        if (n === 1) throw new TryLater(1000, 'Slack is busy');
      },
      { policy: 'stately' },
    );
    await jobs.send('test.paced', { key: 'a' }, { singletonKey: 'a' });
    await jobs.send('test.paced', { key: 'b' }, { singletonKey: 'b' });
    // Both come back: keyless copies would share one slot of the stately queue and the second be dropped.
    await eventually(() => tries.get('a') === 2 && tries.get('b') === 2, 15_000);
    const keys = await orm.em
      .fork()
      .getConnection()
      .execute<{ singleton_key: string | null }[]>(
        `select singleton_key from pgboss.job where name = 'test.paced' order by created_on`,
      );
    expect(keys.map((k) => k.singleton_key).sort()).toEqual(['a', 'a', 'b', 'b']);
  });

  it('count the attempts a job used before it waited for Slack: it still comes to its last one and ends there', async () => {
    const seen: { retryCount: number; createdOn: string; data: object }[] = [];
    let first: Date | undefined;
    await jobs.define<{ invitationId: string }>(
      'test.waits-then-fails',
      async (data, { retryCount, createdOn }) => {
        seen.push({ retryCount, createdOn: createdOn.toISOString(), data });
        first ??= createdOn;
        // Fails, then meets Slack's pace, then fails again: as a delivery whose mail server refuses for now
        // and whose look-up of the address in Slack is rate limited on some attempts.
        if (seen.length % 2 === 0) throw new TryLater(1000, 'Slack is busy');
        throw new Error('the mail server did not take it for now');
      },
      { retryLimit: 2, retryDelay: 1, retryBackoff: false },
    );
    await jobs.send('test.waits-then-fails', { invitationId: 'i-1' });
    await eventually(async () => {
      const [row] = await orm.em
        .fork()
        .getConnection()
        .execute<{ n: number }[]>(
          `select count(*)::int as n from pgboss.job where name = 'test.waits-then-fails' and state in ('created', 'retry', 'active')`,
        );
      return seen.length >= 3 && row?.n === 0;
    }, 30_000);
    await new Promise((r) => setTimeout(r, 2500));
    // Three failed attempts (the first and its two retries), with a wait for Slack between each: no more.
    expect(seen.map((s) => s.retryCount)).toEqual([0, 1, 1, 2, 2]);
    expect(new Set(seen.map((s) => s.createdOn))).toEqual(new Set([first!.toISOString()]));
    // The handler sees the job's own data only.
    expect(seen.every((s) => JSON.stringify(s.data) === '{"invitationId":"i-1"}')).toBe(true);
  }, 60_000);

  it('log the jobs of a queue queued again to wait in one line a while, saying how many and why, not one per job', async () => {
    const lines: Record<string, any>[] = [];
    const sink = new Writable({
      write(chunk, _encoding, done) {
        for (const line of String(chunk).split('\n').filter(Boolean)) lines.push(JSON.parse(line));
        done();
      },
    });
    const windowMs = 2000;
    const queue = await JobQueue.start(db.url, createLogger('info', sink), { waitLogMs: windowMs });
    const waiting = 120;
    let tries = 0;
    const started = Date.now();
    try {
      // Deliveries held back while Slack refuses the bot token: each is queued again for the next check.
      await queue.define(
        'test.token-refused',
        async () => {
          tries += 1;
          throw new TokenRefused('chat.postMessage', 'invalid_auth', 600_000);
        },
        { localConcurrency: 20 },
      );
      await queue.boss.insert(
        'test.token-refused',
        Array.from({ length: waiting }, (_, i) => ({ data: { i } })),
      );
      await eventually(() => tries >= waiting, 60_000);
      const of = () => lines.filter((l) => (l.queue ?? l.job) === 'test.token-refused');
      // Every one is counted, once, in the lines for its queue.
      await eventually(
        () => of().reduce((n, l) => n + ((l.waiting as number | undefined) ?? 1), 0) === waiting,
        windowMs * 3,
      );
      const elapsed = Date.now() - started;
      expect(of().length).toBeLessThanOrEqual(Math.ceil(elapsed / windowMs) + 1);
      expect(of().length).toBeLessThan(waiting / 10);
      for (const l of of()) {
        expect(l.level).toBe(30);
        expect(l.msg).toMatch(
          /^\d+ jobs? of test\.token-refused (waits|queued again to wait in the last 2 s): Slack no longer accepts the bot token \(invalid_auth\)/,
        );
      }
      expect(of().at(-1)!.msg).toMatch(/^\d+ jobs? of test\.token-refused queued again/);
    } finally {
      await queue.stop();
    }
  }, 120_000);

  it('hand a job running at a stop back to the queue: its signal is aborted, and what it throws then is no warning', async () => {
    const lines: Record<string, any>[] = [];
    const sink = new Writable({
      write(chunk, _encoding, done) {
        for (const line of String(chunk).split('\n').filter(Boolean)) lines.push(JSON.parse(line));
        done();
      },
    });
    const queue = await JobQueue.start(db.url, createLogger('info', sink));
    let started = false;
    let thrown = false;
    await queue.define('test.long', async (_data, { signal }) => {
      started = true;
      await new Promise((aborted) => signal.addEventListener('abort', aborted, { once: true }));
      thrown = true;
      // What a query says once the stop has closed the database connections under the job.
      throw new Error('driver has already been destroyed');
    });
    const id = await queue.send('test.long', {});
    await eventually(() => started, 15_000);
    await queue.stop(0);
    await eventually(() => thrown && lines.some((l) => l.job === 'test.long' && l.level === 30));
    expect(lines.filter((l) => l.job === 'test.long').map((l) => [l.level, l.msg, l.err])).toEqual([
      [30, 'job handed back by the stop; it runs again after the next start', undefined],
    ]);
    const [job] = await orm.em
      .fork()
      .getConnection()
      .execute<{ state: string }[]>(`select state from pgboss.job where id = ?`, [id]);
    expect(job?.state).toBe('retry');
  });

  it('abort no signal of a job that merely outlives its expiry: only a stop ends a job early', async () => {
    let seen: boolean | undefined;
    await jobs.define(
      'test.overdue',
      async (_data, { signal }) => {
        await new Promise((r) => setTimeout(r, 2500));
        seen = signal.aborted;
      },
      { expireInSeconds: 1, retryLimit: 0 },
    );
    await jobs.send('test.overdue', {});
    await eventually(() => seen !== undefined, 15_000);
    expect(seen).toBe(false);
  });

  it('name a few reasons in the line of a queue whose jobs each wait for their own, and count the rest', async () => {
    const lines: Record<string, any>[] = [];
    const sink = new Writable({
      write(chunk, _encoding, done) {
        for (const line of String(chunk).split('\n').filter(Boolean)) lines.push(JSON.parse(line));
        done();
      },
    });
    const queue = await JobQueue.start(db.url, createLogger('info', sink), { waitLogMs: 1000 });
    let tries = 0;
    try {
      await queue.define<{ i: number }>(
        'test.own-reasons',
        async ({ i }) => {
          tries += 1;
          throw new TryLater(600_000, `record ${i} is held by another job`);
        },
        { localConcurrency: 10 },
      );
      await queue.boss.insert(
        'test.own-reasons',
        Array.from({ length: 20 }, (_, i) => ({ data: { i } })),
      );
      await eventually(() => tries >= 20, 30_000);
      const of = () => lines.filter((l) => l.queue === 'test.own-reasons');
      await eventually(() => of().reduce((n, l) => n + (l.waiting as number), 0) === 20, 5000);
      for (const l of of()) {
        expect(l.msg.match(/is held by another job/g)?.length ?? 0).toBeLessThanOrEqual(5);
        expect(Object.keys(l.reasons ?? {}).length).toBeLessThanOrEqual(5);
      }
      expect(of().some((l) => /; \d+ other reasons$/.test(l.msg))).toBe(true);
    } finally {
      await queue.stop();
    }
  }, 60_000);

  it('refuse a job name nobody handles, instead of queueing it forever', async () => {
    await expect(jobs.send('nobody.handles', {})).rejects.toThrow('No job named nobody.handles is defined');
  });

  it('take the retry and expiry options of the code on a queue an earlier version created, however many instances start at once', async () => {
    type Row = {
      retry_limit: number;
      retry_delay: number;
      retry_backoff: boolean;
      retry_delay_max: number | null;
      expire_seconds: number;
      notify: boolean;
      updated_on: Date;
    };
    const queue = async (name: string) =>
      (
        await orm.em
          .fork()
          .getConnection()
          .execute<Row[]>(
            `select retry_limit, retry_delay, retry_backoff, retry_delay_max, expire_seconds, notify, updated_on
               from pgboss.queue where name = ?`,
            [name],
          )
      )[0];
    // As an earlier version left it: fewer, slower retries capped at a minute, a short expiry, no NOTIFY.
    await jobs.boss.createQueue('test.policy', {
      retryLimit: 8,
      retryDelay: 5,
      retryBackoff: true,
      retryDelayMax: 60,
      expireInSeconds: 120,
    });
    const options = { retryLimit: 30, retryDelay: 1, localConcurrency: 1 };
    const other = await JobQueue.start(db.url, createLogger('silent'), { works: () => false });
    try {
      // Two instances starting at once: neither fails, and both leave the code's options.
      await Promise.all([
        jobs.define('test.policy', async () => {}, options),
        other.define('test.policy', async () => {}, options),
        // A queue neither has seen yet is created once, with the same options.
        jobs.define('test.policy-new', async () => {}, options),
        other.define('test.policy-new', async () => {}, options),
      ]);
    } finally {
      await other.stop();
    }
    const expected = {
      retry_limit: 30,
      retry_delay: 1,
      retry_backoff: true,
      // Dropped from the code, so dropped from the queue.
      retry_delay_max: null,
      expire_seconds: 900,
      notify: true,
    };
    const updated = await queue('test.policy');
    expect(updated).toMatchObject(expected);
    expect(await queue('test.policy-new')).toMatchObject(expected);

    // A job sent now carries them; defining the queue again with the same options writes nothing.
    const id = (await jobs.send('test.policy', {}))!;
    const [job] = await jobs.boss.findJobs('test.policy', { id, limit: 1 });
    expect(job).toMatchObject({ retryLimit: 30, retryDelay: 1, expireInSeconds: 900 });
    await jobs.define('test.policy', async () => {}, options);
    expect((await queue('test.policy'))?.updated_on).toEqual(updated?.updated_on);
  });
});
