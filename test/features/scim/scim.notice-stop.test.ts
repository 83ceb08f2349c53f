import type { ORM } from '../../../src/db/orm.ts';
import { query, sql } from '../../../src/db/sql.ts';
import type { Deps } from '../../../src/features/feature.ts';
import { registerScimJobs } from '../../../src/features/scim/scim.jobs.ts';
import { SCIM_JOBS, ScimService } from '../../../src/features/scim/scim.service.ts';
import { drain } from '../../../src/features/scim/scim.sync.ts';
import { JobQueue } from '../../../src/shared/jobs.ts';
import { createLogger } from '../../../src/shared/logger.ts';
import { eventually, jobsDrained } from '../../support/app.ts';
import type { ScimServer } from '../../support/scim-server.ts';
import { connectedService } from './service.ts';

// Roster is stopped (STOP_GRACE_SECONDS=0) while the SCIM service is answering a create it refuses (400).
// The running sync records the person as failed, and the stopped queue takes no notice from it: the person
// stays marked untold, and the next start's sync tells the admins, once, though nobody is pending any more.
let orm: ORM;
let server: ScimServer;
let accountId: string;
let service: Awaited<ReturnType<typeof connectedService>>;
const logger = createLogger('silent');

beforeAll(async () => {
  service = await connectedService('T_ZZ_SCIM_NOTICE_STOP');
  ({ orm, server, accountId } = service);
});
afterAll(() => service.close());

/** One Roster process's SCIM jobs: the sync is worked here (the notice is left queued, to be counted). */
async function startJobs(): Promise<JobQueue> {
  const jobs = await JobQueue.start(orm.config.get('clientUrl') as string, logger, {
    works: (name) => name === SCIM_JOBS.sync,
  });
  const scim = new ScimService(jobs, undefined, { allowPrivate: true });
  await registerScimJobs({ jobs, orm, logger, scim, slack: {}, admins: {} } as unknown as Deps);
  return jobs;
}

const notices = async () =>
  (
    await query<{ n: number }>(
      orm.em.fork(),
      sql`select count(*)::int as n from pgboss.job where name = ${SCIM_JOBS.notice}`,
    )
  )[0]!.n;

it('tells the admins about a person the service refused even when Roster stops during the push', async () => {
  server.rejectWhen((u) => (u.title === 'Forbidden' ? 'titles like that are refused' : undefined));
  // The refusal comes 1.5 s after the POST.
  server.slow(1500, { when: (req) => req.method === 'POST' });
  await query(
    orm.em.fork(),
    sql`insert into app_user (id, account_id, email, first_name, title, role, status)
      values (gen_random_uuid(), ${accountId}, 'kim@acme.test', 'Kim', 'Forbidden', 'client', 'active')`,
  );
  const first = await startJobs();
  await first.send(SCIM_JOBS.sync, { accountId }, { singletonKey: accountId });
  await eventually(() => server.calls.some((c) => c.method === 'POST'));
  // SIGTERM with STOP_GRACE_SECONDS=0: the running job is handed back at once.
  await first.stop(0);

  // The push still ends: Kim is recorded failed, with the service's words.
  const [state] = await eventually(async () => {
    const rows = await query<{ state: string; lastError: string }>(
      orm.em.fork(),
      sql`select state, last_error as "lastError" from scim_sync where account_id = ${accountId} and state <> 'pending'`,
    );
    return rows.length ? rows : undefined;
  });
  expect(state).toMatchObject({ state: 'failed', lastError: expect.stringContaining('titles like that') });

  // The next start works what was handed back.
  const second = await startJobs();
  try {
    await jobsDrained(orm.em.fork(), { queues: [SCIM_JOBS.sync], timeoutMs: 30_000 });
    // The admins' notice of the refusal is queued exactly once.
    expect(await notices()).toBe(1);
  } finally {
    await second.stop(0);
  }
}, 60_000);

it('claims nobody more once Roster stops: the batch under way is recorded, the rest wait pending', async () => {
  server.rejectWhen(() => undefined);
  for (let i = 0; i < 50; i++) {
    await query(
      orm.em.fork(),
      sql`insert into app_user (id, account_id, email, first_name, role, status)
        values (gen_random_uuid(), ${accountId}, ${`stop${i}@acme.test`}, 'Stop', 'client', 'active')`,
    );
  }
  const stop = new AbortController();
  const from = server.calls.length;
  // The stop comes while the first batch (40 people) is being pushed.
  server.slow(200, { when: (req) => req.method === 'POST' });
  const draining = drain(
    orm.em.fork(),
    await service.connection(),
    service.client,
    undefined,
    undefined,
    stop.signal,
  );
  await eventually(() => server.calls.slice(from).some((c) => c.method === 'POST'));
  stop.abort();
  const result = await draining;
  expect(result.synced).toBe(40);
  const states = await query<{ state: string; leased: boolean; n: number }>(
    orm.em.fork(),
    sql`select s.state, s.leased_until is not null as leased, count(*)::int as n
        from scim_sync s join app_user u on u.id = s.user_id
        where s.account_id = ${accountId} and u.email like 'stop%' group by 1, 2 order by 1`,
  );
  expect(states).toEqual([
    { state: 'pending', leased: false, n: 10 },
    { state: 'synced', leased: false, n: 40 },
  ]);
});
