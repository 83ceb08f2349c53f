/**
 * The answer pages of the join form, of Confirm and of Accept are shown after a redirect, from a cookie
 * Roster sets on it. The cookie carries what the page needs to be drawn again, not the page: a whole page
 * grows with the names in it past the 4 KB a browser keeps of a cookie (then silently dropped), and would
 * hold the person's address where anything that reads the browser's cookies finds it.
 */
import { jest } from '@jest/globals';
import type { Browser } from 'playwright-core';
import { User } from '../../src/features/people/user.entity.ts';
import { postLink } from '../features/join-links/support.ts';
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

/** Far below a browser's 4 KB, whatever the names: the cookie holds a few short fields. */
const SMALL = 400;

/** What the outcome cookie shows anyone who reads it: its text, and each dot-separated part decoded. */
function readable(value: string): string {
  return [value, ...value.split('.').map((part) => Buffer.from(part, 'base64url').toString('latin1'))].join(
    '\n',
  );
}

/** A form on `url` as a browser sends it: GET for the CSRF field and cookie, then the POST. */
async function post(url: string, fields: Record<string, string>) {
  const form = await fetch(url);
  const body = await form.text();
  const csrf = /name="csrf" value="([^"]+)"/.exec(body)?.[1];
  if (!csrf) throw new Error(`no form at ${url}: ${form.status}`);
  const cookie = form.headers.getSetCookie().map((c) => c.split(';')[0]!);
  const res = await fetch(url, {
    method: 'POST',
    redirect: 'manual',
    headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: cookie.join('; ') },
    body: new URLSearchParams({ csrf, ...fields }).toString(),
  });
  expect(res.status).toBe(303);
  const outcome = res.headers.getSetCookie().find((c) => c.startsWith('roster_outcome='))!;
  const value = outcome.split(';')[0]!.slice('roster_outcome='.length);
  const page = await fetch(new URL(res.headers.get('location')!, url), {
    headers: { cookie: [...cookie, `roster_outcome=${value}`].join('; ') },
  });
  return { value, page: await page.text() };
}

it('keeps the address out of the cookie of "Check your inbox", and the page still names it', async () => {
  const { url } = await postLink(t);
  const email = 'cookie-reader@outside.test';
  const { value, page } = await post(url, { name: 'Cora Cookie', email });
  expect(page).toContain(`We sent an email to <strong>${email}</strong>.`);
  expect(page).toContain('to finish joining Acme.');
  expect(readable(value)).not.toContain(email);
  expect(readable(value)).not.toContain('cookie-reader');
  expect(value.length).toBeLessThan(SMALL);
});

it('keeps the address out of the cookie of a Confirm that finds the person invited meanwhile', async () => {
  const { url } = await postLink(t);
  const email = 'invited-meanwhile@outside.test';
  await post(url, { name: 'Ivo Meanwhile', email });
  const mail = await t.smtp.waitForMail((m) => m.toText === email);
  const confirm = links(mail).find((l) => l.includes('/join/confirm/'))!;
  await t.slack.command('/invite', '', { user: 'UADMIN' });
  await t.slack.submitView(t.standin.lastOpenedView(), { emails: email }, { user: 'UADMIN' });
  await t.smtp.waitForMail((m) => m.toText === email && m.subject !== mail.subject);

  const { value, page } = await post(confirm, { name: 'Ivo Meanwhile' });
  expect(page).toContain('<h1>You have an invitation waiting</h1>');
  expect(page).toContain(`${email} is invited to Acme but has not accepted yet.`);
  expect(readable(value)).not.toContain(email);
  expect(value.length).toBeLessThan(SMALL);
});

it('shows "You\'re in" with a very long non-ASCII name, after Accept and on reload, from a small cookie', async () => {
  const email = 'long-name@example.com';
  await t.slack.command('/invite', '', { user: 'UADMIN' });
  await t.slack.submitView(t.standin.lastOpenedView(), { emails: email }, { user: 'UADMIN' });
  const mail = await t.smtp.waitForMail((m) => m.toText === email);
  const link = links(mail).find((l) => l.includes('/invitations/'))!;
  // Names as long as an import takes them (255 characters each), in scripts that take several bytes a letter.
  const firstName = 'Ærøskøbing-Đặng “Ōtsuka” & O’Brien ‘Çağlayan’ Σωκράτης 李小龍 '
    .repeat(6)
    .slice(0, 255)
    .trim();
  const lastName = 'Ñúñez de Guzmán & Þórsdóttir-Władysław “Müller” Иванова 김민준 '
    .repeat(6)
    .slice(0, 255)
    .trim();
  await t.em().nativeUpdate(User, { email }, { firstName, lastName });

  const ctx = await browser.newContext();
  try {
    const page = await ctx.newPage();
    await page.goto(link);
    await page.click('button:has-text("Accept invitation")');
    await page.waitForSelector('h1.ok');
    const shown = `${firstName} ${lastName}, you are now an active member of Acme as an employee.`;
    expect(await page.textContent('main')).toContain(shown);
    await page.reload();
    expect(await page.textContent('h1')).toBe("You're in");
    expect(await page.textContent('main')).toContain(shown);
    const cookie = (await ctx.cookies()).find((c) => c.name === 'roster_outcome')!;
    expect(cookie.value.length).toBeLessThan(SMALL);
    expect(readable(cookie.value)).not.toContain(email);
  } finally {
    await ctx.close();
  }
  expect((await t.em().findOneOrFail(User, { email })).status).toBe('active');
});

it('shows the answer only at the page it was made for, and only for 15 minutes', async () => {
  const { url } = await postLink(t);
  const email = 'short-lived@outside.test';
  const { value, page } = await post(url, { name: 'Sol Short', email });
  expect(page).toContain(`We sent an email to <strong>${email}</strong>.`);
  const at = async (path: string) =>
    (await fetch(`${t.url}${path}`, { headers: { cookie: `roster_outcome=${value}` } })).text();
  expect(await at('/join/sent')).toContain(email);
  // Sent to another answer page (the browser scopes it to its own; this is someone sending it by hand).
  expect(await at('/join/confirmed')).toContain('Nothing more to do here');
  expect(await at('/invitations/accepted')).toContain('Nothing more to do here');
  const now = Date.now();
  const later = jest.spyOn(Date, 'now').mockReturnValue(now + 15 * 60_000 + 1000);
  try {
    const text = await at('/join/sent');
    expect(text).toContain('we sent an email to the address you entered');
    expect(text).not.toContain(email);
  } finally {
    later.mockRestore();
  }
});
