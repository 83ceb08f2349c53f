import type { Browser } from 'playwright-core';
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
