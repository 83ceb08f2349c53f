import type { Roster } from '../../../src/app.ts';
import { query, sql } from '../../../src/db/sql.ts';
import { DIRECTORY_JOBS } from '../../../src/features/directory/index.ts';
import { HandedBack } from '../../../src/shared/jobs.ts';
import {
  DEFAULT_MEMBERS,
  eventually,
  jobsDrained,
  startSecondInstance,
  startTestApp,
  type TestApp,
} from '../../support/app.ts';
import type { Member } from '../../support/slack-standin.ts';

// Two Roster instances on one database, each with its own job workers: the Slack directory is walked by
// one sync at a time, whichever instance takes the job, and a sync left behind by a dead instance is
// taken over once its lease lapses.

const CROWD = 2_500;
const crowd: Member[] = Array.from({ length: CROWD }, (_, i) => ({
  id: `UCROWD${String(i).padStart(5, '0')}`,
  name: `person${i}`,
  email: `person${i}@acme.test`,
}));
const PAGES = Math.ceil((CROWD + DEFAULT_MEMBERS.length) / 1000);

let t: TestApp;
let second: Roster;

const calls = (method: string) => t.standin.calls.filter((c) => c.method === method).length;

beforeAll(async () => {
  t = await startTestApp({ members: [...DEFAULT_MEMBERS, ...crowd], tiers: { scale: 10 } });
  await eventually(
    async () => (await t.roster.deps.directory.syncedAt(t.em(), await t.account())) !== null,
    20_000,
  );
  second = await startSecondInstance(t, { env: { BULK_JOBS: 'inline' } });
  // The second instance's own start-up sync finds the mirror fresh.
  await jobsDrained(t.em(), { queues: [DIRECTORY_JOBS.sync] });
}, 60_000);
afterAll(async () => {
  await second?.stop();
  await t.stop();
});

/** As before any sync has finished: the next sync walks the whole directory. */
async function unsynced(): Promise<string> {
  const account = await t.account();
  await query(
    t.em(),
    sql`update slack_directory_sync set finished_at = null, cursor = null, lease_holder = null,
          lease_until = null where account_id = ${account.id}`,
  );
  return account.id;
}

describe('the Slack directory sync on two instances', () => {
  it('walks users.list once when both instances take a sync job at the same moment', async () => {
    await unsynced();
    // Slow pages, so the first sync is surely still walking when the other instance takes the second job.
    t.standin.delayNext('users.list', 700, PAGES * 2);
    const before = calls('users.list');
    const since = new Date();
    await t.roster.deps.jobs.send(DIRECTORY_JOBS.sync, {});
    await second.deps.jobs.send(DIRECTORY_JOBS.sync, {});
    await jobsDrained(t.em(), { queues: [DIRECTORY_JOBS.sync], timeoutMs: 30_000 });

    expect(calls('users.list') - before).toBe(PAGES);
    const account = await t.account();
    expect(await t.roster.deps.directory.syncedAt(t.em(), account)).not.toBeNull();
    const [sync] = await query<{ pages: number; lease_holder: string | null }>(
      t.em(),
      sql`select pages, lease_holder from slack_directory_sync where account_id = ${account.id}`,
    );
    expect(sync).toEqual({ pages: PAGES, lease_holder: null });
    // Every job ended well, none failed nor retried: the one that found a sync running looked again a
    // little later (a copy of it, queued to wait), found that sync finished, and walked nothing.
    const jobs = await query<{ state: string; retry_count: number }>(
      t.em(),
      sql`select state, retry_count from pgboss.job where name = ${DIRECTORY_JOBS.sync} and created_on >= ${since}`,
    );
    expect(jobs).toEqual([
      { state: 'completed', retry_count: 0 },
      { state: 'completed', retry_count: 0 },
      { state: 'completed', retry_count: 0 },
    ]);
    const [members] = await query<{ n: number }>(
      t.em(),
      sql`select count(*)::int as n from slack_member where account_id = ${account.id}`,
    );
    expect(members?.n).toBe(CROWD + DEFAULT_MEMBERS.length);
  }, 60_000);

  it('lets two direct syncs on both instances walk once, the second returning at once', async () => {
    const accountId = await unsynced();
    t.standin.delayNext('users.list', 300, PAGES * 2);
    const before = calls('users.list');
    const account = await t.account();
    const first = t.roster.deps.directory.sync(t.em(), account, t.roster.slack);
    // The first holds the lease once its first page is asked for.
    await eventually(() => calls('users.list') > before);
    const other = await second.deps.directory.sync(second.orm.em.fork(), account, second.slack);
    expect(other).toMatchObject({ running: true });
    expect(await first).toEqual({ pages: PAGES, members: CROWD + DEFAULT_MEMBERS.length });
    expect(calls('users.list') - before).toBe(PAGES);
    const [row] = await query<{ lease_holder: string | null }>(
      t.em(),
      sql`select lease_holder from slack_directory_sync where account_id = ${accountId}`,
    );
    expect(row?.lease_holder).toBeNull();
  }, 60_000);

  it('takes over from the cursor of a sync whose instance died, once its lease has lapsed', async () => {
    const accountId = await unsynced();
    const account = await t.account();
    // As an instance killed after its second page leaves it: its lease, last renewed a while ago, still on.
    await query(
      t.em(),
      sql`update slack_directory_sync set cursor = ${Buffer.from('2000').toString('base64')}, pages = 2,
            lease_holder = gen_random_uuid(), lease_until = now() + interval '2 seconds'
          where account_id = ${accountId}`,
    );
    const before = calls('users.list');
    // Another sync meanwhile ends at once, and leaves the cursor alone.
    expect(await second.deps.directory.sync(second.orm.em.fork(), account, second.slack)).toMatchObject({
      running: true,
    });
    expect(calls('users.list')).toBe(before);
    // The lease lapses (it is never renewed again): the next sync reads only the pages left.
    await new Promise((r) => setTimeout(r, 2_100));
    const result = await second.deps.directory.sync(second.orm.em.fork(), account, second.slack);
    expect(result).toEqual({ pages: PAGES - 2, members: CROWD + DEFAULT_MEMBERS.length - 2000 });
    expect(calls('users.list') - before).toBe(PAGES - 2);
    expect(await t.roster.deps.directory.syncedAt(t.em(), account)).not.toBeNull();
  }, 60_000);

  it('syncs, once its lease has lapsed, what a sync stopped or killed in its middle left', async () => {
    const accountId = await unsynced();
    const account = await t.account();
    // As a stop or a crash after the second page leaves it: its lease still on for a few seconds.
    await query(
      t.em(),
      sql`update slack_directory_sync set cursor = ${Buffer.from('2000').toString('base64')}, pages = 2,
            lease_holder = gen_random_uuid(), lease_until = now() + interval '3 seconds'
          where account_id = ${accountId}`,
    );
    const before = calls('users.list');
    // The job the stop handed back, started again: it finds the lease held, and looks again once it lapses.
    await second.deps.jobs.send(DIRECTORY_JOBS.sync, { force: true });
    await eventually(async () => (await t.roster.deps.directory.syncedAt(t.em(), account)) !== null, 30_000);
    expect(calls('users.list') - before).toBe(PAGES - 2);
  }, 60_000);

  it('ends a sync before its next page when Roster stops, giving back its lease and keeping its cursor', async () => {
    const accountId = await unsynced();
    const account = await t.account();
    t.standin.delayNext('users.list', 500, 1);
    const stop = new AbortController();
    const before = calls('users.list');
    const syncing = t.roster.deps.directory.sync(t.em(), account, t.roster.slack, undefined, {
      signal: stop.signal,
    });
    await eventually(() => calls('users.list') > before);
    stop.abort();
    await expect(syncing).rejects.toBeInstanceOf(HandedBack);
    expect(calls('users.list') - before).toBe(1);
    const [row] = await query<{ pages: number; cursor: string | null; lease_holder: string | null }>(
      t.em(),
      sql`select pages, cursor, lease_holder from slack_directory_sync where account_id = ${accountId}`,
    );
    expect(row).toMatchObject({ pages: 1, lease_holder: null, cursor: expect.any(String) });
  }, 60_000);
});
