import { AuditEvent } from '../../../src/features/audit/audit-event.entity.ts';
import { DIRECTORY_JOBS } from '../../../src/features/directory/index.ts';
import { User } from '../../../src/features/people/user.entity.ts';
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

let t: TestApp;

beforeAll(async () => {
  t = await startTestApp({ seatLimit: 10, members: [...DEFAULT_MEMBERS, LEAVER, KEPT, PARTNER, LOOKED_UP] });
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
