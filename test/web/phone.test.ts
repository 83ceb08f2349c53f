/**
 * The pages on a phone (360 px wide) for an account whose name is one long word, as German compound names
 * are: the headings that name it wrap inside the card instead of pushing the page sideways.
 */
import type { Browser, Page } from 'playwright-core';
import { Account } from '../../src/features/accounts/account.entity.ts';
import { postLink } from '../features/join-links/support.ts';
import { startTestApp, type TestApp } from '../support/app.ts';
import { launchBrowser } from '../support/browser.ts';
import { links } from '../support/smtp-sink.ts';

const LONG_NAME = 'Donaudampfschifffahrtsgesellschaftskapitänswitwenverein';
let t: TestApp;
let browser: Browser;

beforeAll(async () => {
  t = await startTestApp({ seatLimit: 20 });
  browser = await launchBrowser();
  await t.em().nativeUpdate(Account, {}, { name: LONG_NAME });
});
afterAll(async () => {
  await browser.close();
  await t.stop();
});

/** How wide the page and the card's content are, against the card's own width. */
async function fits(page: Page) {
  // Evaluated in the page (a string: the project's types have no DOM).
  const w = (await page.evaluate(`({
    page: document.documentElement.scrollWidth,
    main: document.querySelector('main').scrollWidth,
    mainBox: document.querySelector('main').clientWidth,
  })`)) as { page: number; main: number; mainBox: number };
  expect(w.page).toBeLessThanOrEqual(360);
  expect(w.main).toBeLessThanOrEqual(w.mainBox);
}

it('fits the join form, its Confirm page and the invitation page into a 360 px wide screen', async () => {
  const ctx = await browser.newContext({
    viewport: { width: 360, height: 740 },
    deviceScaleFactor: 2,
    isMobile: true,
    hasTouch: true,
  });
  try {
    const page = await ctx.newPage();
    const { url } = await postLink(t);
    await page.goto(url);
    expect(await page.textContent('h1')).toBe(`Join ${LONG_NAME}`);
    await fits(page);

    const email = 'phone@outside.test';
    await page.fill('#name', 'Pia Phone');
    await page.fill('#email', email);
    await page.click('button[type=submit]');
    await page.waitForSelector('text=Check your inbox');
    const mail = await t.smtp.waitForMail((m) => m.toText === email);
    await page.goto(links(mail).find((l) => l.includes('/join/confirm/'))!);
    expect(await page.textContent('h1')).toBe(`Confirm to join ${LONG_NAME}`);
    await fits(page);

    const invited = 'phone-invited@example.com';
    await t.slack.command('/invite', '', { user: 'UADMIN' });
    await t.slack.submitView(t.standin.lastOpenedView(), { emails: invited }, { user: 'UADMIN' });
    const invitation = await t.smtp.waitForMail((m) => m.toText === invited);
    await page.goto(links(invitation).find((l) => l.includes('/invitations/'))!);
    expect(await page.textContent('h1')).toBe(`You're invited to ${LONG_NAME}`);
    await fits(page);
  } finally {
    await ctx.close();
  }
});
