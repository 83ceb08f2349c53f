import { ensureAccount } from '../../../src/features/accounts/account.service.ts';
import { invitesFeature } from '../../../src/features/invites/index.ts';
import { Invitation } from '../../../src/features/invites/invitation.entity.ts';
import { REDELIVER_NOTE } from '../../../src/features/invites/invitation.service.ts';
import { User } from '../../../src/features/people/user.entity.ts';
import { hashToken } from '../../../src/shared/ids.ts';
import {
  DEFAULT_MEMBERS,
  jobsDrained,
  outsider,
  startTestApp,
  TEAM_ID,
  type TestApp,
} from '../../support/app.ts';

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp({
    seatLimit: 20,
    members: [
      ...DEFAULT_MEMBERS,
      // Of another organisation, met in a channel shared through Slack Connect.
      outsider('UEXTANA', 'ana', 'ana@partner.example'),
    ],
  });
});
afterAll(() => t.stop());

describe('an invitation whose DM an upgrade voided', () => {
  it('is delivered again by email when Roster starts, never to the other organisation’s Slack account', async () => {
    // As the upgrade leaves it: the user unlinked, the invitation's link voided and noted to go again.
    const em = t.em();
    const account = await ensureAccount(em, TEAM_ID);
    const ana = em.create(User, { account, email: 'ana@partner.example', role: 'client', status: 'invited' });
    const invitation = em.create(Invitation, {
      account,
      user: ana,
      tokenHash: null,
      status: 'pending',
      expiresAt: new Date(Date.now() + 7 * 86_400_000),
      invitedBy: 'UADMIN',
      deliveryAttempts: 1,
      lastError: REDELIVER_NOTE,
    });
    await em.flush();

    // What Roster does with the invites feature's jobs when it starts.
    await invitesFeature.jobs!(t.roster.deps);

    const mail = await t.smtp.waitForMail((m) => m.toText === 'ana@partner.example');
    const token = /\/invitations\/([A-Za-z0-9_-]+)/.exec(String(mail.text))?.[1];
    await jobsDrained(t.em(), { timeoutMs: 20_000 });
    const now = await t.em().findOneOrFail(Invitation, invitation.id);
    expect(now).toMatchObject({ deliveryMethod: 'email', status: 'pending', lastError: null });
    expect(now.tokenHash).toBe(hashToken(token!));
    expect(t.standin.messages.filter((m) => String(m.channel).includes('UEXTANA'))).toEqual([]);
    expect(t.smtp.messages.filter((m) => m.toText === 'ana@partner.example')).toHaveLength(1);
    expect((await t.em().findOneOrFail(User, ana.id)).slackUserId).toBeNull();
  });
});
