import { ensureAccount } from '../../../src/features/accounts/account.service.ts';
import { User } from '../../../src/features/people/user.entity.ts';
import { eventually, startTestApp, type TestApp } from '../../support/app.ts';
import { buttonMessage, textOf } from '../../support/views.ts';

let t: TestApp;

beforeAll(async () => {
  t = await startTestApp({ seatLimit: 20 });
  const em = t.em();
  const account = await t.account();
  const at = (minutes: number) => new Date(Date.UTC(2026, 10, 1) + minutes * 60_000);
  // 70 the manager added (twenty added in the same instant, as a CSV import does), 3 the member added.
  for (let i = 0; i < 70; i++) {
    em.create(User, {
      account,
      email: `wait${String(i).padStart(2, '0')}@example.com`,
      role: 'client',
      status: i % 7 === 0 ? 'not_invited' : 'invited',
      addedBy: 'UMANAGER',
      createdAt: at(i < 20 ? 0 : i),
    });
  }
  for (let i = 0; i < 3; i++) {
    em.create(User, {
      account,
      email: `mine${i}@example.com`,
      role: 'client',
      status: 'invited',
      addedBy: 'UMEMBER',
      createdAt: at(100 + i),
    });
  }
  await em.flush();
});
afterAll(() => t.stop());

const listed = (body: any) => textOf(body).match(/(?:wait\d\d|mine\d)@example\.com/g) ?? [];

/** `/invite pending` as `user`, then Show more until there is none: every page's body. */
async function allPages(user: string, between?: (page: number) => Promise<void>) {
  let before = t.standin.responses.length;
  await t.slack.command('/invite', 'pending', { user });
  let current = (await eventually(() => t.standin.responses[before])).body;
  const pages = [current];
  while (JSON.stringify(current.blocks).includes('invite_pending_more')) {
    await between?.(pages.length);
    before = t.standin.responses.length;
    await t.slack.clickButton({ ...current, channel: 'C0GENERAL', ts: '1' }, 'Show more', { user });
    current = (await eventually(() => t.standin.responses[before])).body;
    pages.push(current);
    if (pages.length > 10) throw new Error('Show more never ends');
  }
  return pages;
}

describe('/invite pending, page after page', () => {
  it('lets an admin reach every one of 73 invitations, 24 at a time', async () => {
    const pages = await allPages('UADMIN');
    expect(pages.map((p) => listed(p).length)).toEqual([24, 24, 24, 1]);
    expect(new Set(pages.flatMap(listed)).size).toBe(73);
    expect(textOf(pages[0])).toContain('(1–24 of 73)');
    expect(textOf(pages[3])).toContain('(73–73 of 73)');
    expect(textOf(pages[3])).toContain('That is all.');
    for (const p of pages) expect(p.blocks.length).toBeLessThanOrEqual(50);
  });

  it('skips nobody when an invitation is cancelled between two pages', async () => {
    const pages = await allPages('UMANAGER', async (page) => {
      if (page !== 1) return;
      // One on the first page leaves: everyone after it moves up one place.
      const em = t.em();
      const user = await em.findOneOrFail(User, { email: 'wait69@example.com' });
      user.status = 'deactivated';
      await em.flush();
    });
    const emails = pages.flatMap(listed);
    expect(emails).not.toContain('mine0@example.com');
    expect(new Set(emails).size).toBe(70);
    expect(textOf(pages[0])).toContain('the ones you sent');
  });

  it('shows a member only the people they added, whatever a forged Show more says', async () => {
    const pages = await allPages('UMEMBER');
    expect(pages).toHaveLength(1);
    expect(listed(pages[0]).sort()).toEqual(['mine0@example.com', 'mine1@example.com', 'mine2@example.com']);

    const someoneElses = await t.em().findOneOrFail(User, { email: 'wait50@example.com' });
    const forge = async (value: string) => {
      const before = t.standin.responses.length;
      const message = {
        channel: 'C0GENERAL',
        ts: '1',
        blocks: [
          {
            type: 'actions',
            block_id: 'pending_more',
            elements: [
              {
                type: 'button',
                action_id: 'invite_pending_more',
                text: { type: 'plain_text', text: 'Show more' },
                value,
              },
            ],
          },
        ],
      };
      await t.slack.clickButton(message, 'Show more', { user: 'UMEMBER' });
      return (await eventually(() => t.standin.responses[before])).body;
    };
    const after = await forge(JSON.stringify({ a: someoneElses.id, n: 1 }));
    expect(listed(after).filter((e) => e.startsWith('wait'))).toEqual([]);
    for (const bad of ['{"a":"x","n":1}', 'not json', JSON.stringify({ a: someoneElses.id, n: -5 })]) {
      const answer = await forge(bad);
      expect(textOf(answer)).toContain('/invite pending');
      expect(listed(answer)).toEqual([]);
    }
  });

  it("refuses a member's forged Cancel on someone else's invitation or another account's person", async () => {
    const em = t.em();
    const theirs = await em.findOneOrFail(User, { email: 'wait10@example.com' });
    const other = await ensureAccount(em, 'TOTHERTEAM');
    const stranger = em.create(User, {
      account: other,
      email: 'x@other.test',
      role: 'client',
      status: 'invited',
    });
    await em.flush();
    for (const [id, answer] of [
      [theirs.id, 'Only the person who invited them or an admin can do that.'],
      [stranger.id, 'That person is no longer in Roster.'],
    ] as const) {
      await t.slack.clickButton(buttonMessage('invite_cancel', id, 'Cancel'), 'Cancel', { user: 'UMEMBER' });
      await t.standin.waitForResponse((r) => String(r.body.text).includes(answer));
    }
    expect((await t.em().findOneOrFail(User, theirs.id)).status).toBe('invited');
    expect((await t.em().findOneOrFail(User, stranger.id)).status).toBe('invited');
  });
});
