import type { Browser } from 'playwright-core';
import { AuditEvent } from '../../../src/features/audit/audit-event.entity.ts';
import { JoinLink } from '../../../src/features/join-links/join-link.entity.ts';
import { User } from '../../../src/features/people/user.entity.ts';
import { SeatRequest } from '../../../src/features/seats/seat-request.entity.ts';
import { eventually, startTestApp, type TestApp } from '../../support/app.ts';
import { launchBrowser } from '../../support/browser.ts';
import { links } from '../../support/smtp-sink.ts';
import { findButton, textOf } from '../../support/views.ts';

let t: TestApp;
let browser: Browser;

beforeAll(async () => {
  t = await startTestApp({ seatLimit: 100 });
  browser = await launchBrowser();
});
afterAll(async () => {
  await browser.close();
  await t.stop();
});

/** An admin posts a link through /joinlink; returns the posted message, its URL and the row. */
async function postLink(values: Record<string, any> = {}, channel = 'C0GENERAL') {
  await t.slack.command('/joinlink', '', { user: 'UADMIN', channel });
  const view = t.standin.lastOpenedView();
  expect(view.callback_id).toBe('joinlink_modal');
  const res = await t.slack.submitView(view, { channel, ...values }, { user: 'UADMIN' });
  expect(res.json).toBeUndefined();
  const message = t.standin.messages
    .filter((m) => m.method === 'chat.postMessage' && m.channel === channel)
    .at(-1)!;
  const url = JSON.stringify(message.blocks).match(/http:\/\/127\.0\.0\.1:\d+\/join\/[A-Za-z0-9_-]+/)![0];
  const linkId = findButton(message.blocks!, 'Join').action.value as string;
  return { message, url, linkId };
}

const join = (message: Record<string, any>, user: string) => t.slack.clickButton(message, 'Join', { user });
const lastAnswer = (text: string) => t.standin.waitForResponse((r) => String(r.body.text).includes(text));

describe('posting join links', () => {
  it('lets only admins post a link', async () => {
    const before = t.standin.callsTo('views.open').length;
    await t.slack.command('/joinlink', '', { user: 'UMEMBER' });
    await lastAnswer('Only admins can post join links.');
    expect(t.standin.callsTo('views.open').length).toBe(before);
    expect(await t.em().count(JoinLink, {})).toBe(0);
  });

  it('posts the link with a Join button, its URL and its terms, and confirms to the admin', async () => {
    const { message, url, linkId } = await postLink({ max_uses: '5', domains: 'acme.test' });
    expect(textOf(message)).toMatch(
      /Employee \(paid seat\) · expires .* · 5 of 5 places left · only acme\.test addresses/,
    );
    const link = await t.em().findOneOrFail(JoinLink, linkId);
    expect(link).toMatchObject({
      maxUses: 5,
      allowedEmailDomains: ['acme.test'],
      channelId: 'C0GENERAL',
      messageTs: message.ts,
    });
    expect(url).not.toContain(link.tokenHash);
    const confirmation = await eventually(() =>
      t.standin.messages.find(
        (m) => m.channel === 'DUADMIN' && String(m.text).includes('Posted a join link'),
      ),
    );
    expect(confirmation.text).toContain('<#C0GENERAL>');
  });

  it('keeps nothing when the message cannot be posted, and says how to fix it', async () => {
    const count = await t.em().count(JoinLink, {});
    t.standin.failNext('chat.postMessage', 'not_in_channel', 1, (a) => a.channel === 'CPRIVATE');
    await t.slack.command('/joinlink', '', { user: 'UADMIN', channel: 'CPRIVATE' });
    const res = await t.slack.submitView(
      t.standin.lastOpenedView(),
      { channel: 'CPRIVATE' },
      { user: 'UADMIN' },
    );
    expect(res.json?.errors?.channel).toContain('Add Roster to that channel');
    expect(await t.em().count(JoinLink, {})).toBe(count);
  });
});

describe('joining with the button', () => {
  it("creates an active user from the clicker's Slack identity, and tells them", async () => {
    const { message, linkId } = await postLink();
    await join(message, 'UMEMBER');
    await lastAnswer('You joined Acme. Welcome!');
    const user = await t.em().findOneOrFail(User, { email: 'max@acme.test' });
    expect(user).toMatchObject({
      status: 'active',
      role: 'employee',
      slackUserId: 'UMEMBER',
      firstName: 'Max',
      lastName: 'Member',
    });
    expect((await t.em().findOneOrFail(JoinLink, linkId)).uses).toBe(1);
    expect(await t.em().count(AuditEvent, { action: 'join_link.used', subjectId: linkId })).toBe(1);
  });

  it('tells an existing user their status and counts no use', async () => {
    const { message, linkId } = await postLink();
    await join(message, 'UMEMBER');
    await lastAnswer('You are already in Acme: already active.');
    expect((await t.em().findOneOrFail(JoinLink, linkId)).uses).toBe(0);
  });

  it('refuses an email domain the link does not allow', async () => {
    t.standin.addMember({ id: 'UGUEST', name: 'gail', realName: 'Gail Guest', email: 'gail@elsewhere.test' });
    const { message } = await postLink({ domains: 'acme.test' });
    await join(message, 'UGUEST');
    await lastAnswer(
      'This link is only for @acme.test addresses, and your Slack email is gail@elsewhere.test.',
    );
    expect(await t.em().findOne(User, { email: 'gail@elsewhere.test' })).toBeNull();
  });

  it('files a seat request when no seat is free, and tells the person it waits for an admin', async () => {
    t.standin.addMember({ id: 'UFULL', name: 'finn', realName: 'Finn Full', email: 'finn@acme.test' });
    const { message } = await postLink();
    const { used } = await t.roster.deps.seats.usage(t.em(), await t.account());
    await t.setSeatLimit(used);
    await join(message, 'UFULL');
    await lastAnswer('an admin has been asked to approve your place in Acme');
    expect(await t.em().findOne(User, { email: 'finn@acme.test' })).toBeNull();
    const request = await t.em().findOneOrFail(SeatRequest, { email: 'finn@acme.test' });
    expect(request).toMatchObject({ kind: 'join', status: 'pending', role: 'employee' });
    const approved = await t.roster.deps.seats.decide(t.em(), await t.account(), {
      requestId: request.id,
      actor: { slackUserId: 'UADMIN', isAdmin: true, surface: 'slack' },
      decision: 'approve_add_seat',
    });
    expect(approved.outcome).toBe('approved');
    expect(await t.em().findOne(User, { email: 'finn@acme.test' })).toMatchObject({
      status: 'active',
      slackUserId: 'UFULL',
    });
    await t.setSeatLimit(100);
  });

  it('revokes a link: the message says so, and the button and URL stop working', async () => {
    t.standin.addMember({ id: 'ULATE', name: 'lou', realName: 'Lou Late', email: 'lou@acme.test' });
    const { message, url, linkId } = await postLink();
    await t.slack.command('/joinlink', 'list', { user: 'UADMIN' });
    const list = await t.standin.waitForResponse((r) => textOf(r.body).includes('Join links'));
    await t.slack.clickButton(
      { ...list.body, channel: 'C0GENERAL', ts: '9' },
      { actionId: 'joinlink_revoke', value: linkId },
      { user: 'UADMIN' },
    );
    await lastAnswer('Revoked. The link no longer works');
    const updated = await eventually(() =>
      t.standin.messages.find((m) => m.method === 'chat.update' && m.ts === message.ts),
    );
    expect(textOf(updated)).toContain('was revoked by <@UADMIN>');
    expect(JSON.stringify(updated.blocks)).not.toContain('/join/');
    await join(message, 'ULATE');
    await lastAnswer('This join link is no longer valid.');
    expect((await fetch(url)).status).toBe(404);
    expect(await t.em().count(AuditEvent, { action: 'join_link.revoked', subjectId: linkId })).toBe(1);
  });

  it('marks expired links, updates their message, and gives their URL the same page as an unknown one', async () => {
    const { message, url, linkId } = await postLink();
    await t
      .em()
      .getConnection()
      .execute(`update join_link set expires_at = now() - interval '1 minute' where id = ?`, [linkId]);
    await t.roster.deps.jobs.send('join.expire-links', {});
    const updated = await eventually(() =>
      t.standin.messages.find((m) => m.method === 'chat.update' && m.ts === message.ts),
    );
    expect(textOf(updated)).toContain('was expired');
    const [a, b] = await Promise.all([fetch(url), fetch(`${t.url}/join/${'A'.repeat(43)}`)]);
    expect([a.status, b.status]).toEqual([404, 404]);
    expect(await a.text()).toBe(await b.text());
    expect(await t.em().count(AuditEvent, { action: 'join_link.expired', subjectId: linkId })).toBe(1);
  });
});

describe('joining on the web page', () => {
  it('asks for name and email, emails a confirmation link, and joins when it is opened', async () => {
    const { url, linkId } = await postLink({ role: 'contractor' });
    const page = await browser.newPage();
    await page.goto(url);
    expect(await page.textContent('h1')).toBe('Join');
    await page.fill('#name', 'Wanda Web');
    await page.fill('#email', 'wanda@outside.test');
    await page.click('button[type=submit]');
    await page.waitForSelector('text=Check your inbox');
    expect(await t.em().findOne(User, { email: 'wanda@outside.test' })).toBeNull();

    const mail = await t.smtp.waitForMail((m) => m.toText === 'wanda@outside.test');
    expect(mail.subject).toBe('Confirm your email to join Acme');
    const confirm = links(mail).find((l) => l.includes('/join/confirm/'))!;
    await page.goto(confirm);
    expect(await page.textContent('h1')).toBe("You're in");
    await page.close();

    expect(await t.em().findOne(User, { email: 'wanda@outside.test' })).toMatchObject({
      status: 'active',
      role: 'contractor',
      firstName: 'Wanda',
      lastName: 'Web',
    });
    expect((await t.em().findOneOrFail(JoinLink, linkId)).uses).toBe(1);
    const again = await fetch(confirm);
    expect(again.status).toBe(404);
  });

  it('answers the same whether or not the email is known, revealing nothing', async () => {
    const { url } = await postLink();
    const em = t.em();
    em.create(User, {
      account: await t.account(),
      email: 'known@outside.test',
      role: 'client',
      status: 'active',
    });
    await em.flush();
    const submit = async (email: string) => {
      const page = await browser.newPage();
      await page.goto(url);
      await page.fill('#name', 'Someone');
      await page.fill('#email', email);
      await page.click('button[type=submit]');
      await page.waitForSelector('h1');
      const text = (await page.textContent('main'))!.replace(email, '<email>');
      await page.close();
      return text;
    };
    expect(await submit('known@outside.test')).toBe(await submit('nobody-yet@outside.test'));
    const known = await t.smtp.waitForMail((m) => m.toText === 'known@outside.test');
    expect(known.subject).toBe('You already have access to Acme');
  });

  it('shows the form again with what was wrong', async () => {
    const { url } = await postLink();
    const page = await browser.newPage();
    await page.goto(url);
    await page.fill('#name', '');
    await page.fill('#email', 'not an email');
    await page.click('button[type=submit]');
    await page.waitForSelector('.error');
    const errors = await page.$$eval('.error', (els) => els.map((e) => e.textContent));
    await page.close();
    expect(errors).toEqual(['Enter your name.', 'Enter a valid email address.']);
  });

  it('limits how often one address can post, with a friendly page', async () => {
    const { url } = await postLink();
    const page = await browser.newPage();
    await page.goto(url);
    const csrf = await page.$eval('input[name=csrf]', (i) => (i as unknown as { value: string }).value);
    const cookie = (await page.context().cookies()).map((c) => `${c.name}=${c.value}`).join('; ');
    await page.close();
    const statuses: number[] = [];
    for (let i = 0; i < 12; i++) {
      const res = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', cookie },
        body: new URLSearchParams({ csrf, name: 'Spam', email: `spam${i}@outside.test` }).toString(),
      });
      statuses.push(res.status);
      if (res.status === 429) expect(await res.text()).toContain('Please wait a minute');
    }
    expect(statuses.filter((s) => s === 429).length).toBeGreaterThan(0);
  });
});

describe('counting uses', () => {
  it('lets exactly 20 of 100 people join at once through a link with 20 places', async () => {
    const { message, linkId } = await postLink({ max_uses: '20' });
    for (let i = 0; i < 100; i++)
      t.standin.addMember({
        id: `URUSH${i}`,
        name: `rush${i}`,
        realName: `Rush ${i}`,
        email: `rush${i}@acme.test`,
      });
    const clicks = await Promise.all(Array.from({ length: 100 }, (_, i) => join(message, `URUSH${i}`)));
    expect(clicks.every((c) => c.status === 200)).toBe(true);
    expect(await t.em().count(User, { email: { $like: 'rush%@acme.test' } })).toBe(20);
    expect((await t.em().findOneOrFail(JoinLink, linkId)).uses).toBe(20);
    const answers = t.standin.responses.filter((r) =>
      /You joined Acme|no longer valid/.test(String(r.body.text)),
    );
    expect(answers.filter((r) => String(r.body.text).includes('You joined')).length).toBeGreaterThanOrEqual(
      20,
    );
  }, 60000);
});
