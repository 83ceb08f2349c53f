import { query, sql } from '../../../src/db/sql.ts';
import { JoinConfirmation, JoinLink } from '../../../src/features/join-links/join-link.entity.ts';
import { User } from '../../../src/features/people/user.entity.ts';
import { SeatRequest } from '../../../src/features/seats/seat-request.entity.ts';
import { startTestApp, type TestApp } from '../../support/app.ts';
import { links } from '../../support/smtp-sink.ts';
import { textOf } from '../../support/views.ts';
import { httpFrom, openForm, postLink } from './support.ts';

// A join must fit both the account's allowed email domains and the link's own, each when set: a link
// posted before the account was limited must not let an outside address in.

let t: TestApp;

beforeAll(async () => {
  t = await startTestApp({ seatLimit: 1000 });
});
afterAll(async () => {
  await t.stop();
});
afterEach(async () => {
  await setAccountDomains([]);
  await t.setSeatLimit(1000);
});

async function setAccountDomains(domains: string[]) {
  await query(t.em(), sql`update account set allowed_email_domains = ${domains}`);
}

let clients = 100;
const nextClient = () => `127.0.0.${++clients}`;

/** The confirmation URL mailed to `email` after filling a link's form. */
async function confirmationUrl(url: string, email: string, name = 'Outside Person') {
  const form = await openForm(nextClient(), url);
  expect((await form.submit(name, email)).status).toBe(200);
  const mail = await t.smtp.waitForMail((m) => m.toText === email);
  return links(mail).find((l) => l.includes('/join/confirm/'))!;
}

async function pressConfirm(confirm: string) {
  const from = nextClient();
  const page = await httpFrom(from, confirm);
  const csrf = page.body.match(/name="csrf" value="([^"]+)"/)![1]!;
  const cookie = String(page.headers['set-cookie']).split(';')[0]!;
  return httpFrom(from, confirm, { method: 'POST', cookie, body: new URLSearchParams({ csrf }).toString() });
}

describe('a join link for a domain in another script', () => {
  it('admits its addresses as browsers send them, and names the domain as typed', async () => {
    const { url, linkId, message } = await postLink(t, { domains: 'bücher.de' });
    expect((await t.em().findOneOrFail(JoinLink, linkId)).allowedEmailDomains).toEqual(['xn--bcher-kva.de']);
    expect(textOf(message)).toContain('only @bücher.de addresses');
    expect((await httpFrom(nextClient(), url)).body).toContain('This link is for @bücher.de addresses.');
    // `anna@bücher.de` typed in a browser arrives in the ASCII form Roster keeps addresses in.
    const joined = await (await openForm(nextClient(), url)).submit('Anna Buch', 'anna@xn--bcher-kva.de');
    expect(joined.status).toBe(200);
    await t.smtp.waitForMail((m) => m.toText === 'anna@bücher.de');
    expect(await t.em().count(JoinConfirmation, { email: 'anna@xn--bcher-kva.de' })).toBe(1);
    const res = await (await openForm(nextClient(), url)).submit('Bo Outside', 'bo@gmail.example');
    expect(res.status).toBe(422);
    expect(res.body).toContain('This link is only for @bücher.de addresses.');
  });
});

describe("the account's allowed email domains on join links", () => {
  it('refuses an outside address on the web form of a link with no domains of its own, and mails nothing', async () => {
    const { url, linkId } = await postLink(t);
    await setAccountDomains(['acme.test']);
    // The form says which addresses it is for before anyone fills it in.
    expect((await httpFrom(nextClient(), url)).body).toContain('This link is for @acme.test addresses.');
    const form = await openForm(nextClient(), url);
    const res = await form.submit('Outside Person', 'outsider@gmail.example');
    expect(res.status).toBe(422);
    expect(res.body).toContain('This link is only for @acme.test addresses.');
    expect(await t.em().count(JoinConfirmation, { email: 'outsider@gmail.example' })).toBe(0);
    // An address at the account's domain still gets its email.
    await confirmationUrl(url, 'insider@acme.test');
    expect((await t.em().findOneOrFail(JoinLink, linkId)).uses).toBe(0);
  });

  it('admits only the domains on both lists when the link has its own', async () => {
    const { url } = await postLink(t, { domains: 'acme.test, other.example' });
    await setAccountDomains(['acme.test']);
    const form = await openForm(nextClient(), url);
    const res = await form.submit('Other Person', 'o@other.example');
    expect(res.status).toBe(422);
    expect(res.body).toContain('This link is only for @acme.test addresses.');
  });

  it('refuses on Confirm when the account was limited after the email went out', async () => {
    const { url, linkId } = await postLink(t);
    const confirm = await confirmationUrl(url, 'late@gmail.example');
    await setAccountDomains(['acme.test']);
    const done = await pressConfirm(confirm);
    expect(done.status).toBe(403);
    expect(done.body).toContain('This link is only for @acme.test addresses.');
    expect(await t.em().findOne(User, { email: 'late@gmail.example' })).toBeNull();
    expect((await t.em().findOneOrFail(JoinLink, linkId)).uses).toBe(0);
  });

  it('refuses the Join button for a Slack email outside the account’s domains', async () => {
    t.standin.addMember({ id: 'UGMAIL', name: 'gm', realName: 'Gee Mail', email: 'gee@gmail.example' });
    const { message, linkId } = await postLink(t);
    await setAccountDomains(['acme.test']);
    const since = t.standin.responses.length;
    await t.slack.clickButton(message, 'Join', { user: 'UGMAIL' });
    expect(t.standin.responses.slice(since).map((r) => textOf(r.body))).toEqual([
      'This link is only for @acme.test addresses, and your Slack email is gee@gmail.example. Ask an admin to invite you.',
    ]);
    expect(await t.em().findOne(User, { email: 'gee@gmail.example' })).toBeNull();
    expect((await t.em().findOneOrFail(JoinLink, linkId)).uses).toBe(0);
  });

  it("closes a join's seat request on approval once its address is outside the account's domains", async () => {
    const { url } = await postLink(t);
    const confirm = await confirmationUrl(url, 'waiting@gmail.example');
    const { used } = await t.roster.deps.seats.usage(t.em(), await t.account());
    await t.setSeatLimit(used);
    const waited = await pressConfirm(confirm);
    expect(waited.body).toContain('Almost there');
    const asked = await t.standin.waitForMessage(
      (m) => m.channel === 'DUADMIN' && textOf(m).includes('waiting@gmail.example'),
    );
    await setAccountDomains(['acme.test']);
    const since = t.standin.responses.length;
    await t.slack.clickButton(asked, 'Approve and add a seat', { user: 'UADMIN' });
    const answer = t.standin.responses
      .slice(since)
      .map((r) => textOf(r.body))
      .join('\n');
    expect(answer).toContain(
      ':no_entry_sign: Not approved: waiting@gmail.example is not at an allowed domain',
    );
    expect(answer).toContain('The request is closed');
    expect(await t.em().findOne(User, { email: 'waiting@gmail.example' })).toBeNull();
    const request = await t.em().findOneOrFail(SeatRequest, { email: 'waiting@gmail.example' });
    expect(request.status).toBe('rejected');
    expect((await t.roster.deps.seats.usage(t.em(), await t.account())).limit).toBe(used);
    const told = await t.smtp.waitForMail(
      (m) => m.toText === 'waiting@gmail.example' && m.subject === 'Your request to join Acme',
    );
    expect(told.text).toContain('could not be approved');
    // A second click finds it decided, and changes nothing.
    await t.slack.clickButton(asked, 'Approve and add a seat', { user: 'UADMIN' });
    expect(textOf(t.standin.responses.at(-1)!.body)).toContain('already decided');
    expect(await t.em().findOne(User, { email: 'waiting@gmail.example' })).toBeNull();
  });

  it("refuses to post a link whose domains are outside the account's, and keeps nothing", async () => {
    await setAccountDomains(['acme.test']);
    const before = await t.em().count(JoinLink, {});
    await t.slack.command('/joinlink', '', { user: 'UADMIN', channel: 'C0GENERAL' });
    const res = await t.slack.submitView(
      t.standin.lastOpenedView(),
      { channel: 'C0GENERAL', domains: 'acme.test, gmail.example' },
      { user: 'UADMIN' },
    );
    expect(res.json).toMatchObject({ response_action: 'errors' });
    expect(res.json?.errors?.domains).toContain(
      "@gmail.example is not among the account's allowed email domains (@acme.test)",
    );
    expect(await t.em().count(JoinLink, {})).toBe(before);
  });
});
