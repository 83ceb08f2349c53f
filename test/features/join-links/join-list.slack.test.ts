import { ensureAccount } from '../../../src/features/accounts/account.service.ts';
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

async function link(opts: { ageDays: number; expired?: boolean; revoked?: boolean; channel?: string }) {
  const em = t.em();
  const made = new Date(Date.now() - opts.ageDays * DAY);
  const row = em.create(JoinLink, {
    account: await t.account(),
    tokenHash: hashToken(`list-link-${++n}`),
    role: 'employee',
    expiresAt: new Date(opts.expired ? Date.now() - DAY : Date.now() + 300 * DAY),
    createdBy: 'UADMIN',
    channelId: opts.channel ?? 'C0GENERAL',
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
    expect(textOf(list)).toContain('…and 6 more links, revoked or expired.');
    expect(t.standin.refusedBlocks).toEqual([]);
  });
});

describe('/joinlink list of an account with more working links than a message holds', () => {
  const forge = async (user: string, value: string) => {
    const before = t.standin.responses.length;
    const message = {
      channel: 'C0GENERAL',
      ts: '1',
      blocks: [
        {
          type: 'actions',
          block_id: 'joinlink_more',
          elements: [
            {
              type: 'button',
              action_id: 'joinlink_more',
              text: { type: 'plain_text', text: 'Show more' },
              value,
            },
          ],
        },
      ],
    };
    await t.slack.clickButton(message, 'Show more', { user });
    return (await eventually(() => t.standin.responses[before])).body;
  };

  it('reaches every one of 60 working links with Show more, each with its Revoke, the oldest revocable', async () => {
    // Only these work: a link per team channel, the oldest first.
    await t.em().nativeUpdate(JoinLink, { revokedAt: null }, { revokedAt: new Date(), revokedBy: 'UADMIN' });
    const ids: string[] = [];
    for (let i = 0; i < 60; i++)
      ids.push(await link({ ageDays: 200 - i, channel: `C0TEAM${String(i).padStart(4, '0')}` }));
    let before = t.standin.responses.length;
    await t.slack.command('/joinlink', 'list', { user: 'UADMIN' });
    let page = (await eventually(() => t.standin.responses[before])).body;
    const pages = [page];
    while (JSON.stringify(page.blocks).includes('joinlink_more')) {
      before = t.standin.responses.length;
      await t.slack.clickButton({ ...page, channel: 'C0GENERAL', ts: '1' }, 'Show more', { user: 'UADMIN' });
      page = (await eventually(() => t.standin.responses[before])).body;
      pages.push(page);
      if (pages.length > 10) throw new Error('Show more never ends');
    }
    const revokes = (body: any): string[] =>
      body.blocks
        .filter((b: any) => b.accessory?.action_id === 'joinlink_revoke')
        .map((b: any) => b.accessory.value);
    const revocable = (body: any) => revokes(body).length;
    expect(textOf(pages[0])).toContain('…and 35 older links that still work, then any revoked or expired.');
    expect(pages.map(revocable)).toEqual([25, 25, 10]);
    // The last page fills up with closed links, and counts those it leaves out.
    const closed = await t
      .em()
      .count(JoinLink, { $or: [{ revokedAt: { $ne: null } }, { expiresAt: { $lte: new Date() } }] });
    if (closed > 15)
      expect(textOf(pages[2])).toContain(`…and ${closed - 15} more links, revoked or expired.`);
    for (const id of ids) expect(pages.some((p) => JSON.stringify(p.blocks).includes(id))).toBe(true);
    for (const p of pages) expect(p.blocks.length).toBeLessThanOrEqual(50);
    expect(t.standin.refusedBlocks).toEqual([]);

    // The oldest, on the last page of working links, is revoked from there.
    const oldest = ids[0]!;
    const last = pages.find((p) => JSON.stringify(p.blocks).includes(oldest))!;
    const value = revokes(last).find((v) => v.includes(oldest))!;
    // Past the first page the button also names its page: that page, not the first, is redrawn.
    expect(JSON.parse(value)).toEqual({ l: oldest, a: expect.any(String), n: 50 });
    before = t.standin.responses.length;
    await t.slack.clickButton(
      { ...last, channel: 'C0GENERAL', ts: '1' },
      { actionId: 'joinlink_revoke', value },
      { user: 'UADMIN' },
    );
    await eventually(async () => (await t.em().findOne(JoinLink, oldest, { refresh: true }))?.revokedAt);
    const redrawn = (await eventually(() => t.standin.responses[before])).body;
    expect(redrawn.replace_original).toBe(true);
    expect(textOf(redrawn)).toMatch(/revoked/i);
    // The same page, less the link revoked: its other nine working links, none of the first page's.
    expect(revokes(redrawn)).toHaveLength(9);
    for (const id of ids.slice(1, 10)) expect(JSON.stringify(redrawn.blocks)).toContain(id);
    expect(JSON.stringify(redrawn.blocks)).not.toContain(ids[59]!);
    // Its buttons still name the page: a second Revoke there redraws it again.
    const next = revokes(redrawn).find((v) => v.includes(ids[1]!))!;
    before = t.standin.responses.length;
    await t.slack.clickButton(
      { ...redrawn, channel: 'C0GENERAL', ts: '1' },
      { actionId: 'joinlink_revoke', value: next },
      { user: 'UADMIN' },
    );
    const again = (await eventually(() => t.standin.responses[before])).body;
    expect(revokes(again)).toHaveLength(8);
    expect(JSON.stringify(again.blocks)).not.toContain(ids[59]!);

    // A Revoke whose page is no link of this account (forged): the link is revoked, the first page drawn.
    const forged = JSON.stringify({ l: ids[40]!, a: '00000000-0000-4000-8000-000000000000', n: 25 });
    before = t.standin.responses.length;
    const section = {
      type: 'section',
      text: { type: 'mrkdwn', text: 'A link' },
      accessory: {
        type: 'button',
        action_id: 'joinlink_revoke',
        text: { type: 'plain_text', text: 'Revoke' },
        value: forged,
      },
    };
    await t.slack.clickButton(
      { channel: 'C0GENERAL', ts: '1', blocks: [section] },
      { actionId: 'joinlink_revoke', value: forged },
      { user: 'UADMIN' },
    );
    const first = (await eventually(() => t.standin.responses[before])).body;
    expect((await t.em().findOne(JoinLink, ids[40]!, { refresh: true }))?.revokedAt).toBeTruthy();
    expect(JSON.stringify(first.blocks)).toContain(ids[59]!);
    expect(revokes(first).every((v) => !v.startsWith('{'))).toBe(true);
  });

  it("answers a member's Show more as it answers their /joinlink list, and a forged one with what to do", async () => {
    const anyLink = (await t.em().findOneOrFail(JoinLink, { channelId: 'C0TEAM0059' })).id;
    const member = await forge('UMEMBER', JSON.stringify({ a: anyLink, n: 25 }));
    expect(textOf(member)).toBe('Only admins can post join links.');
    // Another account's link, or a value Roster did not write: no list, and how to get one.
    const em = t.em();
    const other = await ensureAccount(em, 'TOTHERLIST');
    const theirs = em.create(JoinLink, {
      account: other,
      tokenHash: hashToken('other-account-link'),
      role: 'employee',
      expiresAt: new Date(Date.now() + DAY),
      createdBy: 'UOTHER',
      channelId: 'C0OTHER',
      messageTs: '1700009999.000100',
    });
    await em.flush();
    for (const bad of [JSON.stringify({ a: theirs.id, n: 25 }), 'not json', '{"a":"x","n":1}']) {
      const answer = await forge('UADMIN', bad);
      expect(textOf(answer)).toContain('Type `/joinlink list` to list them again.');
      expect(JSON.stringify(answer)).not.toContain('C0OTHER');
    }
  });
});
