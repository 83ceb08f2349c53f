/**
 * The server's own address, as someone who just ran `npm start` (or trimmed a link down to it) opens it in a
 * browser: a page saying Roster works in Slack and where Slack reaches it, not a 404.
 */
import type { Browser } from 'playwright-core';
import { startTestApp, type TestApp } from '../support/app.ts';
import { launchBrowser } from '../support/browser.ts';

let t: TestApp;
let browser: Browser;

beforeAll(async () => {
  t = await startTestApp();
  browser = await launchBrowser();
});
afterAll(async () => {
  await browser.close();
  await t.stop();
});

it('says Roster is running, works in Slack, and where Slack sends its requests', async () => {
  const page = await browser.newPage();
  const res = await page.goto(`${t.url}/`);
  expect(res?.status()).toBe(200);
  expect(await page.textContent('h1')).toBe('Roster is running');
  expect(await page.title()).toBe('Running · Roster');
  const text = (await page.textContent('main')) ?? '';
  expect(text).toContain('type /invite in any channel');
  expect(text).toContain(
    `Slack's Request URL for it (slash commands, interactivity, events) is ${t.url}/slack/events`,
  );
  // It offers nothing to click or submit, and tells nothing of the account.
  expect(await page.locator('form, a, input, button').count()).toBe(0);
  expect(text).not.toContain('Acme');
  await page.close();
});

it('answers HEAD as a monitor sends it, and still refuses a POST', async () => {
  const head = await fetch(`${t.url}/`, { method: 'HEAD' });
  expect(head.status).toBe(200);
  const post = await fetch(`${t.url}/`, { method: 'POST', body: 'x=1' });
  expect(post.status).toBe(405);
});
