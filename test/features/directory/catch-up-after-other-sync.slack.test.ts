/**
 * A catch-up sync queued by Slack's app_rate_limited notice starts an hour after the limit began. Another
 * full sync finishing within that hour (the nightly one, the previous hour's catch-up) does not stand in
 * for it: what Slack dropped after that sync is read when the catch-up is due.
 */
import { catchUpJobId, DIRECTORY_JOBS } from '../../../src/features/directory/index.ts';
import { windowOf } from '../../../src/slack/rate-limited.ts';
import {
  DEFAULT_MEMBERS,
  eventually,
  jobsDrained,
  startTestApp,
  TEAM_ID,
  type TestApp,
} from '../../support/app.ts';
import type { Member } from '../../support/slack-standin.ts';

const PROMOTED: Member = { id: 'UPROMOTED', name: 'pia', realName: 'Pia Promoted', email: 'pia@acme.test' };

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp({ members: [...DEFAULT_MEMBERS, PROMOTED] });
  await eventually(async () => (await t.roster.deps.directory.syncedAt(t.em(), await t.account())) !== null);
  await jobsDrained(t.em(), { queues: [DIRECTORY_JOBS.sync] });
});
afterAll(() => t.stop());

it('the catch-up sync still reads Slack when another sync finished after the notice but before its hour ended', async () => {
  const account = await t.account();
  // Slack began dropping events almost an hour ago: the catch-up is due in 12 s.
  const minute = Math.floor(Date.now() / 1000) - 3600 + 12;
  expect((await t.slack.appRateLimited(minute)).status).toBe(200);
  const id = catchUpJobId(TEAM_ID, windowOf(minute));

  // Meanwhile another full sync (the nightly one, or the previous hour's catch-up) runs and finishes.
  const before = await t.roster.deps.directory.syncedAt(t.em(), account);
  await t.roster.jobs.send(DIRECTORY_JOBS.sync, { force: true });
  await eventually(async () => {
    const s = await t.roster.deps.directory.syncedAt(t.em(), account);
    return s && before && s > before;
  }, 20_000);

  // Still within the hour Slack drops events: a promotion reaches Roster through no event.
  t.standin.addMember({ ...PROMOTED, isAdmin: true });

  // The catch-up runs an hour after the limit began.
  await eventually(async () => {
    const [job] = await t
      .em()
      .getConnection()
      .execute<{ state: string }[]>(`select state from pgboss.job where id = ?`, [id]);
    return job?.state === 'completed';
  }, 40_000);

  // It should have read Slack as it is now, an hour after the limit began.
  expect((await t.roster.deps.directory.byId(t.em(), account, PROMOTED.id))?.isAdmin).toBe(true);
}, 90_000);
