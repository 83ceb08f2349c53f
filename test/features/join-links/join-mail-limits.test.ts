import { features } from '../../../src/features/index.ts';
import { createJoinLinksFeature } from '../../../src/features/join-links/index.ts';
import { JoinConfirmation } from '../../../src/features/join-links/join-link.entity.ts';
import { jobsDrained, startTestApp, type TestApp } from '../../support/app.ts';
import { openForm, postLink } from './support.ts';

// Small limits, so each shows without hundreds of requests: a link takes 8 forms a minute, at most 2 of
// them from one network address.
const limits = { perIp: 10, perLink: 8, perIpPerLink: 2, windowMs: 60_000 };
let t: TestApp;

beforeAll(async () => {
  t = await startTestApp({
    features: features.map((f) => (f.name === 'join-links' ? createJoinLinksFeature(limits) : f)),
  });
});
afterAll(() => t.stop());

const mailsTo = (email: string) => t.smtp.messages.filter((m) => m.toText === email).length;

describe('confirmation emails to one address', () => {
  it('go out at most 3 an hour, whatever links and network addresses ask, and every answer is the same', async () => {
    const first = await postLink(t);
    const second = await postLink(t);
    const victim = 'victim@outside.test';
    const answers: { status: number; body: string }[] = [];
    for (let i = 0; i < 6; i++) {
      const form = await openForm(`127.0.1.${10 + i}`, (i % 2 ? second : first).url);
      const { status, body } = await form.submit('Anyone', victim);
      answers.push({ status, body });
      // Each email is sent before the next form, so none of them waits to serve a later one.
      await jobsDrained(t.em());
    }
    expect(answers.map((a) => a.status)).toEqual([200, 200, 200, 200, 200, 200]);
    expect(new Set(answers.map((a) => a.body)).size).toBe(1);
    expect(answers[0]!.body).toContain('Check your inbox');
    expect(await t.em().count(JoinConfirmation, { email: victim })).toBe(3);
    expect(mailsTo(victim)).toBe(3);

    // Another address is not held back by the first one.
    const form = await openForm('127.0.1.30', first.url);
    expect((await form.submit('Other', 'other-victim@outside.test')).status).toBe(200);
    await t.smtp.waitForMail((m) => m.toText === 'other-victim@outside.test');
  });
});

describe('a link under attack from a few network addresses', () => {
  it('still takes the form of someone really joining', async () => {
    const { url } = await postLink(t);
    const statuses: number[][] = [];
    for (let a = 0; a < 3; a++) {
      const form = await openForm(`127.0.2.${10 + a}`, url);
      const mine: number[] = [];
      for (let i = 0; i < 3; i++) mine.push((await form.submit('Bot', `bot${a}-${i}@outside.test`)).status);
      statuses.push(mine);
    }
    // Each address got its share of the link (2), then "Too many tries": 6 of the link's 8 used.
    expect(statuses).toEqual([
      [200, 200, 429],
      [200, 200, 429],
      [200, 200, 429],
    ]);
    expect(await t.em().count(JoinConfirmation, { email: { $like: 'bot%-2@outside.test' } })).toBe(0);

    const joiner = await openForm('127.0.2.40', url);
    const res = await joiner.submit('Real Person', 'real-joiner@outside.test');
    expect(res.status).toBe(200);
    expect(res.body).toContain('Check your inbox');
    await t.smtp.waitForMail((m) => m.toText === 'real-joiner@outside.test');
  });
});
