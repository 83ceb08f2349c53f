import { Invitation } from '../../../src/features/invites/invitation.entity.ts';
import { eventually, jobsDrained, startTestApp, type TestApp } from '../../support/app.ts';

let t: TestApp;

beforeAll(async () => {
  t = await startTestApp({ seatLimit: 20 });
});
afterAll(() => t.stop());

async function invite(user: string, emails: string, more: Record<string, unknown> = {}) {
  await t.slack.command('/invite', '', { user });
  await t.slack.submitView(t.standin.lastOpenedView(), { emails, role: 'client', ...more }, { user });
}
const summaries = (user: string) =>
  t.standin.messages.filter(
    (m) =>
      m.method === 'chat.postMessage' && m.channel === `D${user}` && /^Invitations:/.test(String(m.text)),
  );
const versions = (ts: string) =>
  t.standin.messages.filter((m) => m.ts === ts).map((m) => JSON.stringify(m.blocks));
const delivered = (emails: string[]) =>
  t.em().count(Invitation, { user: { email: { $in: emails } }, deliveredAt: { $ne: null } });

describe('the /invite summary when Slack asks Roster to slow down', () => {
  it('posts a summary Slack refused with a long Retry-After later, once, and keeps its count to the end', async () => {
    t.standin.limitRate('chat.postMessage', { max: 0, windowMs: 60_000, retryAfter: 15 });
    const limitedBefore = t.standin.rateLimited.length;
    await invite('UADMIN', 'mia@acme.test, max@acme.test, far@example.org');
    // Refused at submission, and again when a job first tried: Slack is held back for every worker.
    await eventually(
      () =>
        t.standin.rateLimited.slice(limitedBefore).filter((c) => c.method === 'chat.postMessage').length >= 2,
      20_000,
    );
    expect(summaries('UADMIN')).toHaveLength(0);
    t.standin.clearRateLimit('chat.postMessage');

    const summary = await eventually(() => summaries('UADMIN')[0], 45_000);
    await eventually(
      async () => (await delivered(['mia@acme.test', 'max@acme.test', 'far@example.org'])) === 3,
      45_000,
    );
    await eventually(
      () =>
        versions(summary.ts).some((v) => /All 3 invitations delivered: 2 by Slack DM, 1 by email/.test(v)),
      30_000,
    );
    await jobsDrained(t.em(), { timeoutMs: 60_000 });
    expect(summaries('UADMIN')).toHaveLength(1);
  }, 120_000);

  it('keeps the count on a posted summary while Slack refuses its updates, and ends with the total', async () => {
    await jobsDrained(t.em(), { timeoutMs: 60_000 });
    t.standin.limitRate('chat.update', { max: 0, windowMs: 60_000, retryAfter: 15 });
    const limitedBefore = t.standin.rateLimited.length;
    await invite('UOWNER', 'ana@example.org, bo@example.org');
    const summary = await eventually(() => summaries('UOWNER')[0], 20_000);
    await eventually(
      () => t.standin.rateLimited.slice(limitedBefore).some((c) => c.method === 'chat.update'),
      20_000,
    );
    t.standin.clearRateLimit('chat.update');
    await eventually(
      () =>
        versions(summary.ts).some((v) => /All 2 invitations delivered: 0 by Slack DM, 2 by email/.test(v)),
      45_000,
    );
    await jobsDrained(t.em(), { timeoutMs: 60_000 });
    expect(summaries('UOWNER')).toHaveLength(1);
  }, 120_000);
  it("waits out Slack's Retry-After before posting a refused summary again, and then posts it once", async () => {
    await jobsDrained(t.em(), { timeoutMs: 60_000 });
    const refusedSummaries = () =>
      t.standin.rateLimited.filter(
        (c) => c.method === 'chat.postMessage' && /^Invitations:/.test(String(c.args.text)),
      ).length;
    const before = refusedSummaries();
    t.standin.limitRate('chat.postMessage', { max: 0, windowMs: 60_000, retryAfter: 12 });
    // Added without an invitation: the summary is the only message of the round.
    await invite('UMANAGER', 'later@example.org', { send_now: [] });
    expect(refusedSummaries()).toBe(before + 1);
    // Slack keeps refusing for a while, well within the 12 s it asked for: Roster does not ask again.
    await new Promise((r) => setTimeout(r, 6_000));
    expect(refusedSummaries()).toBe(before + 1);
    t.standin.clearRateLimit('chat.postMessage');
    const summary = await eventually(() => summaries('UMANAGER')[0], 30_000);
    expect(String(summary.text)).toMatch(/^Invitations: 1 of 1 added/);
    await jobsDrained(t.em(), { timeoutMs: 60_000 });
    expect(summaries('UMANAGER')).toHaveLength(1);
    expect(refusedSummaries()).toBe(before + 1);
  }, 60_000);
});
