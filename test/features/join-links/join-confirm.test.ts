import pg from 'pg';
import type { Browser } from 'playwright-core';
import { AuditEvent } from '../../../src/features/audit/audit-event.entity.ts';
import { Contact } from '../../../src/features/contacts/contact.entity.ts';
import { JoinConfirmation, JoinLink } from '../../../src/features/join-links/join-link.entity.ts';
import { User } from '../../../src/features/people/user.entity.ts';
import { startTestApp, type TestApp } from '../../support/app.ts';
import { launchBrowser } from '../../support/browser.ts';
import { links, type Mail } from '../../support/smtp-sink.ts';
import { httpFrom, openForm, postLink } from './support.ts';

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

let clients = 10;
/** Each test posts its forms from its own loopback address, so the per-address limit never adds up. */
const nextClient = () => `127.0.0.${++clients}`;

/** Fills the join form of a new link over HTTP and returns the link and the emailed confirmation URL. */
async function confirmationFor(email: string, name = 'Web Person') {
  const posted = await postLink(t);
  const form = await openForm(nextClient(), posted.url);
  expect((await form.submit(name, email)).status).toBe(200);
  const mail = await t.smtp.waitForMail((m) => m.toText === email);
  const confirm = links(mail).find((l) => l.includes('/join/confirm/'));
  if (!confirm) throw new Error(`no confirmation link in the mail to ${email}`);
  return { ...posted, mail, confirm };
}

/** What joining would change: the user, the link's count, the confirmation's use and the audit trail. */
async function state(email: string, linkId: string) {
  const em = t.em();
  return {
    user: await em.findOne(User, { email }),
    uses: (await em.findOneOrFail(JoinLink, linkId)).uses,
    usedAt: (await em.findOneOrFail(JoinConfirmation, { email })).usedAt ?? null,
    audits: await em.count(AuditEvent, { subjectId: linkId, action: 'join_link.used' }),
  };
}

/** The Confirm page's form, as the browser at `from` holds it, to post it as that browser would. */
async function confirmForm(from: string, url: string) {
  const page = await httpFrom(from, url);
  const csrf = page.body.match(/name="csrf" value="([^"]+)"/)?.[1];
  if (!csrf) throw new Error(`no Confirm form at ${url}: ${page.status}`);
  const cookie = String(page.headers['set-cookie']).split(';')[0]!;
  return () =>
    httpFrom(from, url, { method: 'POST', cookie, body: new URLSearchParams({ csrf }).toString() });
}

describe('the emailed confirmation link', () => {
  it('only shows a Confirm button when opened, by a mail scanner or a person; pressing it joins', async () => {
    const email = 'scanned@outside.test';
    const { confirm, linkId } = await confirmationFor(email);
    const untouched = await state(email, linkId);
    expect(untouched).toEqual({ user: null, uses: 0, usedAt: null, audits: 0 });

    // Mail scanners and link previews fetch the link, with GET and HEAD, without cookies.
    const scanned = await fetch(confirm);
    expect(scanned.status).toBe(200);
    expect(await scanned.text()).toContain('Confirm to join Acme');
    expect((await fetch(confirm, { method: 'HEAD' })).status).toBe(200);
    expect(await state(email, linkId)).toEqual(untouched);

    const page = await browser.newPage();
    await page.goto(confirm);
    expect(await page.textContent('h1')).toBe('Confirm to join Acme');
    expect(await page.textContent('main')).toContain(`You will join Acme as an employee with ${email}.`);
    expect(await state(email, linkId)).toEqual(untouched);

    await page.click('button:has-text("Confirm")');
    await page.waitForSelector('h1.ok');
    expect(await page.textContent('main')).toContain('You joined Acme as an employee.');
    await page.close();
    const joined = await state(email, linkId);
    expect(joined.user).toMatchObject({ status: 'active', firstName: 'Web', lastName: 'Person' });
    expect(joined).toMatchObject({ uses: 1, audits: 1 });
    expect(joined.usedAt).toBeInstanceOf(Date);
  });

  it('gives a used, an expired and an unknown link one answer, and acts on none of them', async () => {
    const used = await confirmationFor('used@outside.test');
    const from = nextClient();
    const press = await confirmForm(from, used.confirm);
    expect((await press()).body).toContain("You're in");
    // Pressing Confirm again (the back button, a resent form) and opening the link again.
    const pressedAgain = await press();
    const reopened = await httpFrom(from, used.confirm);

    const expired = await confirmationFor('expired@outside.test');
    const pressExpired = await confirmForm(nextClient(), expired.confirm);
    await t
      .em()
      .getConnection()
      .execute(`update join_confirmation set expires_at = now() - interval '1 second' where email = ?`, [
        'expired@outside.test',
      ]);
    const expiredPressed = await pressExpired();
    const expiredOpened = await httpFrom(nextClient(), expired.confirm);
    const unknown = await httpFrom(nextClient(), `${t.url}/join/confirm/${'z'.repeat(43)}`);

    const answers = [pressedAgain, reopened, expiredPressed, expiredOpened, unknown];
    for (const answer of answers) {
      expect(answer.status).toBe(404);
      expect(answer.body).toContain('This confirmation link is no longer valid');
    }
    expect(new Set(answers.map((a) => a.body)).size).toBe(1);
    // It names neither the person nor the account.
    expect(pressedAgain.body).not.toMatch(/used@outside|Acme/);
    expect((await state('used@outside.test', used.linkId)).uses).toBe(1);
    expect(await state('expired@outside.test', expired.linkId)).toMatchObject({ user: null, uses: 0 });
  });

  it('joins once when Confirm is pressed twice at once', async () => {
    const email = 'double@outside.test';
    const { confirm, linkId } = await confirmationFor(email);
    const press = await confirmForm(nextClient(), confirm);
    const answers = await Promise.all([press(), press()]);
    expect(answers.map((a) => a.status).sort()).toEqual([200, 404]);
    expect(await t.em().count(User, { email })).toBe(1);
    expect(await state(email, linkId)).toMatchObject({ uses: 1, audits: 1 });
  });

  it.each([
    ['filled', 'This join link is full'],
    ['was revoked', 'This join link is no longer valid'],
  ])(
    'says the join link ended, not "nothing more to do", when it %s between opening the page and Confirm',
    async (what, heading) => {
      const email = `late-${what.replace(' ', '-')}@outside.test`;
      const posted = await postLink(t, { max_uses: '1' });
      const form = await openForm(nextClient(), posted.url);
      expect((await form.submit('Late Comer', email)).status).toBe(200);
      const mail = await t.smtp.waitForMail((m) => m.toText === email);
      const press = await confirmForm(nextClient(), links(mail).find((l) => l.includes('/join/confirm/'))!);
      if (what === 'filled') {
        // Someone quicker takes the last place meanwhile.
        const quick = `UQUICK${clients}`;
        t.standin.addMember({ id: quick, name: 'quick', realName: 'Quick One', email: `${quick}@acme.test` });
        await t.slack.clickButton(posted.message, 'Join', { user: quick });
      } else {
        await t.slack.command('/joinlink', `revoke ${posted.linkId}`, { user: 'UADMIN' });
      }
      const answer = await press();
      expect(answer.body).toContain(heading);
      expect(answer.body).not.toContain('nothing more to do');
      expect(await t.em().findOne(User, { email })).toBeNull();
    },
  );

  it('refuses a Confirm posted without its CSRF cookie, and joins no one', async () => {
    const email = 'forged@outside.test';
    const { confirm, linkId } = await confirmationFor(email);
    const from = nextClient();
    const csrf = (await httpFrom(from, confirm)).body.match(/name="csrf" value="([^"]+)"/)![1]!;
    // A cookie that does not go with the form: expired, or another page's.
    const wrong = await httpFrom(from, confirm, {
      method: 'POST',
      cookie: `roster_csrf=${'x'.repeat(32)}`,
      body: `csrf=${csrf}`,
    });
    expect(wrong.status).toBe(403);
    expect(wrong.body).toContain('This page expired or was sent from another page.');
    expect(wrong.body).toContain('Open the confirmation link again');
    expect(wrong.body).not.toContain('cookie');
    // No cookie at all: the browser blocks them, and pressing Confirm again will not help until it allows them.
    const res = await httpFrom(from, confirm, { method: 'POST', body: `csrf=${csrf}` });
    expect(res.status).toBe(403);
    expect(res.body).toContain('<h1>Allow cookies for this site</h1>');
    expect(res.body).toContain('Allow cookies for this site in your browser, then');
    expect(await state(email, linkId)).toMatchObject({ user: null, uses: 0, usedAt: null });
  });
});

describe('a confirmation whose join link stopped before it was pressed', () => {
  /** The confirmation page's text, without its markup. */
  const plain = (body: string) =>
    body
      .replace(/<[^>]+>/g, ' ')
      .replace(/&#39;|&apos;|&#x27;/g, "'")
      .replace(/\s+/g, ' ');

  it('says the link filled up when opened after the last place went, not that it may have been used', async () => {
    const posted = await postLink(t, { max_uses: '1' });
    const confirmationOf = async (email: string) => {
      const form = await openForm(nextClient(), posted.url);
      expect((await form.submit('Web Person', email)).status).toBe(200);
      const mail = await t.smtp.waitForMail((m) => m.toText === email);
      return links(mail).find((l) => l.includes('/join/confirm/'))!;
    };
    const first = await confirmationOf('first-place@outside.test');
    const second = await confirmationOf('second-place@outside.test');
    const from = nextClient();
    const opened = await httpFrom(from, first);
    const csrf = opened.body.match(/name="csrf" value="([^"]+)"/)![1]!;
    const cookie = String(opened.headers['set-cookie']).split(';')[0]!;
    await httpFrom(from, first, { method: 'POST', cookie, body: new URLSearchParams({ csrf }).toString() });
    expect(await t.em().findOne(User, { email: 'first-place@outside.test' })).not.toBeNull();

    const page = await httpFrom(nextClient(), second);
    expect(page.status).toBe(409);
    expect(plain(page.body)).toContain('This join link is full');
    expect(plain(page.body)).toContain('so you did not join');
    expect(plain(page.body)).not.toContain('nothing more to do');
    expect(await t.em().findOne(User, { email: 'second-place@outside.test' })).toBeNull();
  });

  it('does not tell someone who joined with their first confirmation that they did not join', async () => {
    const posted = await postLink(t, { max_uses: '1' });
    const email = 'twice@outside.test';
    // The form filled twice, the first email being slow to come: two confirmation emails.
    const mails: Mail[] = [];
    for (const from of [nextClient(), nextClient()]) {
      const form = await openForm(from, posted.url);
      expect((await form.submit('Tess Twice', email)).status).toBe(200);
      mails.push(await t.smtp.waitForMail((m) => m.toText === email && !mails.includes(m)));
    }
    const [first, second] = mails.map((m) => links(m).find((l) => l.includes('/join/confirm/'))!);
    expect(first).not.toBe(second);
    const from = nextClient();
    const opened = await httpFrom(from, first!);
    const csrf = opened.body.match(/name="csrf" value="([^"]+)"/)![1]!;
    const cookie = String(opened.headers['set-cookie']).split(';')[0]!;
    await httpFrom(from, first!, { method: 'POST', cookie, body: new URLSearchParams({ csrf }).toString() });
    expect(await t.em().findOne(User, { email })).toMatchObject({ status: 'active' });

    // The link is full now, with her in it: the second email's page says nothing more is to be done.
    const page = await httpFrom(nextClient(), second!);
    expect(plain(page.body)).not.toContain('did not join');
    expect(plain(page.body)).toContain('nothing more to do');
  });

  it('says the link is no longer valid when it was revoked', async () => {
    const { confirm, linkId } = await confirmationFor('revoked-link@outside.test');
    await t.em().nativeUpdate(JoinLink, { id: linkId }, { revokedAt: new Date() });
    const page = await httpFrom(nextClient(), confirm);
    expect(page.status).toBe(404);
    expect(plain(page.body)).toContain('This join link is no longer valid');
    expect(plain(page.body)).not.toContain('nothing more to do');
  });
});

describe('Confirm pressed while a CSV import batch holds a contact with the address', () => {
  it('joins all the same: the transaction Postgres stops as a deadlock runs again', async () => {
    const email = 'dee.lock@outside.test';
    const account = await t.account();
    const em = t.em();
    em.create(Contact, { account, name: 'Dee Lock', email });
    await em.flush();
    const { confirm } = await confirmationFor(email, 'Dee Lock');
    const from = nextClient();
    const opened = await httpFrom(from, confirm);
    const csrf = opened.body.match(/name="csrf" value="([^"]+)"/)![1]!;
    const cookie = String(opened.headers['set-cookie']).split(';')[0]!;

    // An import batch's order: the contact first, then the account's seats.
    const batch = new pg.Client({ connectionString: t.db.url });
    await batch.connect();
    try {
      await batch.query('begin');
      await batch.query('select id from contact where lower(btrim(email)) = $1 for update', [email]);
      const pressed = httpFrom(from, confirm, {
        method: 'POST',
        cookie,
        body: new URLSearchParams({ csrf }).toString(),
      });
      // Confirm takes the link and the seats, then waits for the contact; Postgres stops it (it waited
      // first) once the batch waits for the seats.
      await new Promise((r) => setTimeout(r, 500));
      await batch.query('select id from account where id = $1 for no key update', [account.id]);
      await batch.query('commit');
      const answer = await pressed;
      expect(answer.status).toBe(200);
    } finally {
      await batch.end();
    }
    expect(await t.em().findOne(User, { email })).toMatchObject({ status: 'active' });
  });
});

describe('the confirmation email', () => {
  it('holds none of what a stranger typed as the name, only Roster’s own words', async () => {
    const name = 'Your account is suspended, log in at evil.example';
    const { mail, confirm } = await confirmationFor('target@outside.test', name);
    expect(mail.subject).toBe('Confirm your email to join Acme');
    for (const body of [mail.text ?? '', String(mail.html)]) {
      expect(body).not.toMatch(/suspended|evil\.example|log in at/i);
      expect(body).toContain('Hello,');
    }
    expect(links(mail).every((l) => l.startsWith(`${t.url}/`))).toBe(true);
    expect(links(mail)).toContain(confirm);
    // The name is still kept for the person it belongs to, once they confirm.
    expect(await t.em().findOneOrFail(JoinConfirmation, { email: 'target@outside.test' })).toMatchObject({
      name,
    });
  });
});

describe('the join form’s length limits', () => {
  it('match the inputs’ maxlength', async () => {
    const { url } = await postLink(t);
    const page = await httpFrom(nextClient(), url);
    expect(page.body).toMatch(/id="name"[^>]* maxlength="200"/);
    expect(page.body).toMatch(/id="email"[^>]* maxlength="254"/);
  });

  it('refuse a name or email over the limit, naming it, without storing or echoing the value', async () => {
    const { url } = await postLink(t);
    const form = await openForm(nextClient(), url);
    const longName = `Long${'n'.repeat(197)}`; // 201 characters
    const nameRes = await form.submit(longName, 'longname@outside.test');
    expect(nameRes.status).toBe(422);
    expect(nameRes.body).toContain('Names can be at most 200 characters.');
    expect(nameRes.body).not.toContain('nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn');
    expect(nameRes.body).toContain('value="longname@outside.test"');

    const longEmail = `${'e'.repeat(245)}@outside.test`; // 258 characters
    const emailRes = await form.submit('Ella Long', longEmail);
    expect(emailRes.status).toBe(422);
    expect(emailRes.body).toContain('Email addresses can be at most 254 characters.');
    expect(emailRes.body).not.toContain('eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee');

    expect(await t.em().count(JoinConfirmation, { email: 'longname@outside.test' })).toBe(0);
    expect(await t.em().count(JoinConfirmation, { email: longEmail })).toBe(0);

    // At the limit exactly, the form goes through.
    const fullName = `Full${'n'.repeat(196)}`; // 200 characters
    expect((await form.submit(fullName, 'fullname@outside.test')).status).toBe(200);
    expect(await t.em().findOneOrFail(JoinConfirmation, { email: 'fullname@outside.test' })).toMatchObject({
      name: fullName,
    });
  });
});
