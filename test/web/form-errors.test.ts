/**
 * The join form and the Confirm page used with the keyboard alone, as a screen reader's user does: after a
 * refusal, the page's title (the first thing a screen reader reads of a new page) says there is an error,
 * and the cursor is back in the field to correct, not at the top of a page that reads as before.
 */
import type { Browser, Page } from 'playwright-core';
import { openForm, postLink } from '../features/join-links/support.ts';
import { startTestApp, type TestApp } from '../support/app.ts';
import { launchBrowser } from '../support/browser.ts';
import { links } from '../support/smtp-sink.ts';

let t: TestApp;
let browser: Browser;

beforeAll(async () => {
  t = await startTestApp({ seatLimit: 20 });
  browser = await launchBrowser();
});
afterAll(async () => {
  await browser.close();
  await t.stop();
});

const focused = (page: Page) => page.evaluate('document.activeElement && document.activeElement.id');

it('says a refused join form is in error, in its title, and puts the cursor in the field to correct', async () => {
  const { url } = await postLink(t);
  const page = await browser.newPage();
  try {
    await page.goto(url);
    expect(await page.title()).toBe('Join Acme · Roster');
    await page.keyboard.press('Tab');
    expect(await focused(page)).toBe('name');
    await page.keyboard.type('Kim Keys');
    await page.keyboard.press('Tab');
    await page.keyboard.type('kim at outside.test');
    await page.keyboard.press('Enter');
    await page.waitForSelector('#email-error');

    expect(await page.title()).toBe('Error: Join Acme · Roster');
    expect(await focused(page)).toBe('email');
    // Corrected where the cursor is, and sent: the form is taken.
    await page.keyboard.press('ControlOrMeta+A');
    await page.keyboard.type('kim@outside.test');
    await page.keyboard.press('Enter');
    await page.waitForSelector('text=Check your inbox');
    expect(await page.title()).toBe('Check your inbox · Roster');
  } finally {
    await page.close();
  }
});

it('says a refused Confirm is in error, in its title, and puts the cursor in the name', async () => {
  const { url } = await postLink(t);
  const email = 'lee@outside.test';
  expect((await (await openForm('127.0.0.31', url)).submit('Lee Keys', email)).status).toBe(200);
  const mail = await t.smtp.waitForMail((m) => m.toText === email);
  const page = await browser.newPage();
  try {
    await page.goto(links(mail).find((l) => l.includes('/join/confirm/'))!);
    await page.keyboard.press('Tab');
    expect(await focused(page)).toBe('name');
    await page.keyboard.press('ControlOrMeta+A');
    await page.keyboard.type('Lee <Keys>');
    await page.keyboard.press('Enter');
    await page.waitForSelector('#name-error');

    expect(await page.title()).toBe('Error: Join Acme · Roster');
    expect(await focused(page)).toBe('name');
  } finally {
    await page.close();
  }
});
