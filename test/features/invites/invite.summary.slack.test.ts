import { User } from '../../../src/features/people/user.entity.ts';
import { eventually, jobsDrained, startTestApp, type TestApp } from '../../support/app.ts';
import { textOf } from '../../support/views.ts';

let t: TestApp;

beforeAll(async () => {
  t = await startTestApp({ seatLimit: 20 });
});
afterAll(() => t.stop());

describe('the summary of 100 addresses at once', () => {
  it('names what happened to every address, refusals after the 45th included, within a message', async () => {
    const em = t.em();
    const account = await t.account();
    // Invited by someone else already: each line offers Resend, more than fit.
    for (let i = 0; i < 50; i++) {
      em.create(User, {
        account,
        email: `known${String(i).padStart(2, '0')}@example.com`,
        role: 'client',
        status: 'invited',
        addedBy: 'UMANAGER',
      });
    }
    await em.flush();
    const free = 10;
    await t.setSeatLimit((await t.roster.deps.seats.usage(t.em(), account)).used + free);
    const fresh = Array.from({ length: 50 }, (_, i) => `new${String(i).padStart(2, '0')}@example.com`);
    const known = Array.from({ length: 50 }, (_, i) => `known${String(i).padStart(2, '0')}@example.com`);
    const all = [...known, ...fresh];

    await t.slack.command('/invite', '', { user: 'UADMIN' });
    const view = t.standin.lastOpenedView();
    const result = await t.slack.submitView(
      view,
      { emails: all.join('\n'), role: 'employee' },
      { user: 'UADMIN' },
    );
    expect(result.status).toBe(200);

    const summary = await eventually(() =>
      t.standin.messages.find((m) => m.channel === 'DUADMIN' && String(m.text).startsWith('Invitations:')),
    );
    const text = textOf(summary);
    for (const email of all) expect(text).toContain(email);
    // The refusals are the last addresses of the list: each is named with its reason.
    const refused = fresh.slice(free);
    expect(refused.length).toBeGreaterThan(35);
    for (const email of refused) expect(text).toMatch(new RegExp(`${email}\\*: No paid seat is free`));
    expect(text).not.toContain('/invite pending` lists them all');
    expect(summary.blocks?.length).toBeLessThanOrEqual(49);
    // As many of the already invited as fit keep their Resend; the rest are sent to /invite pending.
    const resends = JSON.stringify(summary.blocks).match(/invite_resend/g) ?? [];
    expect(resends.length).toBeGreaterThan(20);
    expect(resends.length).toBeLessThan(50);
    expect(text).toContain('Resend the other invitations from `/invite pending`');
    // The progress line added under the heading keeps every line too.
    await jobsDrained(t.em());
    const updated = await eventually(() =>
      t.standin.messages.findLast((m) => m.method === 'chat.update' && textOf(m).includes('delivered')),
    );
    for (const email of all) expect(textOf(updated)).toContain(email);
  });

  it('points to the card of someone already deactivated or expired, where they can be brought back', async () => {
    const em = t.em();
    const account = await t.account();
    em.create(User, { account, email: 'gone@example.com', role: 'client', status: 'deactivated' });
    em.create(User, { account, email: 'late@example.com', role: 'client', status: 'expired' });
    await em.flush();
    const before = t.standin.messages.length;
    await t.slack.command('/invite', '', { user: 'UMANAGER' });
    const view = t.standin.lastOpenedView();
    await t.slack.submitView(
      view,
      { emails: 'GONE@example.com\nlate@example.com', role: 'client' },
      { user: 'UMANAGER' },
    );
    const summary = await eventually(() =>
      t.standin.messages
        .slice(before)
        .find((m) => m.channel === 'DUMANAGER' && String(m.text).startsWith('Invitations:')),
    );
    expect(textOf(summary)).toContain(
      'already in Roster, deactivated. An admin can reactivate them from their card: `/people gone@example.com`.',
    );
    expect(textOf(summary)).toContain(
      'already in Roster, invitation expired. An admin can invite them again from their card: `/people late@example.com`.',
    );
  });

  it('offers a member Resend only on their own invitations, not on those someone else sent', async () => {
    const em = t.em();
    const account = await t.account();
    const theirs = em.create(User, {
      account,
      email: 'hr-invited@example.com',
      role: 'client',
      status: 'invited',
      addedBy: 'UADMIN',
    });
    const own = em.create(User, {
      account,
      email: 'mine-invited@example.com',
      role: 'client',
      status: 'invited',
      addedBy: 'UMEMBER',
    });
    await em.flush();
    const before = t.standin.messages.length;
    await t.slack.command('/invite', '', { user: 'UMEMBER' });
    const view = t.standin.lastOpenedView();
    await t.slack.submitView(
      view,
      { emails: 'HR-invited@example.com, mine-invited@example.com', role: 'client' },
      { user: 'UMEMBER' },
    );
    const summary = await eventually(() =>
      t.standin.messages
        .slice(before)
        .find((m) => m.channel === 'DUMEMBER' && String(m.text).startsWith('Invitations:')),
    );
    const blocks = JSON.stringify(summary.blocks);
    expect(blocks).toContain(`"value":"${own.id}"`);
    expect(blocks).not.toContain(theirs.id);
    expect(textOf(summary)).toContain(
      'HR-invited@example.com*: already in Roster, invited. The person who added them, or an admin, can send their invitation.',
    );
  });
});
