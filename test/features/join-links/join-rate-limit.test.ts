import { features } from '../../../src/features/index.ts';
import { createJoinLinksFeature } from '../../../src/features/join-links/index.ts';
import { JoinConfirmation } from '../../../src/features/join-links/join-link.entity.ts';
import { RateLimiter } from '../../../src/features/join-links/web/rate-limit.ts';
import { jobsDrained, startTestApp, type TestApp } from '../../support/app.ts';
import { httpFrom, openForm, postLink } from './support.ts';

// Small limits, so the test shows each one without hundreds of requests: 3 a minute per address,
// 5 a minute per link.
const limits = { perIp: 3, perLink: 5, windowMs: 60_000 };
let t: TestApp;

beforeAll(async () => {
  t = await startTestApp({
    features: features.map((f) => (f.name === 'join-links' ? createJoinLinksFeature(limits) : f)),
  });
});
afterAll(() => t.stop());

const sent = (email: string) => t.em().count(JoinConfirmation, { email });

describe('rate limits on the join form', () => {
  it('lets one address submit 3 times a minute, then shows a friendly page and sends nothing', async () => {
    const { url } = await postLink(t);
    const form = await openForm('127.0.0.11', url);
    const statuses: number[] = [];
    for (let i = 0; i < 3; i++) statuses.push((await form.submit('Ok', `ok${i}@outside.test`)).status);
    expect(statuses).toEqual([200, 200, 200]);

    const limited = await form.submit('Spam', 'spam@outside.test');
    expect(limited.status).toBe(429);
    expect(limited.headers['retry-after']).toBe('60');
    expect(limited.body).toContain('<h1>Too many tries</h1>');
    expect(limited.body).toContain('Please wait a minute, then try again.');
    expect(await sent('spam@outside.test')).toBe(0);

    // Another address is not held back by the first one.
    const other = await openForm('127.0.0.12', url);
    expect((await other.submit('Other', 'other@outside.test')).status).toBe(200);
  });

  it('lets one link take 5 submissions a minute from all addresses together', async () => {
    const { url } = await postLink(t);
    const second = await postLink(t);
    const statuses: number[] = [];
    for (let i = 0; i < 6; i++) {
      const form = await openForm(`127.0.0.${20 + i}`, url);
      statuses.push((await form.submit('Crowd', `crowd${i}@outside.test`)).status);
    }
    expect(statuses).toEqual([200, 200, 200, 200, 200, 429]);
    expect(await sent('crowd5@outside.test')).toBe(0);
    // The other link still works, from a fresh address.
    const form = await openForm('127.0.0.40', second.url);
    expect((await form.submit('Elsewhere', 'elsewhere@outside.test')).status).toBe(200);
  });
});

describe('an address asked for before, once the link is used up', () => {
  it('gets the same "Too many tries" as any other, so the page tells nobody which addresses were asked for', async () => {
    const { url } = await postLink(t);
    const asked = 'asked.before@outside.test';
    // Three emails for one address (its hour's worth), then two others: the link's five for the minute.
    for (let i = 0; i < 3; i++) {
      const form = await openForm(`127.0.5.${10 + i}`, url);
      expect((await form.submit('Asked', asked)).status).toBe(200);
      await jobsDrained(t.em());
    }
    for (let i = 0; i < 2; i++) {
      const form = await openForm(`127.0.5.${20 + i}`, url);
      expect((await form.submit('Other', `other.before${i}@outside.test`)).status).toBe(200);
    }
    const again = await (await openForm('127.0.5.30', url)).submit('Probe', asked);
    const never = await (await openForm('127.0.5.31', url)).submit('Probe', 'never.asked@outside.test');
    expect([again.status, never.status]).toEqual([429, 429]);
    expect(again.body).toBe(never.body);
  });
});

describe("one network address's share of a link", () => {
  // A share of 3 submissions a minute per network address, so the probe takes a few requests.
  let shared: TestApp;
  beforeAll(async () => {
    const share = { perIp: 50, perLink: 100, perIpPerLink: 3, windowMs: 60_000 };
    shared = await startTestApp({
      features: features.map((f) => (f.name === 'join-links' ? createJoinLinksFeature(share) : f)),
    });
  });
  afterAll(() => shared?.stop());

  /**
   * Someone probing whether `target` was asked for this hour: they ask for it twice from two addresses of
   * theirs, then from a third send a new address, another, the target and a third new one.
   */
  async function probe(target: string, net: number, someoneElseAsked: boolean) {
    const { url } = await postLink(shared);
    const asks = someoneElseAsked ? [1, 2, 3] : [2, 3];
    for (const host of asks) {
      expect((await (await openForm(`127.0.${net}.${host}`, url)).submit('X', target)).status).toBe(200);
      await jobsDrained(shared.em());
    }
    const form = await openForm(`127.0.${net}.9`, url);
    const statuses: number[] = [];
    for (const email of [`a${net}@outside.test`, `b${net}@outside.test`, target, `c${net}@outside.test`])
      statuses.push((await form.submit('Probe', email)).status);
    return statuses;
  }

  it('is used up alike whether or not someone else asked for an address, so it tells nothing of them', async () => {
    const asked = await probe('victim@outside.test', 60, true);
    const notAsked = await probe('nobody@outside.test', 61, false);
    expect(notAsked).toEqual([200, 200, 200, 429]);
    expect(asked).toEqual(notAsked);
  });
});

describe('junk posted to a link', () => {
  it('does not use up the link: a real joiner still gets through after junk from many addresses', async () => {
    const { url } = await postLink(t);
    // Six addresses post everything their own limit lets through, none of it a form Roster handed out:
    // no form token, a made-up one, and a real one with the fields left empty.
    const junk: number[] = [];
    for (let i = 0; i < 6; i++) {
      const from = `127.0.0.${60 + i}`;
      const bogus = new URLSearchParams({ name: 'Junk', email: `junk${i}@outside.test` });
      junk.push((await httpFrom(from, url, { method: 'POST', body: bogus.toString() })).status);
      bogus.set('csrf', 'made-up');
      junk.push((await httpFrom(from, url, { method: 'POST', body: bogus.toString() })).status);
      const form = await openForm(from, url);
      junk.push((await form.submit('', '')).status);
    }
    expect(junk).toEqual(Array.from({ length: 6 }, () => [403, 403, 422]).flat());
    expect(await t.em().count(JoinConfirmation, { email: { $like: 'junk%' } })).toBe(0);

    const joiner = await openForm('127.0.0.70', url);
    const res = await joiner.submit('Real Person', 'real@outside.test');
    expect(res.status).toBe(200);
    expect(res.body).toContain('Check your inbox');
    expect(await sent('real@outside.test')).toBe(1);
  });

  it('still limits each address, whatever it posts: guessing tokens stays slow', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++) {
      const guess = `${t.url}/join/guess${'x'.repeat(30)}${i}`;
      statuses.push(
        (await httpFrom('127.0.0.80', guess, { method: 'POST', body: 'name=a&email=a%40b.test' })).status,
      );
    }
    expect(statuses).toEqual([404, 404, 404, 429]);
  });
});

describe('RateLimiter', () => {
  it('slides its window: old hits stop counting, keys are counted apart', () => {
    let now = 0;
    const limiter = new RateLimiter(60_000, () => now);
    for (const at of [0, 10_000, 20_000]) {
      now = at;
      expect(limiter.allow('a', 3)).toBe(true);
    }
    expect(limiter.allow('a', 3)).toBe(false);
    expect(limiter.allow('b', 3)).toBe(true);
    now = 59_999;
    expect(limiter.allow('a', 3)).toBe(false);
    // The hit at 0 leaves the window: one more is allowed, then the hit at 10 s still counts.
    now = 60_000;
    expect(limiter.allow('a', 3)).toBe(true);
    expect(limiter.allow('a', 3)).toBe(false);
    now = 70_000;
    expect(limiter.allow('a', 3)).toBe(true);
  });

  it('says whether one more hit would be allowed without counting it', () => {
    const limiter = new RateLimiter(60_000, () => 0);
    expect(limiter.wouldAllow('c', 1)).toBe(true);
    expect(limiter.wouldAllow('c', 1)).toBe(true);
    expect(limiter.allow('c', 1)).toBe(true);
    expect(limiter.wouldAllow('c', 1)).toBe(false);
  });
});
