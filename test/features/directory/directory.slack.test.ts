import { query, sql } from '../../../src/db/sql.ts';
import { type IAccount, PermissionSet } from '../../../src/features/accounts/account.entity.ts';
import { User } from '../../../src/features/people/user.entity.ts';
import { SeatRequest } from '../../../src/features/seats/seat-request.entity.ts';
import { createLogger } from '../../../src/shared/logger.ts';
import { DEFAULT_MEMBERS, eventually, jobsDrained, startTestApp, type TestApp } from '../../support/app.ts';
import type { Member } from '../../support/slack-standin.ts';
import { textOf } from '../../support/views.ts';

const CROWD = 5_000;
const crowd: Member[] = Array.from({ length: CROWD }, (_, i) => ({
  id: `UCROWD${String(i).padStart(5, '0')}`,
  name: `person${i}`,
  email: `person${i}@acme.test`,
}));

let t: TestApp;

beforeAll(async () => {
  t = await startTestApp({ seatLimit: 10, members: [...DEFAULT_MEMBERS, ...crowd] });
  // The sync runs at start, as a job.
  await eventually(
    async () => (await t.roster.deps.directory.syncedAt(t.em(), await t.account())) !== null,
    20_000,
  );
});
afterAll(() => t.stop());

const calls = (method: string) => t.standin.calls.filter((c) => c.method === method).length;

/** A directory sync run here and now, to its end. */
async function syncNow(account: IAccount) {
  const result = await t.roster.deps.directory.sync(t.em(), account, t.roster.slack, createLogger('silent'));
  if (result.running) throw new Error('another sync held the directory');
  return result;
}

describe('the Slack directory mirror', () => {
  it('is filled at start by users.list, a thousand members a page', async () => {
    const [row] = await query<{ n: number }>(
      t.em(),
      sql`select count(*)::int as n from slack_member where account_id = ${(await t.account()).id}`,
    );
    expect(row?.n).toBe(CROWD + DEFAULT_MEMBERS.length);
    expect(calls('users.list')).toBe(Math.ceil((CROWD + DEFAULT_MEMBERS.length) / 1000));
    expect(
      t.standin.calls.filter((c) => c.method === 'users.list').every((c) => Number(c.args.limit) === 1000),
    ).toBe(true);
  });

  it("costs a seat request a constant number of directory calls, whatever the workspace's size", async () => {
    const before = {
      list: calls('users.list'),
      info: calls('users.info'),
      lookup: calls('users.lookupByEmail'),
    };
    await t.slack.command('/invite', 'newcomer@acme.test employee', { user: 'UCROWD00042' });
    await t.slack.submitView(t.standin.lastOpenedView(), {}, { user: 'UCROWD00042' });
    const request = await eventually(() => t.em().findOne(SeatRequest, { email: 'newcomer@acme.test' }));
    await eventually(async () => (await t.em().findOneOrFail(SeatRequest, request.id)).messages.length === 2);
    const asked = (await t.em().findOneOrFail(SeatRequest, request.id)).messages.map((m) => m.target).sort();
    expect(asked).toEqual(['UADMIN', 'UOWNER']);
    expect(calls('users.list') - before.list).toBe(0);
    expect(calls('users.info') - before.info).toBeLessThanOrEqual(1);
  });

  it('finds a workspace member for an invitation DM in the mirror, without users.lookupByEmail', async () => {
    const before = calls('users.lookupByEmail');
    await t.slack.command('/invite', 'person7@acme.test client', { user: 'UADMIN' });
    await t.slack.submitView(t.standin.lastOpenedView(), {}, { user: 'UADMIN' });
    await t.standin.waitForMessage((m) => m.channel === 'DUCROWD00007' && /invited you/.test(String(m.text)));
    expect(calls('users.lookupByEmail')).toBe(before);
  });

  it('learns a new admin from team_join and a lost one from user_change, without asking Slack', async () => {
    const info = calls('users.info');
    const joiner = {
      id: 'UJOINER',
      team_id: 'T0001',
      name: 'jo',
      real_name: 'Jo Joiner',
      is_admin: true,
      profile: { email: 'jo@acme.test' },
    };
    await t.slack.event({ type: 'team_join', user: joiner });
    await t.slack.command('/seats', '11', { user: 'UJOINER' });
    await t.standin.waitForResponse((r) => textOf(r.body).includes('The seat limit is now 11'));

    await t.slack.event({ type: 'user_change', user: { ...joiner, is_admin: false } });
    await t.slack.command('/seats', '12', { user: 'UJOINER' });
    await t.standin.waitForResponse((r) => /Only admins/.test(textOf(r.body)));
    expect(calls('users.info')).toBe(info);
  });

  it('does not write a users.info answer over a user_change Slack sent while the answer was on its way', async () => {
    const account = await t.account();
    // An admin who joined after the sync, whose team_join Roster has not had.
    const lou = { id: 'ULATE', name: 'lou', realName: 'Lou Late', email: 'lou@acme.test' };
    t.standin.addMember({ ...lou, isAdmin: true });
    const asSlackReadThem = t.standin.userOf('ULATE');
    // While the answer (an admin) is on its way, Slack demotes them, and Roster records that user_change.
    t.standin.whileAnswering('users.info', async () => {
      t.standin.whileAnswering('users.info', null);
      await new Promise((r) => setTimeout(r, 1100));
      await t.slack.event({ type: 'user_change', user: { ...asSlackReadThem, is_admin: false } });
      await eventually(
        async () => (await t.roster.deps.directory.byId(t.em(), account, 'ULATE'))?.isAdmin === false,
      );
    });
    expect((await t.roster.deps.admins.member(t.em(), account, 'ULATE'))?.isAdmin).toBe(true);
    expect((await t.roster.deps.directory.byId(t.em(), account, 'ULATE'))?.isAdmin).toBe(false);
    expect(await t.roster.deps.directory.adminIds(t.em(), account)).not.toContain('ULATE');
    // As Slack has them now, for the syncs of the tests below.
    t.standin.addMember(lou);
  });

  it('queues the first sync when the admins are needed before it, so the directory is walked once, by the sync job', async () => {
    const account = await t.account();
    // As before the first sync has finished.
    await query(
      t.em(),
      sql`update slack_directory_sync set finished_at = null, cursor = null where account_id = ${account.id}`,
    );
    const pages = Math.ceil((CROWD + DEFAULT_MEMBERS.length) / 1000);
    const before = calls('users.list');
    // The job that asked (a seat request to post, a notice to send) is told to try again shortly.
    const asked = [1, 2, 3].map(() =>
      t.roster.deps.admins.adminIds(t.em(), account).then(
        () => 'answered',
        (err: Error) => err.name,
      ),
    );
    expect(await Promise.all(asked)).toEqual(['TryLater', 'TryLater', 'TryLater']);
    await eventually(async () => (await t.roster.deps.directory.syncedAt(t.em(), account)) !== null, 30_000);
    expect((await t.roster.deps.admins.adminIds(t.em(), account)).sort()).toEqual(['UADMIN', 'UOWNER']);
    // Three callers, one walk.
    await jobsDrained(t.em(), { queues: ['slack.directory-sync'] });
    expect(calls('users.list') - before).toBe(pages);
  }, 60_000);

  it('does not keep jobs waiting for a first sync that never finishes: after a while the admins known so far are asked', async () => {
    const account = await t.account();
    // A first sync that started 20 minutes ago and never finished (Slack refusing users.list, say).
    await query(
      t.em(),
      sql`update slack_directory_sync set finished_at = null, started_at = now() - interval '20 minutes'
          where account_id = ${account.id}`,
    );
    expect((await t.roster.deps.admins.adminIds(t.em(), account)).sort()).toEqual(['UADMIN', 'UOWNER']);
    // The sync asked for meanwhile finishes it, at Slack's pace for users.list.
    await jobsDrained(t.em(), { queues: ['slack.directory-sync'], timeoutMs: 50_000 });
    expect(await t.roster.deps.directory.syncedAt(t.em(), account)).not.toBeNull();
  }, 60_000);

  it('resumes a sync from its cursor after a stop, reading only the pages left', async () => {
    const account = await t.account();
    // As a sync stopped after its third page would have left it.
    await query(
      t.em(),
      sql`update slack_directory_sync set finished_at = null, cursor = ${Buffer.from('3000').toString('base64')}
          where account_id = ${account.id}`,
    );
    const before = calls('users.list');
    const result = await syncNow(account);
    expect(result.pages).toBe(Math.ceil((CROWD + DEFAULT_MEMBERS.length - 3000) / 1000));
    expect(calls('users.list') - before).toBe(result.pages);
    expect(await t.roster.deps.directory.syncedAt(t.em(), account)).not.toBeNull();
  });

  it('starts again from the first page when Slack no longer takes the cursor a stopped sync saved', async () => {
    const account = await t.account();
    await query(
      t.em(),
      sql`update slack_directory_sync set finished_at = null, cursor = ${Buffer.from('3000').toString('base64')}
          where account_id = ${account.id}`,
    );
    // Slack's cursors do not last: the saved one is refused, as real Slack answers a stale cursor.
    t.standin.failNext('users.list', 'invalid_cursor', 1, (args) => Boolean(args.cursor));
    const before = calls('users.list');
    const result = await syncNow(account);
    expect(result.pages).toBe(Math.ceil((CROWD + DEFAULT_MEMBERS.length) / 1000));
    expect(calls('users.list') - before).toBe(result.pages + 1);
    expect(await t.roster.deps.directory.syncedAt(t.em(), account)).not.toBeNull();
    const [state] = await query<{ cursor: string | null; pages: number }>(
      t.em(),
      sql`select cursor, pages from slack_directory_sync where account_id = ${account.id}`,
    );
    expect(state).toEqual({ cursor: null, pages: result.pages });
  });

  it('counts the mirror as whole while a later sync walks it: the admins are asked at once, not held', async () => {
    const account = await t.account();
    let listed = 0;
    let midway: { admins: string[] | string; syncedAt: Date | null } | undefined;
    // Asked as the nightly sync reads its second page, the first written and its cursor saved.
    t.standin.whileAnswering('users.list', async () => {
      listed += 1;
      if (listed !== 2) return;
      const admins = await t.roster.deps.admins.adminIds(t.em(), account).catch((err: Error) => err.name);
      midway = { admins, syncedAt: await t.roster.deps.directory.syncedAt(t.em(), account) };
    });
    await t.roster.deps.jobs.send('slack.directory-sync', { force: true });
    // At Slack's pace for users.list, on top of the syncs above.
    await jobsDrained(t.em(), { queues: ['slack.directory-sync'], timeoutMs: 80_000 });
    t.standin.whileAnswering('users.list', null);
    expect(listed).toBe(Math.ceil((CROWD + DEFAULT_MEMBERS.length) / 1000));
    expect(typeof midway?.admins === 'string' ? midway.admins : [...midway!.admins].sort()).toEqual([
      'UADMIN',
      'UOWNER',
    ]);
    // The sync job sees a walk under way, not an up-to-date mirror, so one stopped half way is carried on.
    expect(midway?.syncedAt).toBeNull();
    expect(await t.roster.deps.directory.syncedAt(t.em(), account)).not.toBeNull();
  }, 90_000);
  it('links someone in Roster without a Slack account to the member who joins with their address, so their Admin set works', async () => {
    const account = await t.account();
    const em = t.em();
    const admin = await em.findOneOrFail(PermissionSet, { account, isAdmin: true });
    // Accepted on the web (or invited by email) before they were in Slack, then given the Admin set.
    const boss = em.create(User, {
      account,
      email: 'Boss@Acme.test',
      role: 'employee',
      status: 'active',
      permissionSet: admin,
    });
    // Someone of another organisation met through Slack Connect with a person's address is linked to nobody.
    const kept = em.create(User, { account, email: 'kept@acme.test', role: 'employee', status: 'active' });
    await em.flush();
    await t.slack.event({
      type: 'team_join',
      user: { id: 'UEXTKEPT', team_id: 'TPARTNER', name: 'kept', profile: { email: 'kept@acme.test' } },
    });
    await t.slack.event({
      type: 'team_join',
      user: {
        id: 'UBOSS',
        team_id: 'T0001',
        name: 'boss',
        is_restricted: false,
        is_ultra_restricted: false,
        profile: { email: 'boss@acme.test' },
      },
    });
    await jobsDrained(t.em());
    expect((await t.em().findOneOrFail(User, boss.id)).slackUserId).toBe('UBOSS');
    expect((await t.em().findOneOrFail(User, kept.id)).slackUserId).toBeNull();
    expect(await t.roster.deps.admins.isAdmin(t.em(), account, 'UBOSS')).toBe(true);

    // A member the mirror already knew is linked by the next sync.
    const known = em.create(User, {
      account,
      email: 'person4999@acme.test',
      role: 'client',
      status: 'active',
    });
    await em.flush();
    await syncNow(account);
    expect((await t.em().findOneOrFail(User, known.id)).slackUserId).toBe('UCROWD04999');
    // No admin more for the tests that count who is asked.
    await query(t.em(), sql`update app_user set permission_set_id = null where id = ${boss.id}`);
  });
});
