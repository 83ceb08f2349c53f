import { AuditEvent } from '../../../src/features/audit/audit-event.entity.ts';
import { DIRECTORY_JOBS } from '../../../src/features/directory/index.ts';
import { User } from '../../../src/features/people/user.entity.ts';
import { SLACK_EVENT_JOB } from '../../../src/slack/durable-events.ts';
import {
  DEFAULT_MEMBERS,
  eventually,
  jobsDrained,
  outsider,
  startTestApp,
  type TestApp,
} from '../../support/app.ts';
import type { Member } from '../../support/slack-standin.ts';

// Slack gives up on an event after a few retries within the hour: a deactivation that happened while Roster
// was down (or refused by Slack's token meanwhile) arrives only through the nightly users.list sync.

const LEAVER: Member = { id: 'ULEAVER', name: 'lea', realName: 'Lea Leaver', email: 'lea@acme.test' };
/** Deleted in Slack before Roster first read the directory; an admin keeps them active in Roster. */
const KEPT: Member = {
  id: 'UKEPT',
  name: 'kim',
  realName: 'Kim Kept',
  email: 'kim@acme.test',
  deleted: true,
};
const PARTNER = outsider('UPARTNER', 'pat', 'pat@acme.test');
/** Looked up in Slack (users.info) after Slack deactivated them, before the nightly sync reads them. */
const LOOKED_UP: Member = { id: 'ULOOKED', name: 'lou', realName: 'Lou Looked', email: 'lou@acme.test' };

/** Deactivated in Slack while the database refused Roster's deactivation until the job gave up. */
const GAVE_UP: Member = { id: 'UGAVEUP', name: 'gus', realName: 'Gus Gaveup', email: 'gus@acme.test' };
/** The same, and then an admin reactivated them in Roster on purpose. */
const BACK: Member = { id: 'UBACK', name: 'bea', realName: 'Bea Back', email: 'bea@acme.test' };
/** The same, for someone Roster knows by email only (they accepted their invitation on the web page). */
const BY_EMAIL: Member = { id: 'UBYEMAIL', name: 'eve', realName: 'Eve Email', email: 'eve@acme.test' };
/** The same, and then Slack reported them back (not deleted) before the nightly sync. */
const RETURNED: Member = { id: 'URETURNED', name: 'rex', realName: 'Rex Returned', email: 'rex@acme.test' };

let t: TestApp;

beforeAll(async () => {
  t = await startTestApp({
    seatLimit: 10,
    members: [...DEFAULT_MEMBERS, LEAVER, KEPT, PARTNER, LOOKED_UP, GAVE_UP, BACK, RETURNED, BY_EMAIL],
  });
  await eventually(async () => (await t.roster.deps.directory.syncedAt(t.em(), await t.account())) !== null);
});
afterAll(() => t.stop());

async function seated(email: string, slackUserId: string) {
  const em = t.em();
  const user = em.create(User, {
    account: await t.account(),
    email,
    role: 'employee',
    status: 'active',
    slackUserId,
  });
  await em.flush();
  return user;
}

async function nightlySync() {
  await t.roster.jobs.send(DIRECTORY_JOBS.sync, { force: true });
  await jobsDrained(t.em());
}

const statusOf = async (id: string) => (await t.em().findOneOrFail(User, id)).status;

describe('someone Slack deactivated while Roster missed the event', () => {
  it('is deactivated in Roster by the next directory sync, once, and nobody else is', async () => {
    const leaver = await seated('lea@acme.test', LEAVER.id);
    const kept = await seated('kim@acme.test', KEPT.id);
    const partnersNamesake = await seated('pat@acme.test', 'UPATHERE');

    // No user_change reaches Roster: Slack deactivated Lea, and the organisation met through Slack Connect
    // deactivated its Pat.
    t.standin.addMember({ ...LEAVER, deleted: true });
    t.standin.addMember({ ...PARTNER, deleted: true });
    await nightlySync();

    expect(await statusOf(leaver.id)).toBe('deactivated');
    const audits = await t.em().find(AuditEvent, { action: 'user.deactivated', subjectId: leaver.id });
    expect(audits).toHaveLength(1);
    expect(audits[0]!.actor).toBe('slack');
    // Deleted before Roster ever knew them as active: an admin's decision to keep them stands.
    expect(await statusOf(kept.id)).toBe('active');
    // Another organisation's member is nobody here, whatever their email.
    expect(await statusOf(partnersNamesake.id)).toBe('active');

    // The next night changes nothing more.
    await nightlySync();
    expect(await t.em().count(AuditEvent, { action: 'user.deactivated', subjectId: leaver.id })).toBe(1);
  });
});

describe('someone Slack deactivated, looked up in Slack before the sync reads them', () => {
  it('is still deactivated in Roster by the next directory sync', async () => {
    const lou = await seated('lou@acme.test', LOOKED_UP.id);
    t.standin.addMember({ ...LOOKED_UP, deleted: true });
    // A lookup that asks Slack (the mirror has not learnt whether they are a guest) meets the deletion first.
    await t
      .em()
      .getConnection()
      .execute(
        `update slack_member set is_restricted = null, is_ultra_restricted = null where slack_user_id = ?`,
        [LOOKED_UP.id],
      );
    const asked = await t.roster.deps.admins.member(t.em(), await t.account(), LOOKED_UP.id, {
      guestFlags: true,
    });
    expect(asked?.deleted).toBe(true);
    await nightlySync();
    expect(await statusOf(lou.id)).toBe('deactivated');
  });
});

const sql = (text: string, params: unknown[] = []) => t.em().getConnection().execute(text, params);

/**
 * Slack deactivates `member`; the user_change reaches Roster and the mirror records it, but every try of the
 * deactivation in Roster fails (the database refuses that write) until the job gives up.
 */
async function deactivationGaveUp(member: Member) {
  await sql(`create or replace function refuse_deactivation() returns trigger language plpgsql as $$
    begin raise exception 'the database is not taking writes'; end $$`);
  await sql(`create trigger refuse_deactivation before update on app_user for each row
    when (new.status = 'deactivated' and (old.slack_user_id = '${member.id}' or lower(old.email) = '${member.email}'))
    execute function refuse_deactivation()`);
  try {
    t.standin.addMember({ ...member, deleted: true });
    const eventId = `Ev_GAVE_UP_${member.id}`;
    const res = await t.slack.event(
      {
        type: 'user_change',
        user: { id: member.id, team_id: 'T0001', deleted: true, profile: { email: member.email } },
      },
      { eventId },
    );
    expect(res.status).toBe(200);
    const job = await eventually(async () => {
      const [row] = await sql(
        `select id from pgboss.job where name = ? and data->>'eventId' = ? and data->>'handler' = ?
           and state = 'retry'`,
        [SLACK_EVENT_JOB, eventId, 'seats.deactivated-in-slack'],
      );
      return row as { id: string } | undefined;
    });
    // Its tries used up: nothing will run it again.
    await sql(`update pgboss.job set state = 'failed' where id = ?`, [job.id]);
    await eventually(
      async () => (await t.roster.deps.directory.byId(t.em(), await t.account(), member.id))?.deleted,
    );
    await jobsDrained(t.em(), { queues: [SLACK_EVENT_JOB] });
  } finally {
    await sql('drop trigger refuse_deactivation on app_user');
  }
}

describe('someone Slack deactivated whose deactivation in Roster gave up', () => {
  it('is deactivated by the next directory sync, once, and their seat is freed', async () => {
    const gus = await seated('gus@acme.test', GAVE_UP.id);
    await deactivationGaveUp(GAVE_UP);
    expect(await statusOf(gus.id)).toBe('active');
    const used = async () => (await t.roster.deps.seats.usage(t.em(), await t.account())).used;
    const before = await used();

    await nightlySync();
    expect(await statusOf(gus.id)).toBe('deactivated');
    expect(await used()).toBe(before - 1);
    const audits = await t.em().find(AuditEvent, { action: 'user.deactivated', subjectId: gus.id });
    expect(audits).toHaveLength(1);
    expect(audits[0]!.actor).toBe('slack');
    expect(audits[0]!.data).toMatchObject({ before: 'active', reason: 'deactivated in Slack' });

    await nightlySync();
    expect(await t.em().count(AuditEvent, { action: 'user.deactivated', subjectId: gus.id })).toBe(1);
  });

  it('is found by email when Roster has no Slack id for them', async () => {
    const em = t.em();
    const eve = em.create(User, {
      account: await t.account(),
      email: 'Eve@acme.test',
      role: 'contractor',
      status: 'active',
    });
    await em.flush();
    await deactivationGaveUp(BY_EMAIL);
    expect(await statusOf(eve.id)).toBe('active');
    await nightlySync();
    expect(await statusOf(eve.id)).toBe('deactivated');
  });

  it('stays as an admin reactivated them after the sync deactivated them', async () => {
    const bea = await seated('bea@acme.test', BACK.id);
    await deactivationGaveUp(BACK);
    await nightlySync();
    expect(await statusOf(bea.id)).toBe('deactivated');

    const admin = { slackUserId: 'UADMIN', isAdmin: true, surface: 'slack' as const };
    const done = await t.roster.deps.people.reactivate(t.em(), await t.account(), admin, bea.id);
    expect(done.status).toBe('done');
    await nightlySync();
    expect(await statusOf(bea.id)).toBe('not_invited');
  });

  it('stays active when Slack reported them back before the sync', async () => {
    const rex = await seated('rex@acme.test', RETURNED.id);
    await deactivationGaveUp(RETURNED);
    t.standin.addMember(RETURNED);
    await t.slack.event({
      type: 'user_change',
      user: { id: RETURNED.id, team_id: 'T0001', deleted: false, profile: { email: RETURNED.email } },
    });
    await eventually(async () => {
      const m = await t.roster.deps.directory.byId(t.em(), await t.account(), RETURNED.id);
      return m && !m.deleted;
    });
    await nightlySync();
    expect(await statusOf(rex.id)).toBe('active');
  });
});
