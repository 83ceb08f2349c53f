import { DEFAULT_MEMBERS, startTestApp, TEAM_ID, type TestApp } from '../../support/app.ts';
import type { Mail } from '../../support/smtp-sink.ts';
import { links } from '../../support/smtp-sink.ts';

// The invitation email as a recipient's mail client and a mail server read it, whatever the names in it:
// the inviter's (Slack), the account's (Slack) and the invitee's (typed by the admin).

const INVITER = 'Zoë "Z" O\'Brien, CEO <boss@evil.test> 🚀';
const ACCOUNT = 'Acme & Söhne "Intl", <b>Ltd</b> 🚀';

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp({
    seatLimit: 20,
    members: DEFAULT_MEMBERS.map((m) => (m.id === 'UADMIN' ? { ...m, realName: INVITER } : m)),
  });
  await t.em().getConnection().execute('update account set name = ? where team_id = ?', [ACCOUNT, TEAM_ID]);
});
afterAll(() => t.stop());

/** An admin invites `emails` with /invite and a personal message; returns the email sent to `to`. */
async function invite(emails: string, to: string, message = ''): Promise<Mail> {
  await t.slack.command('/invite', '', { user: 'UADMIN' });
  const res = await t.slack.submitView(t.standin.lastOpenedView(), { emails, message }, { user: 'UADMIN' });
  expect(res.status).toBe(200);
  return t.smtp.waitForMail((m) => m.toText.includes(to));
}

describe('the invitation email', () => {
  it('has well-formed headers, a Date and a Message-ID, and replies go to the inviter', async () => {
    const mail = await invite('"Lopez, Ana <i>" <ana.headers@example.com>', 'ana.headers@example.com');

    expect(mail.subject).toBe(`${INVITER} invited you to ${ACCOUNT}`);
    expect(mail.date).toBeInstanceOf(Date);
    expect(Math.abs(Date.now() - (mail.date as Date).getTime())).toBeLessThan(60_000);
    expect(mail.messageId).toMatch(/^<[^<>@\s]+@[^<>@\s]+>$/);
    // One recipient, the invitee; no header named by what a name held.
    expect(mail.to && !Array.isArray(mail.to) ? mail.to.value.map((a) => a.address) : []).toEqual([
      'ana.headers@example.com',
    ]);
    expect(mail.headers.has('cc')).toBe(false);
    expect(mail.headers.has('bcc')).toBe(false);
    // Every header line as it was sent: ASCII (names encoded) and within SMTP's line limit.
    for (const line of mail.headerLines) {
      expect(line.line).toMatch(/^[\x20-\x7e\t\r\n]*$/);
      for (const part of line.line.split(/\r?\n/)) expect(part.length).toBeLessThanOrEqual(998);
    }

    // A reply reaches the person who invited them, by their Slack email, named as Slack names them.
    expect(mail.replyTo?.value).toEqual([{ name: INVITER, address: 'adam@acme.test' }]);
  });

  it('has a plain text part saying what the HTML says, escaped in the HTML, with the same absolute link', async () => {
    const message = 'See you Monday <script>alert(1)</script> & "bring" snacks\nSecond line';
    const mail = await invite('"Lopez, Ana <i>" <ana.parts@example.com>', 'ana.parts@example.com', message);
    const text = mail.text ?? '';
    const html = typeof mail.html === 'string' ? mail.html : '';

    const [link, ...others] = links(mail);
    expect(others).toEqual([]);
    expect(link).toMatch(new RegExp(`^${t.url}/invitations/[A-Za-z0-9_-]{43}$`));
    expect(text).toContain(`Accept the invitation: ${link}`);
    expect(html).toContain(`href="${link}"`);

    // The text part holds every name and the message as typed; the HTML the same words, escaped.
    for (const words of [INVITER, ACCOUNT, 'Ana <i>', 'as an employee', ...message.split('\n')]) {
      expect(text).toContain(words);
      expect(html).toContain(
        words
          .replace(/&/g, '&amp;')
          .replace(/</g, '&lt;')
          .replace(/>/g, '&gt;')
          .replace(/"/g, '&quot;')
          .replace(/'/g, '&#39;'),
      );
    }
    expect(html).not.toMatch(/<(script|b|i)>/);
  });
});
