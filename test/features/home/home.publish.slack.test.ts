import { query, sql } from '../../../src/db/sql.ts';
import { HOME_PUBLISH_JOB } from '../../../src/features/home/slack/events.ts';
import { DEFAULT_MEMBERS, eventually, startTestApp, type TestApp } from '../../support/app.ts';
import { textOf } from '../../support/views.ts';

let t: TestApp;

beforeAll(async () => {
  t = await startTestApp({
    seatLimit: 20,
    members: [
      ...DEFAULT_MEMBERS,
      { id: 'UNEW', name: 'nina', realName: 'Nina New', email: 'nina@acme.test' },
    ],
  });
});
afterAll(() => t.stop());

const open = (user: string) =>
  t.slack.event({ type: 'app_home_opened', user, tab: 'home', channel: `D${user}` });
const publishesTo = (user: string) =>
  t.standin
    .callsTo('views.publish')
    .filter((c) => c.args.user_id === user && !t.standin.rateLimited.includes(c)).length;

describe('publishing the Home tab', () => {
  it('calls Slack only when the tab would show something new', async () => {
    expect((await open('UADMIN')).status).toBe(200);
    expect(publishesTo('UADMIN')).toBe(1);
    expect(textOf(t.standin.homeView('UADMIN')!)).toMatch(/of 20\*/);
    // Opened again with nothing changed: Slack shows this tab already (it says so with the event).
    expect((await open('UADMIN')).status).toBe(200);
    expect(publishesTo('UADMIN')).toBe(1);
    // The seat limit changes: the next opening draws the tab again.
    await query(t.em(), sql`update account set seat_limit = 25`);
    expect((await open('UADMIN')).status).toBe(200);
    expect(publishesTo('UADMIN')).toBe(2);
    expect(textOf(t.standin.homeView('UADMIN')!)).toMatch(/of 25\*/);
  });

  it('does not let a member opening the tab over and over use up Slack’s limit for everyone else', async () => {
    for (let i = 0; i < 120; i++) expect((await open('UMEMBER')).status).toBe(200);
    expect(publishesTo('UMEMBER')).toBe(1);
    expect(t.standin.rateLimited.filter((c) => c.method === 'views.publish')).toHaveLength(0);
    expect((await open('UNEW')).status).toBe(200);
    expect(t.standin.homeView('UNEW')).toBeDefined();
  });

  it('publishes a tab Slack refused (rate-limited) from a job once Slack allows it, once however often it was opened', async () => {
    const jobs = async () =>
      (
        await query<{ n: number }>(
          t.em(),
          sql`select count(*)::int as n from pgboss.job where name = ${HOME_PUBLISH_JOB} and state = 'created'`,
        )
      )[0]!.n;
    await query(t.em(), sql`update account set seat_limit = 30`);
    t.standin.limitRate('views.publish', { max: 0, windowMs: 60_000, retryAfter: 2 });
    try {
      for (let i = 0; i < 3; i++) expect((await open('UADMIN')).status).toBe(200);
      expect(t.standin.rateLimited.filter((c) => c.method === 'views.publish').length).toBeGreaterThanOrEqual(
        3,
      );
      // Still the tab of before: Slack took none of the three.
      expect(textOf(t.standin.homeView('UADMIN')!)).toMatch(/of 25\*/);
      expect(await jobs()).toBe(1);
    } finally {
      t.standin.clearRateLimit('views.publish');
    }
    await eventually(() => textOf(t.standin.homeView('UADMIN')!).includes('of 30*') || null, 15_000);
    expect(publishesTo('UADMIN')).toBe(3);
    expect(await jobs()).toBe(0);
  });
});
