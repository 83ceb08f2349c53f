import { AuditEvent } from '../../../src/features/audit/audit-event.entity.ts';
import { User } from '../../../src/features/people/user.entity.ts';
import { startTestApp, TEAM_ID, type TestApp } from '../../support/app.ts';

let t: TestApp;

beforeAll(async () => {
  t = await startTestApp({ seatLimit: 10 });
});
afterAll(() => t.stop());

const admin = { slackUserId: 'UADMIN', isAdmin: true, surface: 'slack' as const };

/** Invites `email` as an employee the way /invite does, so they hold a seat with no Slack id yet. */
async function invited(email: string) {
  const account = await t.account();
  const [outcome] = await t.roster.deps.invites.invite(t.em(), account, admin, {
    emails: [email],
    role: 'employee',
    sendNow: true,
  });
  if (outcome?.result !== 'invited') throw new Error(`expected ${email} to be invited`);
  return outcome.user;
}

describe('a member of another organisation deleted in Slack', () => {
  it('leaves the invited person here with the same email invited, holding their seat', async () => {
    const account = await t.account();
    const ana = await invited('ana@partner.example');
    const before = await t.roster.deps.seats.usage(t.em(), account);
    // Slack Connect: a member of the partner's workspace, met in a shared channel, deleted by the partner.
    const res = await t.slack.event({
      type: 'user_change',
      user: { id: 'UEXT1', team_id: 'TPARTNER', deleted: true, profile: { email: 'ana@partner.example' } },
    });
    expect(res.status).toBe(200);
    const after = await t.em().findOneOrFail(User, ana.id);
    expect(after.status).toBe('invited');
    expect(await t.roster.deps.seats.usage(t.em(), account)).toMatchObject({ used: before.used });
    expect(await t.em().count(AuditEvent, { action: 'user.deactivated', subjectId: ana.id })).toBe(0);
  });

  it('still deactivates someone of this workspace, also an Enterprise Grid member whose home team is another', async () => {
    const account = await t.account();
    const bo = await invited('bo@acme.test');
    const before = await t.roster.deps.seats.usage(t.em(), account);
    const res = await t.slack.event({
      type: 'user_change',
      user: {
        id: 'WGRID1',
        team_id: 'TOTHER',
        enterprise_user: { id: 'WGRID1', enterprise_id: 'E0001', teams: ['TOTHER', TEAM_ID] },
        deleted: true,
        profile: { email: 'bo@acme.test' },
      },
    });
    expect(res.status).toBe(200);
    expect((await t.em().findOneOrFail(User, bo.id)).status).toBe('deactivated');
    expect(await t.roster.deps.seats.usage(t.em(), account)).toMatchObject({ used: before.used - 1 });
  });
});
