import type { Roster } from '../src/app.ts';
import { features } from '../src/features/index.ts';
import { createJoinLinksFeature } from '../src/features/join-links/index.ts';
import { User } from '../src/features/people/user.entity.ts';
import { SeatRequest } from '../src/features/seats/seat-request.entity.ts';
import { openForm, postLink } from './features/join-links/support.ts';
import {
  eventually,
  SIGNING_SECRET,
  startSecondInstance,
  startTestApp,
  TEAM_ID,
  type TestApp,
} from './support/app.ts';
import { SlackDriver } from './support/slack-driver.ts';

// Two Roster processes' worth of app (each its own pool, job workers, HTTP server) on one database, as two
// instances behind one address: they must act as one.

const limits = { perIp: 3, perLink: 100, windowMs: 60_000 };
const withLimits = features.map((f) => (f.name === 'join-links' ? createJoinLinksFeature(limits) : f));

let t: TestApp;
let second: Roster;
let secondSlack: SlackDriver;

beforeAll(async () => {
  t = await startTestApp({ features: withLimits, seatLimit: 10 });
  // The second instance stands behind a proxy that sets X-Forwarded-For; the first does not trust it.
  second = await startSecondInstance(t, { env: { TRUST_PROXY: 'true' }, features: withLimits });
  secondSlack = new SlackDriver({
    appUrl: second.url,
    signingSecret: SIGNING_SECRET,
    standin: t.standin,
    teamId: TEAM_ID,
  });
});
afterAll(async () => {
  await second?.stop();
  await t.stop();
});

describe('two instances on one database', () => {
  it('count the join page rate limit together, even when a client spreads its tries over both', async () => {
    const { token } = await postLink(t);
    const onFirst = await openForm('127.0.0.61', `${t.url}/join/${token}`);
    const onSecond = await openForm('127.0.0.61', `${second.url}/join/${token}`);
    const tries = await Promise.all(
      Array.from({ length: 8 }, (_, i) =>
        (i % 2 ? onSecond : onFirst).submit('Spread', `spread${i}@outside.test`),
      ),
    );
    const statuses = tries.map((r) => r.status).sort();
    expect(statuses).toEqual([200, 200, 200, 429, 429, 429, 429, 429]);
    // Each accepted try was mailed its confirmation once, though both instances run the mail job.
    const accepted = tries.flatMap((r, i) => (r.status === 200 ? [`spread${i}@outside.test`] : []));
    for (const email of accepted) await t.smtp.waitForMail((m) => m.toText === email);
    await eventually(async () => {
      const mailed = t.smtp.messages.filter((m) => m.toText.startsWith('spread')).map((m) => m.toText);
      return mailed.length === accepted.length && mailed.sort().join() === accepted.sort().join();
    });
  });

  it('never pass the seat limit when admins approve on both at once, and post each request once', async () => {
    const account = await t.account();
    const { used } = await t.roster.deps.seats.usage(t.em(), account);
    await t.setSeatLimit(used + 4);
    const requester = { slackUserId: 'UMANAGER', isAdmin: false, surface: 'slack' as const };
    const requests: string[] = [];
    for (let i = 0; i < 10; i++) {
      const em = t.em();
      const user = em.create(User, {
        account,
        email: `both${i}@example.com`,
        role: 'employee',
        status: 'locked',
      });
      await em.flush();
      // Half the requests are filed through each instance.
      const roster = i % 2 ? second : t.roster;
      const result = await roster.deps.people.unlock(roster.orm.em.fork(), account, requester, user.id);
      if (result.status !== 'requested') throw new Error('expected a seat request');
      requests.push(result.request.id);
    }
    const copies = await Promise.all(
      requests.map((id) =>
        eventually(() =>
          t.standin.messages.find(
            (m) =>
              m.method === 'chat.postMessage' &&
              m.channel === 'DUADMIN' &&
              JSON.stringify(m.blocks ?? []).includes(id),
          ),
        ),
      ),
    );
    const clicks = copies.flatMap((copy) => [
      t.slack.clickButton(copy, { actionId: 'seat_approve' }, { user: 'UADMIN' }),
      secondSlack.clickButton(copy, { actionId: 'seat_approve' }, { user: 'UOWNER' }),
    ]);
    const answers = await Promise.all(clicks);
    expect(answers.every((a) => a.status === 200)).toBe(true);

    expect(await t.roster.deps.seats.usage(t.em(), account)).toEqual({
      used: used + 4,
      limit: used + 4,
      free: 0,
    });
    expect(await t.em().count(SeatRequest, { id: { $in: requests }, status: 'approved' })).toBe(4);
    // The job that posts a request to the admins ran once per request, whichever instance took it.
    for (const id of requests) {
      const posts = t.standin.messages.filter(
        (m) =>
          m.method === 'chat.postMessage' &&
          m.channel === 'DUADMIN' &&
          JSON.stringify(m.blocks ?? []).includes(id),
      );
      expect(posts).toHaveLength(1);
    }
  });

  it('believe X-Forwarded-For only with TRUST_PROXY', async () => {
    const { token } = await postLink(t);
    /** Five tries through one connection address, each claiming another client address. */
    const tries = async (base: string, prefix: string) => {
      const statuses: number[] = [];
      for (let i = 0; i < 5; i++) {
        const page = await fetch(`${base}/join/${token}`);
        const csrf = (await page.text()).match(/name="csrf" value="([^"]+)"/)?.[1] ?? '';
        const cookie = (page.headers.getSetCookie()[0] ?? '').split(';')[0] ?? '';
        const res = await fetch(`${base}/join/${token}`, {
          method: 'POST',
          headers: {
            'content-type': 'application/x-www-form-urlencoded',
            cookie,
            'x-forwarded-for': `203.0.113.9, ${prefix}.${i}`,
          },
          body: new URLSearchParams({
            csrf,
            name: 'Proxied',
            email: `${prefix}-${i}@outside.test`,
          }).toString(),
        });
        statuses.push(res.status);
      }
      return statuses;
    };
    // Trusted: five clients, one try each; the proxy's last entry is the client, the rest could be forged.
    expect(await tries(second.url, '198.51.100')).toEqual([200, 200, 200, 200, 200]);
    // Not trusted: one client (the connection's address), held at 3 tries.
    expect(await tries(t.url, '192.0.2')).toEqual([200, 200, 200, 429, 429]);
  });
});
