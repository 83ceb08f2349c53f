import { JoinLink } from '../../../src/features/join-links/join-link.entity.ts';
import { hashToken } from '../../../src/shared/ids.ts';
import { eventually, startTestApp, type TestApp } from '../../support/app.ts';
import { findButton, textOf } from '../../support/views.ts';

// An account that posts join links for every event collects dozens of expired and revoked ones: the list
// must still show each link that works, with its Revoke, within Slack's 50 blocks a message.

let t: TestApp;

beforeAll(async () => {
  t = await startTestApp({ seatLimit: 10 });
});
afterAll(() => t.stop());

const DAY = 24 * 60 * 60 * 1000;
let n = 0;

async function link(opts: { ageDays: number; expired?: boolean; revoked?: boolean }) {
  const em = t.em();
  const made = new Date(Date.now() - opts.ageDays * DAY);
  const row = em.create(JoinLink, {
    account: await t.account(),
    tokenHash: hashToken(`list-link-${++n}`),
    role: 'employee',
    expiresAt: new Date(opts.expired ? Date.now() - DAY : Date.now() + 300 * DAY),
    createdBy: 'UADMIN',
    channelId: 'C0GENERAL',
    messageTs: `${1700000000 + n}.000100`,
    revokedAt: opts.revoked ? new Date() : null,
    revokedBy: opts.revoked ? 'UADMIN' : null,
    createdAt: made,
  });
  await em.flush();
  return row.id;
}

describe('/joinlink list of an account with many closed links', () => {
  it('shows the link that still works, older than 30 closed ones, with its Revoke', async () => {
    // A link for the year, posted in January; since then a link a week, each closed after its event.
    const yearly = await link({ ageDays: 60 });
    for (let i = 0; i < 30; i++)
      await link({ ageDays: 50 - i, ...(i % 2 ? { revoked: true } : { expired: true }) });

    const since = t.standin.responses.length;
    await t.slack.command('/joinlink', 'list', { user: 'UADMIN' });
    const list = await eventually(() => t.standin.responses[since]?.body);
    expect(list.blocks.length).toBeLessThanOrEqual(50);
    expect(findButton(list.blocks, { actionId: 'joinlink_revoke', value: yearly }).action.value).toBe(yearly);
    expect(textOf(list)).toContain('…and 6 older links, revoked or expired.');
    expect(t.standin.refusedBlocks).toEqual([]);
  });
});
