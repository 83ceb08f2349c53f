/**
 * Roster behind a reverse proxy that serves it under a path prefix: PUBLIC_URL=http://…/roster, the proxy
 * strips `/roster` before passing the request on (as nginx's `location /roster/ { proxy_pass http://roster/; }`
 * does) and passes Roster's answers back untouched. Every link, redirect and cookie path the pages send must
 * then carry the prefix, or the browser leaves Roster for an address the proxy does not serve.
 */
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Browser } from 'playwright-core';
import { User } from '../../src/features/people/user.entity.ts';
import { postLink } from '../features/join-links/support.ts';
import { startTestApp, type TestApp } from '../support/app.ts';
import { launchBrowser } from '../support/browser.ts';
import { links } from '../support/smtp-sink.ts';

const PREFIX = '/roster';
let t: TestApp;
let browser: Browser;
let proxy: Server;
/** The proxy's origin; Roster's public address is this and PREFIX. */
let origin: string;
/** Paths the proxy was asked for that it does not serve: a page that led there left Roster. */
const strays: string[] = [];

beforeAll(async () => {
  t = await startTestApp({ seatLimit: 20 });
  browser = await launchBrowser();
  const target = new URL(t.url);
  proxy = createServer((req, res) => {
    const path = req.url ?? '/';
    if (!path.startsWith(`${PREFIX}/`)) {
      strays.push(path);
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end('not served by this proxy');
      return;
    }
    const upstream = request(
      {
        host: target.hostname,
        port: target.port,
        method: req.method,
        path: path.slice(PREFIX.length),
        headers: req.headers,
      },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    upstream.on('error', () => res.destroy());
    req.pipe(upstream);
  });
  await new Promise<void>((ok) => proxy.listen(0, '127.0.0.1', ok));
  origin = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
  t.roster.deps.config.publicUrl = `${origin}${PREFIX}`;
});
afterAll(async () => {
  await browser.close();
  await new Promise((ok) => proxy.close(ok));
  await t.stop();
});
beforeEach(() => {
  strays.length = 0;
});

/** A request through the proxy, redirects not followed; its cookies as `name=value` pairs. */
async function through(url: string, init: RequestInit = {}) {
  const res = await fetch(url, { redirect: 'manual', ...init });
  return {
    res,
    body: await res.text(),
    cookies: res.headers.getSetCookie(),
    pairs: res.headers.getSetCookie().map((c) => c.split(';')[0]!),
  };
}

describe('behind a proxy that serves Roster under a path prefix', () => {
  it('sends the join form to its answer page under the prefix, with the cookie that page needs', async () => {
    const { url } = await postLink(t);
    expect(url.startsWith(`${origin}${PREFIX}/join/`)).toBe(true);
    const form = await through(url);
    expect(form.res.status).toBe(200);
    const csrf = /name="csrf" value="([^"]+)"/.exec(form.body)![1]!;
    // The CSRF cookie stays within Roster's part of the site.
    expect(form.cookies[0]).toContain(`Path=${PREFIX}/`);

    const email = 'prefixed@outside.test';
    const posted = await through(url, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: form.pairs.join('; ') },
      body: new URLSearchParams({ csrf, name: 'Pia Prefix', email }).toString(),
    });
    expect(posted.res.status).toBe(303);
    const location = posted.res.headers.get('location')!;
    expect(new URL(location, url).toString()).toBe(`${origin}${PREFIX}/join/sent`);
    const outcome = posted.cookies.find((c) => c.startsWith('roster_outcome='))!;
    expect(outcome).toContain(`Path=${PREFIX}/join/sent`);

    const sent = await through(new URL(location, url).toString(), {
      headers: { cookie: [...form.pairs, ...posted.pairs].join('; ') },
    });
    expect(sent.res.status).toBe(200);
    expect(sent.body).toContain(`We sent an email to <strong>${email}</strong>`);
    expect(strays).toEqual([]);
  });

  it('links "open the confirmation link again" under the prefix', async () => {
    const { url } = await postLink(t);
    const email = 'reopen-prefixed@outside.test';
    const form = await through(url);
    const csrf = /name="csrf" value="([^"]+)"/.exec(form.body)![1]!;
    await through(url, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: form.pairs.join('; ') },
      body: new URLSearchParams({ csrf, name: 'Rea Open', email }).toString(),
    });
    const mail = await t.smtp.waitForMail((m) => m.toText === email);
    const confirm = links(mail).find((l) => l.includes('/join/confirm/'))!;
    expect(confirm.startsWith(`${origin}${PREFIX}/join/confirm/`)).toBe(true);
    // Confirm pressed with a form that does not go with the browser's cookie: the page links back to itself.
    const stale = await through(confirm, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        cookie: `roster_csrf=${'x'.repeat(32)}`,
      },
      body: new URLSearchParams({ csrf: 'nope', name: 'Rea Open' }).toString(),
    });
    expect(stale.res.status).toBe(403);
    const href = /<a href="([^"]+)">Open the confirmation link again/.exec(stale.body)![1]!;
    expect(new URL(href, confirm).toString()).toBe(confirm);
  });

  it('links "open the invitation again" under the prefix', async () => {
    const invited = 'reopen-invited@example.com';
    await t.slack.command('/invite', '', { user: 'UADMIN' });
    await t.slack.submitView(t.standin.lastOpenedView(), { emails: invited }, { user: 'UADMIN' });
    const mail = await t.smtp.waitForMail((m) => m.toText === invited);
    const link = links(mail).find((l) => l.includes('/invitations/'))!;
    expect(link.startsWith(`${origin}${PREFIX}/invitations/`)).toBe(true);
    const stale = await through(link, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        cookie: `roster_csrf=${'x'.repeat(32)}`,
      },
      body: new URLSearchParams({ csrf: 'nope' }).toString(),
    });
    expect(stale.res.status).toBe(403);
    const href = /<a href="([^"]+)">Open the invitation again/.exec(stale.body)![1]!;
    expect(new URL(href, link).toString()).toBe(link);
  });

  it('joins and accepts in a browser, every page under the prefix, reloads included', async () => {
    const ctx = await browser.newContext();
    try {
      const page = await ctx.newPage();
      const { url } = await postLink(t);
      const email = 'browser-prefixed@outside.test';
      await page.goto(url);
      await page.fill('#name', 'Bea Browser');
      await page.fill('#email', email);
      await page.click('button[type=submit]');
      await page.waitForSelector('text=Check your inbox');
      expect(page.url()).toBe(`${origin}${PREFIX}/join/sent`);
      await page.reload();
      expect(await page.textContent('main')).toContain(`We sent an email to ${email}.`);

      const mail = await t.smtp.waitForMail((m) => m.toText === email);
      await page.goto(links(mail).find((l) => l.includes('/join/confirm/'))!);
      await page.click('button:has-text("Confirm")');
      await page.waitForSelector('h1.ok');
      expect(page.url()).toBe(`${origin}${PREFIX}/join/confirmed`);
      await page.reload();
      expect(await page.textContent('h1')).toBe("You're in");
      expect((await t.em().findOneOrFail(User, { email })).status).toBe('active');

      const invited = 'invited-prefixed@example.com';
      await t.slack.command('/invite', '', { user: 'UADMIN' });
      await t.slack.submitView(t.standin.lastOpenedView(), { emails: invited }, { user: 'UADMIN' });
      const invitation = await t.smtp.waitForMail((m) => m.toText === invited);
      await page.goto(links(invitation).find((l) => l.includes('/invitations/'))!);
      await page.click('button:has-text("Accept invitation")');
      await page.waitForSelector('h1.ok');
      expect(page.url()).toBe(`${origin}${PREFIX}/invitations/accepted`);
      await page.reload();
      expect(await page.textContent('main')).toContain(`${invited}, you are now an active member of Acme`);
    } finally {
      await ctx.close();
    }
    expect(strays).toEqual([]);
  });
});
