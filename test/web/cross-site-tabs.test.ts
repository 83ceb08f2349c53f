/**
 * People open Roster's pages from links on another site (webmail, Slack's web client), sometimes twice, in
 * two tabs. The form in the first tab must still work: the CSRF cookie is sent on such a visit (SameSite=Lax)
 * and reused, never replaced. Roster runs on 127.0.0.1; the "webmail" on localhost is another site.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { Invitation } from '../../src/features/invites/invitation.entity.ts';
import { User } from '../../src/features/people/user.entity.ts';
import { postLink } from '../features/join-links/support.ts';
import { startTestApp, type TestApp } from '../support/app.ts';
import { launchBrowser } from '../support/browser.ts';
import { links } from '../support/smtp-sink.ts';

let t: TestApp;
let browser: Browser;
let webmail: Server;
let webmailUrl: string;
/** The link the webmail page shows, set by each test. */
let shown = '';

beforeAll(async () => {
  t = await startTestApp({ seatLimit: 20 });
  browser = await launchBrowser();
  webmail = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/html' });
    res.end(`<a id="link" href="${shown}" target="_blank">Open</a>`);
  });
  await new Promise<void>((ok) => webmail.listen(0, 'localhost', ok));
  webmailUrl = `http://localhost:${(webmail.address() as AddressInfo).port}/`;
});
afterAll(async () => {
  await browser.close();
  await new Promise((ok) => webmail.close(ok));
  await t.stop();
});

/** Opens `link` from the webmail page twice, each in a new tab, as a person clicking it twice does. */
async function openTwiceFromWebmail(ctx: BrowserContext, link: string): Promise<[Page, Page]> {
  shown = link;
  const mail = await ctx.newPage();
  await mail.goto(webmailUrl);
  const open = async () => {
    const [tab] = await Promise.all([ctx.waitForEvent('page'), mail.click('#link')]);
    await tab.waitForLoadState();
    return tab;
  };
  const first = await open();
  const second = await open();
  return [first, second];
}

async function invitationLink(email: string): Promise<string> {
  await t.slack.command('/invite', '', { user: 'UADMIN' });
  const res = await t.slack.submitView(t.standin.lastOpenedView(), { emails: email }, { user: 'UADMIN' });
  expect(res.status).toBe(200);
  const mail = await t.smtp.waitForMail((m) => m.toText === email);
  return links(mail).find((l) => l.includes('/invitations/'))!;
}

it('accepts an invitation in the first of two tabs opened from webmail on another site', async () => {
  const email = 'two-tabs@example.com';
  const link = await invitationLink(email);
  const ctx = await browser.newContext();
  try {
    const [first, second] = await openTwiceFromWebmail(ctx, link);
    expect(await first.textContent('h1')).toBe("You're invited to Acme");
    expect(await second.textContent('h1')).toBe("You're invited to Acme");

    await first.click('button:has-text("Accept invitation")');
    await first.waitForLoadState();
    expect(await first.textContent('h1')).toBe("You're in");
    // One cookie, set by the first tab and reused by the second.
    const cookies = (await ctx.cookies()).filter((c) => c.name === 'roster_csrf');
    expect(cookies).toHaveLength(1);
    expect(cookies[0]!.sameSite).toBe('Lax');
    expect(cookies[0]!.httpOnly).toBe(true);
    const user = await t.em().findOneOrFail(User, { email });
    expect(user.status).toBe('active');
    expect((await t.em().findOneOrFail(Invitation, { user: user.id })).status).toBe('accepted');

    // The second tab's Accept finds it done, and says so rather than failing.
    await second.click('button:has-text("Accept invitation")');
    await second.waitForLoadState();
    expect(await second.textContent('main')).toContain('You had already accepted this invitation.');
  } finally {
    await ctx.close();
  }
});

it('accepts from a tab opened from webmail after an earlier visit to Roster in that browser', async () => {
  const link = await invitationLink('earlier-visit@example.com');
  const ctx = await browser.newContext();
  try {
    const earlier = await ctx.newPage();
    await earlier.goto(link);
    const [tab] = await openTwiceFromWebmail(ctx, link);
    await tab.click('button:has-text("Accept invitation")');
    await tab.waitForLoadState();
    expect(await tab.textContent('h1')).toBe("You're in");
  } finally {
    await ctx.close();
  }
});

it('joins through the first of two tabs of a join link and of its confirmation link, both opened from another site', async () => {
  const { url } = await postLink(t);
  const email = 'two-tabs-join@outside.test';
  const ctx = await browser.newContext();
  try {
    const [first, second] = await openTwiceFromWebmail(ctx, url);
    expect(await second.textContent('h1')).toBe('Join Acme');
    await first.fill('#name', 'Tabitha Two');
    await first.fill('#email', email);
    await first.click('button[type=submit]');
    await first.waitForSelector('text=Check your inbox');

    const mail = await t.smtp.waitForMail((m) => m.toText === email);
    const confirm = links(mail).find((l) => l.includes('/join/confirm/'))!;
    const [a, b] = await openTwiceFromWebmail(ctx, confirm);
    expect(await b.textContent('h1')).toBe('Confirm to join Acme');
    await a.click('button:has-text("Confirm")');
    await a.waitForLoadState();
    expect(await a.textContent('h1')).toBe("You're in");
    expect((await t.em().findOneOrFail(User, { email })).status).toBe('active');
  } finally {
    await ctx.close();
  }
});
