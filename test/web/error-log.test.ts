import { Writable } from 'node:stream';
import { createLogger } from '../../src/shared/logger.ts';
import { startTestApp, type TestApp } from '../support/app.ts';
import { links } from '../support/smtp-sink.ts';

// A page that fails is logged with the route it matched, never its path: the paths of the invitation and
// join pages are live tokens, good for accepting or joining for as long as they last.

let t: TestApp;
const lines: string[] = [];

beforeAll(async () => {
  const sink = new Writable({
    write(chunk, _enc, done) {
      lines.push(String(chunk));
      done();
    },
  });
  t = await startTestApp({ seatLimit: 10, logger: createLogger('info', sink) });
});
afterAll(() => t.stop());

async function invitationToken(email: string): Promise<string> {
  await t.slack.command('/invite', '', { user: 'UADMIN' });
  const res = await t.slack.submitView(t.standin.lastOpenedView(), { emails: email }, { user: 'UADMIN' });
  expect(res.status).toBe(200);
  const mail = await t.smtp.waitForMail((m) => m.toText === email);
  const link = links(mail).find((l) => l.includes('/invitations/'));
  if (!link) throw new Error(`no invitation link in the mail to ${email}`);
  return new URL(link).pathname.split('/')[2]!;
}

const failures = () =>
  lines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.msg === 'web request failed');

describe('a web page that fails', () => {
  it('logs its route and reference, not the token in its address, however the address is written', async () => {
    const token = await invitationToken('logged@example.com');
    const joinToken = 'J'.repeat(43);
    const conn = t.em().getConnection();
    // The database refuses every read of invitations and join links from here on.
    await conn.execute('alter table invitation rename to invitation_elsewhere');
    await conn.execute('alter table join_link rename to join_link_elsewhere');
    try {
      const before = lines.length;
      // As a mail scanner or browser may write it: one character percent-encoded still opens the invitation.
      const encoded = `%${token.charCodeAt(0).toString(16).toUpperCase()}${token.slice(1)}`;
      for (const path of [
        `/invitations/${token}`,
        `/invitations/${encoded}`,
        `/join/${joinToken}`,
        `/join/confirm/${joinToken}`,
      ]) {
        const res = await fetch(`${t.url}${path}`);
        expect(res.status).toBe(500);
        const ref = /Reference: ([0-9a-f]+)/.exec(await res.text())?.[1];
        expect(failures().some((l) => l.ref === ref)).toBe(true);
      }
      const logged = lines.slice(before).join('');
      expect(logged).not.toContain(token.slice(1));
      expect(logged).not.toContain(joinToken);
      expect(failures().map((l) => l.route)).toEqual([
        '/invitations/:token',
        '/invitations/:token',
        '/join/:token',
        '/join/confirm/:token',
      ]);
    } finally {
      await conn.execute('alter table invitation_elsewhere rename to invitation');
      await conn.execute('alter table join_link_elsewhere rename to join_link');
    }
  });
});
