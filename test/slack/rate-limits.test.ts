import { Invitation } from '../../src/features/invites/invitation.entity.ts';
import { DEFAULT_MEMBERS, eventually, startTestApp, type TestApp } from '../support/app.ts';
import type { Member } from '../support/slack-standin.ts';

const TEAM: Member[] = Array.from({ length: 20 }, (_, i) => ({
  id: `UTEAM${String(i).padStart(2, '0')}`,
  name: `teammate${i}`,
  email: `teammate${i}@acme.test`,
}));

let t: TestApp;

beforeAll(async () => {
  t = await startTestApp({ seatLimit: 50, members: [...DEFAULT_MEMBERS, ...TEAM] });
});
afterAll(() => t.stop());

describe("Slack's rate limits", () => {
  it('opens a form within 3 seconds of its trigger while invitation DMs are being rate-limited, and delivers every DM once', async () => {
    // Bursts of DMs meet Slack's limit: 4 posts per 2 seconds, then 429 with Retry-After: 2.
    t.standin.limitRate('chat.postMessage', { max: 4, windowMs: 2000, retryAfter: 2 });
    await t.slack.command('/invite', TEAM.map((m) => m.email).join(' '), { user: 'UADMIN' });
    await t.slack.submitView(t.standin.lastOpenedView(), { role: 'client' }, { user: 'UADMIN' });
    await eventually(() => t.standin.rateLimited.length > 0, 15_000);

    // Someone types /invite meanwhile: the form must open before the trigger expires.
    const asked = Date.now();
    await t.slack.command('/invite', '', { user: 'UMANAGER' });
    const opened = await t.standin.waitForCall('views.open', (c) => c.at >= asked, 5000);
    expect(opened.at - asked).toBeLessThan(3000);
    expect(t.standin.lastOpenedView().callback_id).toBe('invite_modal');

    // Every invitation is delivered, once, however many 429s it took.
    await eventually(
      async () => (await t.em().count(Invitation, { deliveredAt: { $ne: null } })) === TEAM.length,
      60_000,
    );
    for (const m of TEAM) {
      const dms = t.standin.messages.filter(
        (msg) =>
          msg.method === 'chat.postMessage' &&
          msg.channel === `D${m.id}` &&
          /invited you/.test(String(msg.text)),
      );
      expect(dms).toHaveLength(1);
    }
  }, 90_000);
});
