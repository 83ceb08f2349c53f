/**
 * The emails as a phone shows them (320 px wide, the narrowest screen the web pages fit): the link written
 * out, a long account name and a personal message of one long word wrap inside the screen instead of
 * making the reader scroll sideways or the mail app shrink the text.
 */
import type { Browser } from 'playwright-core';
import { Account } from '../../src/features/accounts/account.entity.ts';
import { postLink } from '../features/join-links/support.ts';
import { startTestApp, type TestApp } from '../support/app.ts';
import { launchBrowser } from '../support/browser.ts';
import type { Mail } from '../support/smtp-sink.ts';

const LONG_NAME = 'Donaudampfschifffahrtsgesellschaftskapitänswitwenverein';
let t: TestApp;
let browser: Browser;

beforeAll(async () => {
  t = await startTestApp({ seatLimit: 20 });
  browser = await launchBrowser();
  await t.em().nativeUpdate(Account, {}, { name: LONG_NAME });
  // As long as a real address under a path prefix makes the links.
  t.roster.deps.config.publicUrl = `${t.url}/people-and-access/roster`;
});
afterAll(async () => {
  await browser.close();
  await t.stop();
});

/** How wide the email's HTML is laid out on a 320 px wide screen. */
async function widthOnPhone(mail: Mail): Promise<number> {
  const ctx = await browser.newContext({ viewport: { width: 320, height: 640 }, javaScriptEnabled: false });
  try {
    const page = await ctx.newPage();
    await page.setContent(String(mail.html));
    return (await page.evaluate('document.documentElement.scrollWidth')) as number;
  } finally {
    await ctx.close();
  }
}

it('fits the invitation email into a 320 px wide screen', async () => {
  await t.slack.command('/invite', '', { user: 'UADMIN' });
  await t.slack.submitView(
    t.standin.lastOpenedView(),
    { emails: 'narrow@example.com', message: `Welcome! ${'🎉'.repeat(3)}${LONG_NAME}${LONG_NAME}` },
    { user: 'UADMIN' },
  );
  const mail = await t.smtp.waitForMail((m) => m.toText === 'narrow@example.com');
  expect(String(mail.html)).toContain('/people-and-access/roster/invitations/');
  expect(await widthOnPhone(mail)).toBeLessThanOrEqual(320);
});

it('fits the join confirmation email into a 320 px wide screen', async () => {
  const { url } = await postLink(t);
  const res = await fetch(url.replace('/people-and-access/roster', ''));
  const csrf = /name="csrf" value="([^"]+)"/.exec(await res.text())?.[1] ?? '';
  const cookie = res.headers.get('set-cookie')?.split(';')[0] ?? '';
  await fetch(url.replace('/people-and-access/roster', ''), {
    method: 'POST',
    redirect: 'manual',
    headers: { 'content-type': 'application/x-www-form-urlencoded', cookie },
    body: new URLSearchParams({ csrf, name: 'Nia Narrow', email: 'nia@outside.test' }).toString(),
  });
  const mail = await t.smtp.waitForMail((m) => m.toText === 'nia@outside.test');
  expect(String(mail.html)).toContain('/people-and-access/roster/join/confirm/');
  expect(await widthOnPhone(mail)).toBeLessThanOrEqual(320);
});
