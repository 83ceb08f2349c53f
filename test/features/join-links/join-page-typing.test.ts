import type { Browser } from 'playwright-core';
import { JoinConfirmation } from '../../../src/features/join-links/join-link.entity.ts';
import { SeatRequest } from '../../../src/features/seats/seat-request.entity.ts';
import { startTestApp, type TestApp } from '../../support/app.ts';
import { launchBrowser } from '../../support/browser.ts';
import { links } from '../../support/smtp-sink.ts';
import { postLink } from './support.ts';

// What people type on the join pages, as a browser sends it: names with stray spaces, and addresses whose
// domain Chromium turns into its ASCII (punycode) form before sending.

let t: TestApp;
let browser: Browser;

beforeAll(async () => {
  t = await startTestApp({ seatLimit: 1000 });
  browser = await launchBrowser();
});
afterAll(async () => {
  await browser.close();
  await t.stop();
});

async function withSeatsFull<T>(fn: () => Promise<T>): Promise<T> {
  const { used } = await t.roster.deps.seats.usage(t.em(), await t.account());
  await t.setSeatLimit(used);
  try {
    return await fn();
  } finally {
    await t.setSeatLimit(1000);
  }
}

/** Fills in the join form in Chromium; returns the page, left on the answer. */
async function fillJoinForm(url: string, name: string, email: string) {
  const page = await browser.newPage();
  await page.goto(url);
  await page.fill('#name', name);
  await page.fill('#email', email);
  await page.click('button[type=submit]');
  await page.waitForSelector('h1');
  return page;
}

describe('a name typed with runs of spaces', () => {
  it('is saved with single spaces, from the join form and from the Confirm page', async () => {
    const { url } = await postLink(t);
    const page = await fillJoinForm(url, '  Émile   Zola ', 'emile@outside.test');
    expect(await page.textContent('h1')).toBe('Check your inbox');
    expect((await t.em().findOneOrFail(JoinConfirmation, { email: 'emile@outside.test' })).name).toBe(
      'Émile Zola',
    );
    const mail = await t.smtp.waitForMail((m) => m.toText === 'emile@outside.test');
    const confirm = links(mail).find((l) => l.includes('/join/confirm/'))!;
    await page.goto(confirm);
    expect(await page.inputValue('#name')).toBe('Émile Zola');
    // Corrected on the Confirm page, with spaces of other kinds between the words.
    await page.fill('#name', 'Émile \u00a0 Édouard\u2003 Zola');
    await withSeatsFull(async () => {
      await page.click('button:has-text("Confirm")');
      await page.waitForSelector('text=Almost there');
    });
    await page.close();
    expect((await t.em().findOneOrFail(SeatRequest, { email: 'emile@outside.test' })).name).toBe(
      'Émile Édouard Zola',
    );
  });
});

describe('an address at an international domain', () => {
  it('is shown in the form the person typed, while Roster keeps and mails the ASCII form', async () => {
    const { url } = await postLink(t);
    const page = await fillJoinForm(url, 'Zoé Zola', 'zoe@exämple.com');
    expect(await page.textContent('h1')).toBe('Check your inbox');
    const main = (await page.textContent('main'))!;
    expect(main).toContain('We sent an email to zoe@exämple.com.');
    expect(main).not.toContain('xn--');
    // Stored and mailed as Chromium sent it: the ASCII form every mail server takes.
    await t.em().findOneOrFail(JoinConfirmation, { email: 'zoe@xn--exmple-cua.com' });
    // (The sink reads the To header back in Unicode; the header as sent is the ASCII form.)
    const mail = await t.smtp.waitForMail((m) => m.toText === 'zoe@exämple.com');
    expect(mail.headerLines.find((h) => h.key === 'to')?.line).toBe('To: zoe@xn--exmple-cua.com');
    const confirm = links(mail).find((l) => l.includes('/join/confirm/'))!;
    await page.goto(confirm);
    const shown = (await page.textContent('main'))!;
    expect(shown).toContain('with zoe@exämple.com.');
    expect(shown).not.toContain('xn--');
    await page.close();
  });

  it('takes a top-level domain in another script too (.рф)', async () => {
    const { url } = await postLink(t);
    const page = await fillJoinForm(url, 'Ivan Petrov', 'ivan@пример.рф');
    expect(await page.textContent('h1')).toBe('Check your inbox');
    expect(await page.textContent('main')).toContain('We sent an email to ivan@пример.рф.');
    await t.em().findOneOrFail(JoinConfirmation, { email: 'ivan@xn--e1afmkfd.xn--p1ai' });
    const mail = await t.smtp.waitForMail((m) => m.toText === 'ivan@пример.рф');
    expect(mail.headerLines.find((h) => h.key === 'to')?.line).toBe('To: ivan@xn--e1afmkfd.xn--p1ai');
    await page.close();
  });
});
