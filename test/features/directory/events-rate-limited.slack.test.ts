/**
 * Slack sends an app at most 30,000 events an hour from one workspace; past that it drops them (for up to an
 * hour, as it counts them) and sends an `app_rate_limited` notice instead (an org-wide profile change in a
 * workspace of 100,000 does it). The notice is answered at once, and the directory mirror catches up on what
 * was dropped an hour after the first notice of a clock hour, instead of staying wrong until the nightly sync.
 */
import { Writable } from 'node:stream';
import { catchUpJobId, DIRECTORY_JOBS } from '../../../src/features/directory/index.ts';
import { User } from '../../../src/features/people/user.entity.ts';
import { createLogger } from '../../../src/shared/logger.ts';
import {
  DEFAULT_MEMBERS,
  eventually,
  jobsDrained,
  SIGNING_SECRET,
  startTestApp,
  TEAM_ID,
  type TestApp,
} from '../../support/app.ts';
import { SlackDriver } from '../../support/slack-driver.ts';
import type { Member } from '../../support/slack-standin.ts';

const STRANGER_TEAM = 'T0STRANGER';
/** Promoted to admin in Slack while Slack dropped the events. */
const PROMOTED: Member = { id: 'UPROMOTED', name: 'pia', realName: 'Pia Promoted', email: 'pia@acme.test' };
/** Deactivated in Slack while Slack dropped the events. */
const LEAVER: Member = { id: 'ULEAVER', name: 'lea', realName: 'Lea Leaver', email: 'lea@acme.test' };

let t: TestApp;
let stranger: SlackDriver;
const logLines: string[] = [];
const logged = () => logLines.map((l) => JSON.parse(l) as { level: number; msg: string; team?: string });
const dropWarnings = () =>
  logged().filter((l) => l.level === 40 && /drops them, for up to an hour/.test(l.msg));

beforeAll(async () => {
  const sink = new Writable({
    write(chunk, _enc, done) {
      logLines.push(String(chunk));
      done();
    },
  });
  t = await startTestApp({
    seatLimit: 10,
    members: [...DEFAULT_MEMBERS, PROMOTED, LEAVER],
    logger: createLogger('info', sink),
  });
  stranger = new SlackDriver({
    appUrl: t.url,
    signingSecret: SIGNING_SECRET,
    standin: t.standin,
    teamId: STRANGER_TEAM,
  });
  await eventually(async () => (await t.roster.deps.directory.syncedAt(t.em(), await t.account())) !== null);
  await jobsDrained(t.em(), { queues: [DIRECTORY_JOBS.sync] });
});
afterAll(() => t.stop());
beforeEach(() => {
  logLines.length = 0;
});

const sql = <T>(text: string, params: unknown[] = []) => t.em().getConnection().execute<T[]>(text, params);

/** The directory syncs queued to start at `at`. */
const syncsAt = (at: Date) =>
  sql<{ id: string; data: unknown }>(`select id, data from pgboss.job where name = ? and start_after = ?`, [
    DIRECTORY_JOBS.sync,
    at,
  ]);

const allJobs = async () => (await sql<{ n: number }>(`select count(*)::int as n from pgboss.job`))[0]!.n;

/** The start of the hour `s` (epoch seconds) is in, in epoch seconds. */
const hourOf = (s: number) => Math.floor(s / 3600) * 3600;
/** An epoch second as a Date. */
const at = (s: number) => new Date(s * 1000);
const nowS = () => Math.floor(Date.now() / 1000);

describe("Slack's app_rate_limited notice", () => {
  it('is answered at once with a 200, and queues one full directory sync an hour after it began', async () => {
    // A window two hours on, so no other sync shares its start.
    const hour = hourOf(nowS()) + 2 * 3600;
    const until = at(hour + 37 * 60 + 3600);
    const sentAt = Date.now();
    const res = await t.slack.appRateLimited(hour + 37 * 60);
    expect(res.status).toBe(200);
    expect(Date.now() - sentAt).toBeLessThan(1000);

    const [sync] = await syncsAt(until);
    expect(sync).toBeDefined();
    expect(sync!.id).toBe(catchUpJobId(TEAM_ID, at(hour)));
    // A full sync: the mirror is fresh (synced at start), which a plain sync would skip.
    expect(sync!.data).toEqual({ force: true });

    const warnings = dropWarnings();
    expect(warnings).toHaveLength(1);
    expect(warnings[0]!.team).toBe(TEAM_ID);
    const began = at(hour + 37 * 60)
      .toISOString()
      .slice(11, 16);
    const then = until.toISOString().slice(11, 16);
    expect(warnings[0]!.msg).toContain(`events at ${began} UTC`);
    expect(warnings[0]!.msg).toContain(`a full directory sync is queued for ${then} UTC`);
    // Slack's deprecated verification token, which the notice carries, stays out of the log.
    expect(logLines.join('')).not.toContain('deprecated-verification-token');
  });

  it('queues one sync per clock hour, however many notices come in it', async () => {
    const hour = hourOf(nowS()) + 4 * 3600;
    // An hour after the first notice of the hour.
    const until = at(hour + 12 * 60 + 3600);
    for (const minute of [12, 13, 59]) {
      expect((await t.slack.appRateLimited(hour + minute * 60)).status).toBe(200);
    }
    expect(await syncsAt(until)).toHaveLength(1);
    // Said once; the later notices are noted without a warning.
    expect(dropWarnings()).toHaveLength(1);
    expect(logged().filter((l) => /already arranged/.test(l.msg))).toHaveLength(2);

    // The next hour is another sync.
    const next = at(hour + 3600 + 5 * 60 + 3600);
    expect((await t.slack.appRateLimited(hour + 3600 + 5 * 60)).status).toBe(200);
    expect(await syncsAt(next)).toHaveLength(1);
    expect(await syncsAt(until)).toHaveLength(1);
  });

  it('has the mirror and Roster catch up once Slack sends events again', async () => {
    const em = t.em();
    const account = await t.account();
    const leaver = em.create(User, {
      account,
      email: LEAVER.email!,
      role: 'employee',
      status: 'active',
      slackUserId: LEAVER.id,
    });
    await em.flush();
    // No user_change reaches Roster: Slack dropped them.
    t.standin.addMember({ ...PROMOTED, isAdmin: true });
    t.standin.addMember({ ...LEAVER, deleted: true });

    // The notice of a limit that began over an hour ago (delivered late): the sync starts at once.
    const hour = hourOf(nowS()) - 2 * 3600;
    expect((await t.slack.appRateLimited(hour + 50 * 60)).status).toBe(200);
    // (Other tests left syncs queued for later hours: this one is waited for alone.)
    const id = catchUpJobId(TEAM_ID, at(hour));
    await eventually(async () => {
      const [job] = await sql<{ state: string }>(`select state from pgboss.job where id = ?`, [id]);
      return job?.state === 'completed';
    }, 30_000);

    const directory = t.roster.deps.directory;
    expect((await directory.byId(t.em(), account, PROMOTED.id))?.isAdmin).toBe(true);
    expect((await directory.byId(t.em(), account, LEAVER.id))?.deleted).toBe(true);
    expect((await t.em().findOneOrFail(User, leaver.id)).status).toBe('deactivated');
  });

  it('for another workspace, signed with Roster’s secret, gets its 200 and does nothing', async () => {
    const before = await allJobs();
    const hour = hourOf(nowS()) + 6 * 3600;
    const res = await stranger.appRateLimited(hour + 10 * 60);
    expect(res.status).toBe(200);
    expect(await syncsAt(at(hour + 10 * 60 + 3600))).toHaveLength(0);
    expect(await allJobs()).toBe(before);
    expect(dropWarnings()).toHaveLength(0);
    const refused = logged().filter((l) => /not installed refused/.test(l.msg));
    expect(refused.map((l) => l.team)).toEqual([STRANGER_TEAM]);
  });

  it('that names no minute gets its 200, is logged, and queues nothing', async () => {
    const before = await allJobs();
    const body = JSON.stringify({ type: 'app_rate_limited', team_id: TEAM_ID, api_app_id: 'AROSTER' });
    expect((await t.slack.sendSigned(body, 'application/json')).status).toBe(200);
    expect(await allJobs()).toBe(before);
    expect(dropWarnings()).toHaveLength(0);
    expect(logged().filter((l) => /names no workspace or minute/.test(l.msg))).toHaveLength(1);
  });

  it('with a bad signature is refused with 401, and nothing is queued', async () => {
    const before = await allJobs();
    const res = await t.slack.appRateLimited(hourOf(nowS()) + 8 * 3600, { badSignature: true });
    expect(res.status).toBe(401);
    expect(await allJobs()).toBe(before);
    expect(dropWarnings()).toHaveLength(0);
  });
});

describe("Slack's app_rate_limited notice, answered as in production (at the ack)", () => {
  let prod: TestApp;
  beforeAll(async () => {
    prod = await startTestApp({ processBeforeResponse: false });
  });
  afterAll(() => prod?.stop());

  it('gets its 200 at the ack, and the sync is still queued after it', async () => {
    const hour = hourOf(nowS()) + 3 * 3600;
    const until = at(hour + 20 * 60 + 3600);
    const res = await prod.slack.appRateLimited(hour + 20 * 60);
    expect(res.status).toBe(200);
    const queued = () =>
      prod
        .em()
        .getConnection()
        .execute<{ id: string }[]>(`select id from pgboss.job where name = ? and start_after = ?`, [
          DIRECTORY_JOBS.sync,
          until,
        ]);
    const [job] = await eventually(async () => {
      const rows = await queued();
      return rows.length ? rows : null;
    });
    expect(job!.id).toBe(catchUpJobId(TEAM_ID, at(hour)));
  });
});
