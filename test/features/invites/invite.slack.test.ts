import type { Browser } from 'playwright-core';
import { AuditEvent } from '../../../src/features/audit/audit-event.entity.ts';
import { Contact } from '../../../src/features/contacts/contact.entity.ts';
import { Invitation } from '../../../src/features/invites/invitation.entity.ts';
import { INVITE_JOBS } from '../../../src/features/invites/invitation.service.ts';
import { User } from '../../../src/features/people/user.entity.ts';
import { SeatRequest } from '../../../src/features/seats/seat-request.entity.ts';
import { createLogger } from '../../../src/shared/logger.ts';
import { eventually, jobsDrained, startTestApp, type TestApp } from '../../support/app.ts';
import { launchBrowser } from '../../support/browser.ts';
import { links } from '../../support/smtp-sink.ts';
import { buttonMessage, textOf } from '../../support/views.ts';

let t: TestApp;
let browser: Browser;
/** Everything the app logs: people's addresses must not reach it. */
const logged: string[] = [];
const logger = createLogger('info', {
  write(line: string) {
    logged.push(line);
  },
});

beforeAll(async () => {
  t = await startTestApp({ seatLimit: 20, logger });
  browser = await launchBrowser();
});
afterAll(async () => {
  await browser.close();
  await t.stop();
});

/** Opens the invite modal with /invite TEXT as `user` and submits it with `values`. */
async function invite(user: string, text: string, values: Record<string, any> = {}) {
  await t.slack.command('/invite', text, { user });
  const view = t.standin.lastOpenedView();
  expect(view.callback_id).toBe('invite_modal');
  return { view, result: await t.slack.submitView(view, values, { user }) };
}

const userByEmail = (email: string) => t.em().findOne(User, { email });
const summaries = (user: string) =>
  t.standin.messages.filter(
    (m) =>
      m.method === 'chat.postMessage' &&
      m.channel === `D${user}` &&
      String(m.text).startsWith('Invitations:'),
  );
const inviteLink = async (email: string) => {
  const mail = await t.smtp.waitForMail((m) => m.toText.toLowerCase() === email.toLowerCase());
  const link = links(mail).find((l) => l.includes('/invitations/'));
  if (!link) throw new Error(`no invitation link in the mail to ${email}`);
  return { mail, link };
};

describe('/invite, from the command to an active user', () => {
  it('invites a workspace member by DM and an outsider by email; the outsider accepts in a browser', async () => {
    const { view, result } = await invite('UADMIN', 'mia@acme.test, Outsider@Example.com');
    expect(view.blocks.find((b: any) => b.block_id === 'emails').element.initial_value).toBe(
      'mia@acme.test\nOutsider@Example.com',
    );
    expect(result.status).toBe(200);

    const summary = await eventually(() => summaries('UADMIN').at(-1));
    expect(textOf(summary)).toContain('mia@acme.test*: invited');
    expect(textOf(summary)).toContain('Outsider@Example.com*: invited');

    // The workspace member gets a DM with an Accept button and the link.
    const dm = await eventually(() =>
      t.standin.messages.find((m) => m.channel === 'DUMANAGER' && String(m.text).includes('invited you')),
    );
    expect(textOf(dm)).toContain('Adam Admin');
    expect(textOf(dm)).toContain('as an employee');
    expect(JSON.stringify(dm.blocks)).toMatch(/\/invitations\/[A-Za-z0-9_-]{43}/);

    // The outsider gets an email, in text and HTML, with inviter, account, role and link.
    const { mail, link } = await inviteLink('Outsider@Example.com');
    expect(mail.subject).toBe('Adam Admin invited you to Acme');
    expect(mail.text).toContain('as an employee');
    expect(mail.html).toContain('Accept the invitation');
    expect(new URL(link).origin).toBe(t.url);

    const page = await browser.newPage();
    await page.goto(link);
    expect(await page.textContent('h1')).toBe("You're invited to Acme");
    expect(await page.textContent('dl')).toContain('an employee');
    expect(await page.textContent('dl')).toContain('Adam Admin');
    await page.click('button:has-text("Accept invitation")');
    await page.waitForSelector('h1.ok');
    expect(await page.textContent('h1')).toBe("You're in");
    await page.close();

    const outsider = await userByEmail('Outsider@Example.com');
    expect(outsider).toMatchObject({ status: 'active', role: 'employee', addedBy: 'UADMIN' });
    const invitation = await t.em().findOneOrFail(Invitation, { user: outsider!.id });
    expect(invitation).toMatchObject({ status: 'accepted', deliveryMethod: 'email', deliveryAttempts: 1 });

    // The member accepts with the DM's button.
    await t.slack.clickButton(dm, { actionId: 'invite_accept' }, { user: 'UMANAGER' });
    const mia = await userByEmail('mia@acme.test');
    expect(mia).toMatchObject({ status: 'active', slackUserId: 'UMANAGER' });
    expect(await t.em().count(AuditEvent, { action: 'invitation.accepted' })).toBe(2);
  });

  it('does not let someone else accept a DM invitation', async () => {
    await invite('UADMIN', 'max@acme.test');
    const dm = await eventually(() =>
      t.standin.messages.find((m) => m.channel === 'DUMEMBER' && String(m.text).includes('invited you')),
    );
    await t.slack.clickButton(dm, { actionId: 'invite_accept' }, { user: 'UOWNER' });
    await t.standin.waitForResponse((r) =>
      String(r.body.text).includes('This invitation is for max@acme.test, not for you.'),
    );
    expect((await userByEmail('max@acme.test'))?.status).toBe('invited');
    // The refusal is logged with its code, without the invitee's address.
    expect(logged.some((l) => l.includes('"code":"not_allowed"'))).toBe(true);
    expect(logged.filter((l) => l.includes('max@acme.test'))).toEqual([]);
  });

  it('converts a contact with the invited email into the user, keeping its details', async () => {
    const em = t.em();
    em.create(Contact, {
      account: await t.account(),
      name: 'Cora Contact',
      email: 'cora@partner.test',
      title: 'Buyer',
      phone: '+44 1',
    });
    await em.flush();
    await invite('UADMIN', 'CORA@partner.test client');
    const summary = await eventually(() =>
      summaries('UADMIN').find((m) => textOf(m).includes('CORA@partner.test')),
    );
    expect(textOf(summary)).toContain('was a contact, now a user');
    const user = await t.em().findOneOrFail(User, { email: 'CORA@partner.test' });
    expect(user).toMatchObject({
      role: 'client',
      firstName: 'Cora',
      lastName: 'Contact',
      title: 'Buyer',
      phone: '+44 1',
    });
    const contact = await t.em().findOneOrFail(Contact, { email: 'cora@partner.test' });
    expect(contact.user?.id).toBe(user.id);
  });
});

describe('bad input and repetition', () => {
  it('names invalid addresses in the form and writes nothing', async () => {
    const before = await t.em().count(User, {});
    const { result } = await invite('UADMIN', '', { emails: 'good@example.com, not-an-email, also@bad' });
    expect(result.json).toEqual({
      response_action: 'errors',
      errors: {
        emails:
          'Not valid email addresses: not-an-email, also@bad. Fix or remove them; a name goes with its address as Ana Lopez <ana@example.com>.',
      },
    });
    expect(await t.em().count(User, {})).toBe(before);
  });

  it('asks for at least one address, and at most 100', async () => {
    const empty = await invite('UADMIN', '', { emails: '  ' });
    expect(empty.result.json?.errors).toEqual({ emails: 'Enter at least one email address.' });
    const many = Array.from({ length: 101 }, (_, i) => `p${i}@bulk.test`).join('\n');
    const tooMany = await invite('UADMIN', '', { emails: many });
    expect(tooMany.result.json?.errors).toEqual({
      emails: 'At most 100 addresses at once; you entered 101.',
    });
    expect(await t.em().count(User, { email: { $like: '%@bulk.test' } })).toBe(0);
  });

  it('adds an address given twice once, and reports an existing user whatever the case and spaces', async () => {
    await invite('UADMIN', '', { emails: 'twice@example.com\nTWICE@example.com' });
    expect(await t.em().count(User, { email: { $ilike: 'twice@example.com' } })).toBe(1);
    const before = summaries('UADMIN').length;
    await invite('UADMIN', '', { emails: '  Twice@Example.COM  ' });
    const summary = await eventually(() => summaries('UADMIN')[before]);
    expect(textOf(summary)).toContain('Twice@Example.COM*: already in Roster, invited');
    expect(JSON.stringify(summary.blocks)).toContain('invite_resend');
    expect(await t.em().count(User, { email: { $ilike: 'twice@example.com' } })).toBe(1);
  });

  it("handles Slack's retry of the same submission once", async () => {
    const before = summaries('UADMIN').length;
    const { result } = await invite('UADMIN', '', { emails: 'retry@example.com' });
    await result.resend();
    await result.resend();
    await eventually(() => summaries('UADMIN').length > before);
    await jobsDrained(t.em());
    expect(summaries('UADMIN').length).toBe(before + 1);
    expect(await t.em().count(Invitation, { user: { email: 'retry@example.com' } })).toBe(1);
  });

  it('accepts once on a double click, and shows the same answer twice', async () => {
    await invite('UADMIN', '', { emails: 'double@example.com' });
    const { link } = await inviteLink('double@example.com');
    const page = await browser.newPage();
    await page.goto(link);
    const form = await page.$('form');
    const csrf = await form!.$eval('input[name=csrf]', (i) => (i as unknown as { value: string }).value);
    const cookie = (await page.context().cookies()).map((c) => `${c.name}=${c.value}`).join('; ');
    // Each press is answered by a redirect to the page showing the answer, followed as a browser does.
    const post = async () => {
      const pressed = await fetch(link, {
        method: 'POST',
        redirect: 'manual',
        headers: { 'content-type': 'application/x-www-form-urlencoded', cookie },
        body: new URLSearchParams({ csrf }).toString(),
      });
      expect(pressed.status).toBe(303);
      const outcome = pressed.headers.getSetCookie().map((c) => c.split(';')[0]);
      const r = await fetch(new URL(pressed.headers.get('location')!, link), {
        headers: { cookie: [cookie, ...outcome].join('; ') },
      });
      return { status: r.status, body: await r.text() };
    };
    const [a, b] = await Promise.all([post(), post()]);
    await page.close();
    expect([a.status, b.status]).toEqual([200, 200]);
    expect([a.body, b.body].every((x) => x.includes("You're in"))).toBe(true);
    expect([a.body, b.body].filter((x) => x.includes('You had already accepted'))).toHaveLength(1);
    const user = await userByEmail('double@example.com');
    expect(
      await t
        .em()
        .count(AuditEvent, { action: 'invitation.accepted', data: { email: 'double@example.com' } }),
    ).toBe(1);
    expect(user?.status).toBe('active');
  });

  it('refuses a form posted without its CSRF value', async () => {
    await invite('UADMIN', '', { emails: 'csrf@example.com' });
    const { link } = await inviteLink('csrf@example.com');
    const res = await fetch(link, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'csrf=forged',
    });
    expect(res.status).toBe(403);
    expect((await userByEmail('csrf@example.com'))?.status).toBe('invited');
  });

  it('gives expired, resent-away, cancelled and unknown links the same page', async () => {
    await invite('UADMIN', '', { emails: 'expired@example.com, resent@example.com, cancel@example.com' });
    const expired = (await inviteLink('expired@example.com')).link;
    await t
      .em()
      .getConnection()
      .execute(
        `update invitation set expires_at = now() - interval '1 minute' where user_id = (select id from app_user where email = 'expired@example.com')`,
      );

    const oldLink = (await inviteLink('resent@example.com')).link;
    const resentUser = await userByEmail('resent@example.com');
    const summary = await eventually(() =>
      summaries('UADMIN').find((m) => textOf(m).includes('resent@example.com')),
    );
    await t.slack.command('/invite', 'pending', { user: 'UADMIN' });
    const pending = await t.standin.waitForResponse((r) => textOf(r.body).includes('resent@example.com'));
    await t.slack.clickButton(
      { ...pending.body, channel: 'C0GENERAL', ts: '1' },
      { actionId: 'invite_resend', value: resentUser!.id },
      { user: 'UADMIN' },
    );
    await t.standin.waitForResponse((r) =>
      String(r.body.text).includes('Invitation resent to resent@example.com'),
    );
    const newMail = await t.smtp.waitForMail(
      (m) => m.toText === 'resent@example.com' && !links(m).includes(oldLink),
    );
    const newLink = links(newMail).find((l) => l.includes('/invitations/'))!;
    expect(newLink).not.toBe(oldLink);
    expect(summary).toBeDefined();

    const cancelLink = (await inviteLink('cancel@example.com')).link;
    const cancelUser = await userByEmail('cancel@example.com');
    await t.slack
      .clickButton(
        { ...pending.body, channel: 'C0GENERAL', ts: '1' },
        { actionId: 'invite_cancel', value: cancelUser!.id },
        { user: 'UADMIN' },
      )
      .catch(() => null);
    await eventually(async () => (await userByEmail('cancel@example.com'))?.status === 'deactivated');

    const unknown = `${t.url}/invitations/${'x'.repeat(43)}`;
    const pages = await Promise.all(
      [expired, oldLink, cancelLink, unknown].map((l) =>
        fetch(l).then(async (r) => [r.status, await r.text()] as const),
      ),
    );
    for (const [status, body] of pages) {
      expect(status).toBe(404);
      expect(body).toContain('This invitation link is no longer valid');
    }
    expect(new Set(pages.map(([, body]) => body)).size).toBe(1);
    expect((await fetch(newLink)).status).toBe(200);
  });

  it('lets only the inviter or an admin resend or cancel', async () => {
    await invite('UADMIN', '', { emails: 'guarded@example.com' });
    const user = await eventually(() => userByEmail('guarded@example.com'));
    await t.slack.clickButton(
      buttonMessage('invite_cancel', user.id, 'Cancel', '2'),
      { actionId: 'invite_cancel' },
      {
        user: 'UMEMBER',
      },
    );
    await t.standin.waitForResponse((r) =>
      String(r.body.text).includes('Only the person who invited them or an admin can do that.'),
    );
    expect((await userByEmail('guarded@example.com'))?.status).toBe('invited');
  });

  it('cancels once on a double click, and the second press says it was already cancelled', async () => {
    await invite('UADMIN', '', { emails: 'twice-cancelled@example.com' });
    const user = await eventually(() => userByEmail('twice-cancelled@example.com'));
    const message = buttonMessage('invite_cancel', user.id, 'Cancel', '4');
    const since = t.standin.responses.length;
    await t.slack.clickButton(message, { actionId: 'invite_cancel' }, { user: 'UADMIN' });
    await t.slack.clickButton(message, { actionId: 'invite_cancel' }, { user: 'UADMIN' });
    const answers = await eventually(() => {
      const texts = t.standin.responses.slice(since).map((r) => textOf(r.body));
      return texts.length >= 2 ? texts : null;
    });
    expect(answers[0]).toMatch(/^:x: Cancelled the invitation to twice-cancelled@example\.com/);
    expect(answers[1]).toBe(
      'The invitation to twice-cancelled@example.com is already cancelled: their link no longer works and they are deactivated in Roster. Nothing changed.',
    );
    expect((await userByEmail('twice-cancelled@example.com'))?.status).toBe('deactivated');
    expect(await t.em().count(AuditEvent, { action: 'invitation.cancelled', subjectId: user.id })).toBe(1);
  });

  it('adds people without an invitation when the box is unticked, and sends it later', async () => {
    await invite('UADMIN', '', { emails: 'later@example.com', send_now: [] });
    const user = await eventually(() => userByEmail('later@example.com'));
    expect(user.status).toBe('not_invited');
    expect(await t.em().count(Invitation, { user: user.id })).toBe(0);
    await t.slack.command('/invite', 'pending', { user: 'UADMIN' });
    const pending = await t.standin.waitForResponse((r) => textOf(r.body).includes('later@example.com'));
    expect(textOf(pending.body)).toContain('added, invitation not sent');
    await t.slack.clickButton(
      { ...pending.body, channel: 'C0GENERAL', ts: '3' },
      { actionId: 'invite_send', value: user.id },
      { user: 'UADMIN' },
    );
    await inviteLink('later@example.com');
    expect((await userByEmail('later@example.com'))?.status).toBe('invited');
  });
});

describe('delivery', () => {
  it('keeps retrying while the mail server is down and delivers exactly once when it is back', async () => {
    await t.smtp.stop();
    await invite('UADMIN', '', { emails: 'outage@example.com' });
    const user = await eventually(() => userByEmail('outage@example.com'));
    const failed = await eventually(async () => {
      const inv = await t.em().findOne(Invitation, { user: user.id });
      return inv?.lastError ? inv : null;
    }, 8000);
    expect(failed.lastError).toMatch(/Email failed/);
    expect(failed.deliveredAt).toBeNull();
    await t.smtp.start();
    await inviteLink('outage@example.com');
    const delivered = await eventually(async () => {
      const inv = await t.em().findOne(Invitation, { user: user.id });
      return inv?.deliveredAt ? inv : null;
    }, 15000);
    expect(delivered.deliveryAttempts).toBeGreaterThanOrEqual(2);
    // No delivery left waiting, not even a retry scheduled for later, could send a second email.
    await jobsDrained(t.em(), { queues: [INVITE_JOBS.deliver] });
    expect(t.smtp.messagesTo('outage@example.com')).toHaveLength(1);
  }, 40000);

  it('falls back to email when the Slack DM fails', async () => {
    t.standin.addMember({ id: 'UNEW', name: 'nell', realName: 'Nell New', email: 'nell@acme.test' });
    t.standin.failNext('chat.postMessage', 'channel_not_found', 1, (args) => args.channel === 'UNEW');
    await invite('UADMIN', '', { emails: 'nell@acme.test' });
    await inviteLink('nell@acme.test');
    const inv = await eventually(async () => {
      const i = await t.em().findOne(Invitation, { user: { email: 'nell@acme.test' } });
      return i?.deliveredAt ? i : null;
    });
    expect(inv.deliveryMethod).toBe('email');
    expect(inv.lastError).toBe('Slack DM failed: An API error occurred: channel_not_found');
  });
});

describe('seats', () => {
  it("turns a manager's paid invitation into a seat request; the admin's approval sends it", async () => {
    await invite('UMANAGER', 'hire@example.com contractor');
    const summary = await eventually(() => summaries('UMANAGER').at(-1));
    expect(textOf(summary)).toContain('an admin has been asked to approve it');
    expect(await userByEmail('hire@example.com')).toBeNull();
    const request = await t.em().findOneOrFail(SeatRequest, { email: 'hire@example.com' });
    const copy = await eventually(() =>
      t.standin.messages.find(
        (m) => m.channel === 'DUADMIN' && JSON.stringify(m.blocks ?? []).includes(request.id),
      ),
    );
    await t.slack.clickButton(copy, { actionId: 'seat_approve' }, { user: 'UADMIN' });
    const { mail } = await inviteLink('hire@example.com');
    expect(mail.subject).toBe('Mia Manager invited you to Acme');
    expect(await userByEmail('hire@example.com')).toMatchObject({
      role: 'contractor',
      status: 'invited',
      addedBy: 'UMANAGER',
    });
    const told = await eventually(() =>
      t.standin.messages.find(
        (m) => m.channel === 'DUMANAGER' && String(m.text).includes('approved your request'),
      ),
    );
    expect(told.text).toContain('The invitation is on its way to hire@example.com.');
  });

  it('lets clients in without approval', async () => {
    await invite('UMANAGER', 'client@partner.test client');
    await inviteLink('client@partner.test');
    expect(await userByEmail('client@partner.test')).toMatchObject({ role: 'client', status: 'invited' });
  });
});
