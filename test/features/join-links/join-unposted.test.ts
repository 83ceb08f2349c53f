import { AuditEvent } from '../../../src/features/audit/audit-event.entity.ts';
import { closeUnpostedLinks } from '../../../src/features/join-links/index.ts';
import { JoinLink } from '../../../src/features/join-links/join-link.entity.ts';
import { startSecondInstance, startTestApp, type TestApp } from '../../support/app.ts';
import { textOf } from '../../support/views.ts';

// A link is written, then posted, then its message recorded: a process that stops between those steps
// leaves a link with no recorded message, which must never look like one people can use.

let t: TestApp;

beforeAll(async () => {
  t = await startTestApp({ seatLimit: 1000 });
});
afterAll(async () => {
  await t.stop();
});

/**
 * A link whose post never comes back: the instance making it is still waiting on Slack, or stopped
 * there. Resolves once the link is written.
 */
async function linkStuckPosting(): Promise<string> {
  const account = await t.account();
  let written: (id: string) => void;
  const id = new Promise<string>((r) => {
    written = r;
  });
  void t.roster.deps.joinLinks.create(
    t.em(),
    account,
    { slackUserId: 'UADMIN', isAdmin: true, surface: 'slack' },
    { role: 'employee', expiryDays: 30, maxUses: null, allowedDomains: [], channelId: 'C0GENERAL' },
    (link) => {
      written(link.id);
      return new Promise(() => {});
    },
  );
  return id;
}

const makeOld = (id: string, minutes: number) =>
  t
    .em()
    .getConnection()
    .execute(`update join_link set created_at = now() - make_interval(mins => ?) where id = ?`, [
      minutes,
      id,
    ]);

async function listText(): Promise<string> {
  const since = t.standin.responses.length;
  await t.slack.command('/joinlink', 'list', { user: 'UADMIN' });
  return textOf(t.standin.responses[since]!.body);
}

describe('a join link whose message was never posted', () => {
  it('shows as not posted in the list, with no Revoke, never as active', async () => {
    const id = await linkStuckPosting();
    const since = t.standin.responses.length;
    await t.slack.command('/joinlink', 'list', { user: 'UADMIN' });
    const list = t.standin.responses[since]!.body;
    const line = textOf(list)
      .split('\n')
      .find((l) => l.includes('not posted') || l.includes('*active*') || l.includes(id));
    expect(line).toMatch(/Employee \(paid seat\) in <#C0GENERAL>: \*not posted\* · made /);
    expect(line).toContain('Post a new one with `/joinlink`');
    expect(JSON.stringify(list.blocks)).not.toContain(id);
    // Nor is it counted among the active links on the Home tab.
    await t.slack.event({ type: 'app_home_opened', user: 'UADMIN', tab: 'home', channel: 'DUADMIN' });
    expect(textOf(t.standin.homeView('UADMIN')!)).toContain('*Active join links* (0)');
    await makeOld(id, 60);
    await closeUnpostedLinks(t.roster.deps);
  });

  it('is closed once left unposted for minutes, once with two instances sweeping, and its maker is told', async () => {
    const id = await linkStuckPosting();
    let since = 0;
    const second = await startSecondInstance(t);
    try {
      // Being posted this moment (by this instance or another): not touched.
      expect(await Promise.all([closeUnpostedLinks(t.roster.deps), closeUnpostedLinks(second.deps)])).toEqual(
        [0, 0],
      );
      expect((await t.em().findOneOrFail(JoinLink, id)).revokedAt).toBeNull();

      await makeOld(id, 11);
      since = t.standin.messages.length;
      const closed = await Promise.all([closeUnpostedLinks(t.roster.deps), closeUnpostedLinks(second.deps)]);
      expect(closed.sort()).toEqual([0, 1]);
    } finally {
      await second.stop();
    }
    const link = await t.em().findOneOrFail(JoinLink, id);
    expect(link.revokedAt).not.toBeNull();
    expect(link.revokedBy).toBeNull();
    expect(
      await t.em().count(AuditEvent, { action: 'join_link.revoked', subjectId: id, actor: 'roster' }),
    ).toBe(1);
    const dm = await t.standin.waitForMessage(
      (m) =>
        t.standin.messages.indexOf(m) >= since &&
        m.channel === 'DUADMIN' &&
        textOf(m).includes(' never posted'),
    );
    expect(textOf(dm)).toMatch(
      /^:warning: The join link you made in <#C0GENERAL> .* was never posted: .*Roster closed it, so nobody can join through it.*Post a new one with `\/joinlink`\./,
    );
    // Swept again: nothing more, nobody told twice.
    expect(await closeUnpostedLinks(t.roster.deps)).toBe(0);
    await new Promise((r) => setTimeout(r, 500));
    expect(
      t.standin.messages
        .slice(since)
        .filter((m) => m.channel === 'DUADMIN' && textOf(m).includes('never posted')),
    ).toHaveLength(1);
    const line = (await listText()).split('\n').find((l) => l.includes('not posted'));
    expect(line).toMatch(/\*not posted\* · closed, nobody can join through it/);
  });

  it('is revoked by its id without claiming a message that says so', async () => {
    const id = await linkStuckPosting();
    const since = t.standin.responses.length;
    await t.slack.command('/joinlink', `revoke ${id}`, { user: 'UADMIN' });
    const answer = textOf(t.standin.responses[since]!.body);
    expect(answer).toBe(
      ':no_entry_sign: Revoked the join link in <#C0GENERAL>: its button and URL no longer work.',
    );
    expect((await t.em().findOneOrFail(JoinLink, id)).revokedAt).not.toBeNull();
  });

  it('leaves posted links alone however old', async () => {
    const before = await t.em().count(JoinLink, { revokedAt: null, messageTs: { $ne: null } });
    await t
      .em()
      .getConnection()
      .execute(`update join_link set created_at = now() - interval '1 day' where message_ts is not null`);
    expect(await closeUnpostedLinks(t.roster.deps)).toBe(0);
    expect(await t.em().count(JoinLink, { revokedAt: null, messageTs: { $ne: null } })).toBe(before);
  });
});
