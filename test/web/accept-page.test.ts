import type { Browser } from 'playwright-core';
import { Account } from '../../src/features/accounts/account.entity.ts';
import { AuditEvent } from '../../src/features/audit/audit-event.entity.ts';
import { Invitation } from '../../src/features/invites/invitation.entity.ts';
import { User } from '../../src/features/people/user.entity.ts';
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

/** An admin invites `email` with /invite; returns the link from the invitation email. */
async function invitationLink(email: string): Promise<string> {
  await t.slack.command('/invite', '', { user: 'UADMIN' });
  const res = await t.slack.submitView(t.standin.lastOpenedView(), { emails: email }, { user: 'UADMIN' });
  expect(res.status).toBe(200);
  const mail = await t.smtp.waitForMail((m) => m.toText === email);
  const link = links(mail).find((l) => l.includes('/invitations/'));
  if (!link) throw new Error(`no invitation link in the mail to ${email}`);
  return link;
}

/** What accepting would change: the user's status, the invitation's and the audit trail. */
async function state(email: string) {
  const em = t.em();
  const user = await em.findOneOrFail(User, { email });
  const invitation = await em.findOneOrFail(Invitation, { user: user.id });
  return {
    user: user.status,
    invitation: invitation.status,
    acceptedAt: invitation.acceptedAt ?? null,
    audits: await em.count(AuditEvent, { action: 'invitation.accepted', subjectId: invitation.id }),
  };
}

describe('the invitation page', () => {
  it('only shows the invitation when opened, by a mail scanner or a person; Accept accepts', async () => {
    const email = 'scanned@example.com';
    const link = await invitationLink(email);
    const untouched = await state(email);
    expect(untouched).toEqual({ user: 'invited', invitation: 'pending', acceptedAt: null, audits: 0 });

    const scanned = await fetch(link);
    expect(scanned.status).toBe(200);
    expect(await scanned.text()).toContain('Accept invitation');
    expect((await fetch(link, { method: 'HEAD' })).status).toBe(200);
    expect(await state(email)).toEqual(untouched);

    const page = await browser.newPage();
    await page.goto(link);
    expect(await page.textContent('h1')).toBe("You're invited to Acme");
    expect(await state(email)).toEqual(untouched);

    await page.click('button:has-text("Accept invitation")');
    await page.waitForSelector('h1.ok');
    await page.close();
    const accepted = await state(email);
    expect(accepted).toMatchObject({ user: 'active', audits: 1 });
    expect(accepted.acceptedAt).toBeInstanceOf(Date);
  });
});

/** The page's form as a person's browser holds it: the CSRF field and the cookie that goes with it. */
async function openForm(link: string) {
  const res = await fetch(link);
  expect(res.status).toBe(200);
  const body = await res.text();
  const field = /name="csrf" value="([^"]+)"/.exec(body)?.[1];
  const cookie = res.headers.get('set-cookie')?.split(';')[0];
  if (!field || !cookie) throw new Error('the invitation page has no CSRF field or cookie');
  return { body, field, cookie };
}

/** Presses Accept; the 303 that answers it is followed as a browser does, with the cookie it sets. */
async function accept(link: string, form: { field: string; cookie?: string }) {
  const res = await fetch(link, {
    method: 'POST',
    redirect: 'manual',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      ...(form.cookie ? { cookie: form.cookie } : {}),
    },
    body: new URLSearchParams({ csrf: form.field }).toString(),
  });
  const location = res.headers.get('location');
  if (res.status !== 303 || !location) return res;
  const cookie = [form.cookie, ...res.headers.getSetCookie().map((c) => c.split(';')[0])]
    .filter(Boolean)
    .join('; ');
  return fetch(new URL(location, link), { headers: { cookie } });
}

describe('reloading the page after Accept', () => {
  it('shows "You\'re in" again, at an address without the token, and accepts once', async () => {
    const email = 'reloads@example.com';
    const link = await invitationLink(email);
    const page = await browser.newPage();
    try {
      await page.goto(link);
      await page.click('button:has-text("Accept invitation")');
      await page.waitForSelector('h1.ok');
      expect(page.url()).toBe(`${t.url}/invitations/accepted`);
      const first = await page.textContent('main');
      expect(first).toContain('reloads@example.com, you are now an active member of Acme as an employee.');
      await page.reload();
      expect(await page.textContent('h1')).toBe("You're in");
      expect(await page.textContent('main')).toBe(first);
      await page.goBack();
      await page.goForward();
      expect(await page.textContent('main')).toBe(first);
    } finally {
      await page.close();
    }
    expect(await state(email)).toMatchObject({ user: 'active', invitation: 'accepted', audits: 1 });
  });

  it('does not say "You\'re in" when reloaded after the person was deactivated', async () => {
    const email = 'reload-deactivated@example.com';
    const link = await invitationLink(email);
    const form = await openForm(link);
    const pressed = await fetch(link, {
      method: 'POST',
      redirect: 'manual',
      headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: form.cookie },
      body: new URLSearchParams({ csrf: form.field }).toString(),
    });
    expect(pressed.status).toBe(303);
    const answer = new URL(pressed.headers.get('location') ?? '', link);
    const cookie = [form.cookie, ...pressed.headers.getSetCookie().map((c) => c.split(';')[0])].join('; ');
    expect(await (await fetch(answer, { headers: { cookie } })).text()).toContain(
      'you are now an active member',
    );
    const user = await t.em().findOneOrFail(User, { email });
    const admin = { slackUserId: 'UADMIN', isAdmin: true, surface: 'slack' as const };
    await t.roster.deps.person.deactivate(t.em(), await t.account(), admin, user.id);
    const reloaded = await (await fetch(answer, { headers: { cookie } })).text();
    expect(reloaded).not.toContain('active member');
    expect(reloaded).toContain('This invitation no longer gives access');
    expect(reloaded).not.toContain('you are in');
  });

  it('says there is nothing more to do when the page is opened by itself', async () => {
    const res = await fetch(`${t.url}/invitations/accepted`);
    expect(res.status).toBe(200);
    expect(await res.text()).toContain('If you pressed Accept on your invitation, you are in');
  });
});

describe('the invitation page, the other ways people reach it', () => {
  it("shows the inviter's personal message, as they wrote it and escaped", async () => {
    await t.slack.command('/invite', '', { user: 'UADMIN' });
    await t.slack.submitView(
      t.standin.lastOpenedView(),
      { emails: 'quoted@example.com', message: 'Welcome <b>aboard</b> & see you Monday' },
      { user: 'UADMIN' },
    );
    const mail = await t.smtp.waitForMail((m) => m.toText === 'quoted@example.com');
    const link = links(mail).find((l) => l.includes('/invitations/'))!;
    const { body } = await openForm(link);
    expect(body).toContain('<dt>Invited by</dt><dd>Adam Admin</dd>');
    expect(body).toContain('<dt>As</dt><dd>an employee</dd>');
    expect(body).toContain('“Welcome &lt;b&gt;aboard&lt;/b&gt; &amp; see you Monday”');
  });

  it('keeps the line breaks of a personal message, in the email and on the page', async () => {
    const message = 'Hi Lena,\n\nWelcome to the <team>!\nSee you Monday.\n— Adam';
    await t.slack.command('/invite', '', { user: 'UADMIN' });
    await t.slack.submitView(
      t.standin.lastOpenedView(),
      { emails: 'lena@example.com', message },
      { user: 'UADMIN' },
    );
    const mail = await t.smtp.waitForMail((m) => m.toText === 'lena@example.com');
    expect(mail.text).toContain(message);
    const page = await browser.newPage();
    try {
      // The HTML part, as a mail client that shows HTML renders it.
      await page.setContent(String(mail.html));
      // biome-ignore lint/performance/useDomNodeTextContent: the line breaks as rendered are what is tested
      expect(await page.innerText('blockquote')).toBe(message);
      await page.goto(links(mail).find((l) => l.includes('/invitations/'))!);
      // biome-ignore lint/performance/useDomNodeTextContent: the line breaks as rendered are what is tested
      expect(await page.innerText('p.message')).toBe(`“${message}”`);
    } finally {
      await page.close();
    }
  });

  it('answers a link nobody issued with the same page as a used one', async () => {
    const res = await fetch(`${t.url}/invitations/${'x'.repeat(43)}`);
    expect(res.status).toBe(404);
    expect(await res.text()).toContain('This invitation link is no longer valid');
  });

  it('asks to try again when the form comes with a cookie that does not go with it, and leaves the invitation pending', async () => {
    const email = 'nocookie@example.com';
    const link = await invitationLink(email);
    const form = await openForm(link);
    const res = await accept(link, { field: form.field, cookie: `roster_csrf=${'x'.repeat(32)}` });
    expect(res.status).toBe(403);
    const body = await res.text();
    expect(body).toContain('This form expired or was sent from another page.');
    expect(body).not.toContain('cookie');
    expect(await state(email)).toMatchObject({ user: 'invited', invitation: 'pending', audits: 0 });
  });

  it('tells a browser that blocks cookies to allow them for this site, and leaves the invitation pending', async () => {
    const email = 'blocks-cookies@example.com';
    const link = await invitationLink(email);
    const ctx = await browser.newContext();
    try {
      const page = await ctx.newPage();
      await page.goto(link);
      // As a browser that blocks cookies: it keeps none of those Roster sets, so the form goes without one.
      await ctx.clearCookies();
      await page.click('button:has-text("Accept invitation")');
      await page.waitForSelector('text=Allow cookies for this site in your browser');
      expect(await page.textContent('h1')).toBe('Allow cookies for this site');
      expect(await page.textContent('main')).toContain('open the invitation again and press Accept.');
    } finally {
      await ctx.close();
    }
    expect(await state(email)).toMatchObject({ user: 'invited', invitation: 'pending', audits: 0 });
  });

  it('accepts once when Accept is pressed twice, and the second press says so', async () => {
    const email = 'twice@example.com';
    const link = await invitationLink(email);
    const form = await openForm(link);
    const first = await accept(link, form);
    expect(first.status).toBe(200);
    const firstBody = await first.text();
    expect(firstBody).toContain('twice@example.com, you are now an active member of Acme as an employee.');
    expect(firstBody).not.toContain('You had already accepted');

    const second = await accept(link, form);
    expect(second.status).toBe(200);
    expect(await second.text()).toContain('You had already accepted this invitation.');
    expect(await state(email)).toMatchObject({ user: 'active', invitation: 'accepted', audits: 1 });

    // Opened again later, the link no longer shows a form.
    const reopened = await fetch(link);
    expect(reopened.status).toBe(404);
    expect(await reopened.text()).toContain('This invitation link is no longer valid');
  });

  it('no longer accepts an invitation whose address the allowed email domains stopped admitting', async () => {
    const email = 'narrowed@example.com';
    const link = await invitationLink(email);
    const form = await openForm(link);
    const account = await t.account();
    await t.em().nativeUpdate(Account, { id: account.id }, { allowedEmailDomains: ['acme.test'] });
    try {
      // Opened now, the link offers no Accept to be refused.
      const opened = await fetch(link);
      expect(opened.status).toBe(404);
      const body = await opened.text();
      expect(body).toContain('This invitation link is no longer valid');
      expect(body).not.toContain('Accept invitation');
      // From a tab opened before, Accept is refused.
      const answer = await accept(link, form);
      expect(await answer.text()).toContain('This invitation link is no longer valid');
      expect(await state(email)).toMatchObject({ user: 'invited', invitation: 'pending', audits: 0 });
    } finally {
      await t.em().nativeUpdate(Account, { id: account.id }, { allowedEmailDomains: [] });
    }
  });

  it('does not tell someone deactivated since the first press, from a tab left open, that they are in', async () => {
    const email = 'stale@example.com';
    const link = await invitationLink(email);
    const form = await openForm(link);
    expect((await accept(link, form)).status).toBe(200);
    const em = t.em();
    const user = await em.findOneOrFail(User, { email });
    const admin = { slackUserId: 'UADMIN', isAdmin: true, surface: 'slack' as const };
    await t.roster.deps.person.deactivate(t.em(), await t.account(), admin, user.id);
    const again = await accept(link, form);
    const body = await again.text();
    expect(body).not.toContain('active member');
    expect(body).not.toContain('You had already accepted');
    expect(body).toContain('This invitation link is no longer valid');
    expect(await state(email)).toMatchObject({ user: 'deactivated', invitation: 'accepted', audits: 1 });
  });
});

describe('a link that no longer works', () => {
  /** What the page says, as a person reads it in the browser. */
  async function readInBrowser(link: string) {
    const page = await browser.newPage();
    try {
      const res = await page.goto(link);
      return {
        status: res?.status(),
        h1: await page.textContent('h1'),
        text: await page.textContent('body'),
      };
    } finally {
      await page.close();
    }
  }

  it('tells someone who already accepted that there is nothing more to do, in one answer for used, expired and unknown links', async () => {
    const usedLink = await invitationLink('accepted-earlier@example.com');
    expect((await accept(usedLink, await openForm(usedLink))).status).toBe(200);
    const expiredLink = await invitationLink('expired-link@example.com');
    const expired = await t.em().findOneOrFail(User, { email: 'expired-link@example.com' });
    await t
      .em()
      .getConnection()
      .execute(`update invitation set expires_at = now() - interval '1 minute' where user_id = ?`, [
        expired.id,
      ]);
    const unknownLink = `${t.url}/invitations/${'u'.repeat(43)}`;

    const answers = await Promise.all(
      [usedLink, expiredLink, unknownLink].map(async (link) => {
        const res = await fetch(link);
        return { status: res.status, body: await res.text() };
      }),
    );
    for (const answer of answers) expect(answer).toEqual(answers[0]);

    const seen = await readInBrowser(usedLink);
    expect(seen.status).toBe(404);
    expect(seen.h1).toBe('This invitation link is no longer valid');
    expect(seen.text).toContain('If you already accepted this invitation, there is nothing more to do.');
    expect(seen.text).toContain('ask the person who invited you to send a new one');
    expect(await readInBrowser(unknownLink)).toEqual(seen);
    expect(await readInBrowser(expiredLink)).toEqual(seen);
    // Reading the page changed nothing.
    const expiredState = await state('expired-link@example.com');
    expect(expiredState.audits).toBe(0);
    expect(expiredState.user).not.toBe('active');
    expect(await state('accepted-earlier@example.com')).toMatchObject({ user: 'active', audits: 1 });
  });
});

describe('the invitation page on a phone', () => {
  it('fits a long email address into a 360 px wide screen', async () => {
    const email = 'alexandra.konstantinopoulou@engineering.example-corporation.com';
    expect(email).toHaveLength(63);
    await t.slack.command('/invite', '', { user: 'UADMIN' });
    await t.slack.submitView(
      t.standin.lastOpenedView(),
      { emails: `Alexandra Konstantinopoulou <${email}>` },
      { user: 'UADMIN' },
    );
    const mail = await t.smtp.waitForMail((m) => m.toText === email);
    const link = links(mail).find((l) => l.includes('/invitations/'))!;
    const ctx = await browser.newContext({
      viewport: { width: 360, height: 740 },
      deviceScaleFactor: 2,
      isMobile: true,
      hasTouch: true,
    });
    try {
      const page = await ctx.newPage();
      await page.goto(link);
      expect(await page.textContent('main')).toContain(email);
      // Evaluated in the page (a string: the project's types have no DOM).
      const widths = (await page.evaluate(`({
        page: document.documentElement.scrollWidth,
        main: document.querySelector('main').scrollWidth,
        mainBox: document.querySelector('main').clientWidth,
      })`)) as { page: number; main: number; mainBox: number };
      expect(widths.page).toBeLessThanOrEqual(360);
      // Nothing inside the card runs past its edge either.
      expect(widths.main).toBeLessThanOrEqual(widths.mainBox);
    } finally {
      await ctx.close();
    }
  });
});

describe('the invitation page while Slack is busy', () => {
  it('shows the invitation without the inviter’s name when Slack answers 429 for them', async () => {
    const email = 'slack-busy@example.com';
    const link = await invitationLink(email);
    // The inviter is not in the directory mirror, so the page asks Slack, which asks to wait.
    await t.em().getConnection().execute(`delete from slack_member where slack_user_id = 'UADMIN'`);
    const asked = t.standin.callsTo('users.info').length;
    // Twice: an interactive lookup waits out one short Retry-After before it gives up.
    t.standin.failWithStatus('users.info', 429, 2);

    const res = await fetch(link);
    expect(res.status).toBe(200);
    const body = await res.text();
    expect(t.standin.callsTo('users.info').length).toBeGreaterThan(asked);
    expect(body).toContain("You're invited to Acme");
    expect(body).toContain('<dt>Invited by</dt><dd>Someone</dd>');
    const field = /name="csrf" value="([^"]+)"/.exec(body)?.[1];
    const cookie = res.headers.get('set-cookie')?.split(';')[0];
    expect((await accept(link, { field: field!, cookie })).status).toBe(200);
    expect(await state(email)).toMatchObject({ user: 'active', invitation: 'accepted', audits: 1 });
  });
});
