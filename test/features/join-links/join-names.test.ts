import type { Browser } from 'playwright-core';
import { JoinConfirmation } from '../../../src/features/join-links/join-link.entity.ts';
import { User } from '../../../src/features/people/user.entity.ts';
import { SeatRequest } from '../../../src/features/seats/seat-request.entity.ts';
import { startTestApp, type TestApp } from '../../support/app.ts';
import { launchBrowser } from '../../support/browser.ts';
import type { PostedMessage } from '../../support/slack-standin.ts';
import { links } from '../../support/smtp-sink.ts';
import { textOf } from '../../support/views.ts';
import { openForm, postLink } from './support.ts';

// A name is typed by the person joining: on the public web form, by anyone holding the link. It must reach
// admins as inert text, never as Slack formatting, and the name saved must be the one confirmed.

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

let clients = 150;
const nextClient = () => `127.0.0.${++clients}`;

async function withSeatsFull<T>(fn: () => Promise<T>): Promise<T> {
  const { used } = await t.roster.deps.seats.usage(t.em(), await t.account());
  await t.setSeatLimit(used);
  try {
    return await fn();
  } finally {
    await t.setSeatLimit(1000);
  }
}

type TextObject = { type: string; text: string };
/** Every text object in a message's blocks, wherever it sits. */
function textObjects(node: unknown, found: TextObject[] = []): TextObject[] {
  if (Array.isArray(node)) for (const n of node) textObjects(n, found);
  else if (node && typeof node === 'object') {
    const o = node as Record<string, unknown>;
    if ((o.type === 'mrkdwn' || o.type === 'plain_text') && typeof o.text === 'string')
      found.push(o as TextObject);
    else for (const v of Object.values(o)) textObjects(v, found);
  }
  return found;
}

const ZWJ = /\u200d/g;
const requestTo = (admin: string, email: string) =>
  t.standin.waitForMessage((m) => m.channel === `D${admin}` && textOf(m).includes(email));

describe("a joiner's name in the admins' seat request", () => {
  const hostile = '*IT Security:* your session expired, re-verify at https://acme-sso.example/login <!here>';

  it('is shown only as inert plain text, never as mrkdwn', async () => {
    t.standin.addMember({ id: 'UMARKUP', name: 'mal', realName: hostile, email: 'mal@acme.test' });
    const { message } = await postLink(t);
    await withSeatsFull(() => t.slack.clickButton(message, 'Join', { user: 'UMARKUP' }));
    const asked: PostedMessage = await requestTo('UADMIN', 'mal@acme.test');
    const texts = textObjects(asked.blocks);
    const withName = texts.filter((o) => o.text.replace(ZWJ, '').includes('IT Security'));
    expect(withName).toHaveLength(1);
    expect(withName[0]!.type).toBe('plain_text');
    // The name is all there, as typed, once the zero-width joiners are taken out…
    expect(withName[0]!.text.replace(ZWJ, '')).toBe(`Name: ${hostile}`);
    // …but nothing in it reads as a link, bold text or a mention, whatever a client does with plain text.
    expect(withName[0]!.text).not.toContain('https://');
    expect(withName[0]!.text).not.toContain('acme-sso.example');
    expect(withName[0]!.text).not.toContain('*IT');
    expect(withName[0]!.text).not.toContain('<!');
    // The mrkdwn parts, and the notification's text, do not carry it at all.
    for (const o of texts.filter((x) => x.type === 'mrkdwn')) expect(o.text).not.toContain('Security');
    expect(String(asked.text)).not.toContain('Security');
  });

  it("says a web join came through the link's web form, not from the admin who posted the link", async () => {
    const { url } = await postLink(t);
    const form = await openForm(nextClient(), url);
    expect((await form.submit('Wendy Web', 'wendy@outside.test')).status).toBe(200);
    const mail = await t.smtp.waitForMail((m) => m.toText === 'wendy@outside.test');
    const confirm = links(mail).find((l) => l.includes('/join/confirm/'))!;
    await withSeatsFull(async () => {
      const page = await browser.newPage();
      await page.goto(confirm);
      await page.click('button:has-text("Confirm")');
      await page.waitForSelector('text=Almost there');
      await page.close();
    });
    const asked = await requestTo('UADMIN', 'wendy@outside.test');
    const texts = textObjects(asked.blocks);
    const head = texts.find((o) => o.text.includes('*Seat request*'))!;
    expect(head.text).not.toContain('*Seat request* from <@UADMIN>');
    expect(head.text).toContain('from the web form of a join link posted by <@UADMIN>');
    expect(String(asked.text)).not.toMatch(/^Seat request from <@UADMIN>/);
    expect(texts.find((o) => o.text.includes('Wendy'))).toEqual({
      type: 'plain_text',
      text: 'Name as typed on the web form: Wendy Web',
      emoji: false,
    });
  });

  it('refuses links and markup in the web form’s name, and sends nothing', async () => {
    const { url } = await postLink(t);
    const form = await openForm(nextClient(), url);
    const res = await form.submit(hostile, 'typed@outside.test');
    expect(res.status).toBe(422);
    expect(res.body).toContain('Enter just your name: no links, and none of the characters');
    expect(await t.em().count(JoinConfirmation, { email: 'typed@outside.test' })).toBe(0);
    expect(await t.em().count(SeatRequest, { email: 'typed@outside.test' })).toBe(0);
  });
});

describe('invisible characters in a typed name', () => {
  it('are refused on the join form, never reaching the database, and the form comes back without them', async () => {
    const { url } = await postLink(t);
    for (const [name, email, shown] of [
      ['Nul\u0000Name', 'nul@outside.test', 'NulName'],
      ['Tab\tName', 'tab@outside.test', 'TabName'],
      ['Ana \u202Ezeuqsav', 'bidi@outside.test', 'Ana zeuqsav'],
    ] as const) {
      const form = await openForm(nextClient(), url);
      const res = await form.submit(name, email);
      expect(res.status).toBe(422);
      expect(res.body).toContain('Your name held invisible characters');
      expect(res.body).toContain(`value="${shown}"`);
      expect(await t.em().count(JoinConfirmation, { email })).toBe(0);
    }
  });

  it('refuse a name of zero-width characters alone, which would reach admins as a blank', async () => {
    const { url } = await postLink(t);
    const form = await openForm(nextClient(), url);
    const res = await form.submit('\u200B\u200D\u2060', 'blank@outside.test');
    expect(res.status).toBe(422);
    expect(res.body).toContain('Enter your name: this one is only spaces or invisible characters.');
    // Nor of characters drawn as nothing: Hangul fillers, the blank Braille pattern, marks with no letter.
    for (const blank of ['\u3164', '\u115F\u1160', '\u2800', '\u0301\u0301']) {
      const again = await (await openForm(nextClient(), url)).submit(blank, 'blank@outside.test');
      expect([again.status, blank]).toEqual([422, blank]);
    }
    expect(await t.em().count(JoinConfirmation, { email: 'blank@outside.test' })).toBe(0);
  });

  it('are refused on the Confirm page, which joins nobody until the name is clean', async () => {
    const { url } = await postLink(t);
    const form = await openForm(nextClient(), url);
    expect((await form.submit('Rita Right', 'rita@outside.test')).status).toBe(200);
    const mail = await t.smtp.waitForMail((m) => m.toText === 'rita@outside.test');
    const confirm = links(mail).find((l) => l.includes('/join/confirm/'))!;

    // A script posting a NUL: refused in words, not a failure of Roster's.
    const opened = await fetch(confirm);
    const csrf = /name="csrf" value="([^"]+)"/.exec(await opened.text())![1]!;
    const cookie = opened.headers.get('set-cookie')!.split(';')[0]!;
    const posted = await fetch(confirm, {
      method: 'POST',
      headers: { cookie, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ csrf, name: 'Rita\u0000Right' }).toString(),
    });
    expect(posted.status).toBe(422);
    expect(await posted.text()).toContain('Your name held invisible characters');
    expect(await t.em().findOne(User, { email: 'rita@outside.test' })).toBeNull();

    // A person pasting a name with a direction override: told, shown the name without it, and can send it.
    const page = await browser.newPage();
    await page.goto(confirm);
    await page.fill('#name', 'Rita \u202ERight');
    await page.click('button:has-text("Confirm")');
    await page.waitForSelector('.error');
    expect(await page.textContent('.error')).toContain('Your name held invisible characters');
    expect(await page.inputValue('#name')).toBe('Rita Right');
    expect(await t.em().findOne(User, { email: 'rita@outside.test' })).toBeNull();
    await page.click('button:has-text("Confirm")');
    await page.waitForSelector('h1.ok');
    await page.close();
    expect(await t.em().findOneOrFail(User, { email: 'rita@outside.test' })).toMatchObject({
      status: 'active',
      firstName: 'Rita',
      lastName: 'Right',
    });
  });
});

describe('the Confirm page', () => {
  it('shows the name that will be saved, in a field to correct, and saves what is confirmed', async () => {
    const { url } = await postLink(t);
    const form = await openForm(nextClient(), url);
    expect((await form.submit('Tnia Typo', 'tina@outside.test')).status).toBe(200);
    const mail = await t.smtp.waitForMail((m) => m.toText === 'tina@outside.test');
    const confirm = links(mail).find((l) => l.includes('/join/confirm/'))!;
    const page = await browser.newPage();
    await page.goto(confirm);
    expect(await page.textContent('main')).toContain('with tina@outside.test.');
    expect(await page.inputValue('#name')).toBe('Tnia Typo');
    // A name the join form would refuse is refused here too, and nothing happens.
    await page.fill('#name', 'see https://evil.example');
    await page.click('button:has-text("Confirm")');
    await page.waitForSelector('.error');
    expect(await page.textContent('.error')).toContain('Enter just your name: no links');
    expect(await t.em().findOne(User, { email: 'tina@outside.test' })).toBeNull();
    await page.fill('#name', 'Tina Right');
    await page.click('button:has-text("Confirm")');
    await page.waitForSelector('h1.ok');
    await page.close();
    expect(await t.em().findOneOrFail(User, { email: 'tina@outside.test' })).toMatchObject({
      status: 'active',
      firstName: 'Tina',
      lastName: 'Right',
    });
  });
});
