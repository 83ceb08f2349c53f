import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Contact } from '../../src/features/contacts/contact.entity.ts';
import { type IUser, User } from '../../src/features/people/user.entity.ts';
import { SeatRequest } from '../../src/features/seats/seat-request.entity.ts';
import { escFit } from '../../src/slack/blocks.ts';
import { openScimForm } from '../features/scim/support.ts';
import { eventually, startTestApp, type TestApp } from '../support/app.ts';
import { textOf } from '../support/views.ts';

/**
 * Text people typed (names, personal messages) reaching Slack as Slack reads it: escaped wherever it is
 * mrkdwn, so it shows as typed and never as a link, a mention or formatting, and cut to Slack's limits
 * where it could pass them, so the message is not refused for everyone.
 */

/** A name as someone could type it on the public join form or in a CSV file. */
const LINK_NAME = '<https://evil.example|Click here>';
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

let t: TestApp;

beforeAll(async () => {
  t = await startTestApp({ seatLimit: 10 });
});
afterAll(() => t.stop());

let n = 0;
async function person(extra: Partial<IUser> = {}) {
  const em = t.em();
  const user = em.create(User, {
    account: await t.account(),
    email: `typed${++n}@acme.test`,
    firstName: LINK_NAME,
    lastName: null,
    role: 'employee',
    status: 'active',
    addedBy: 'UADMIN',
    ...extra,
  });
  await em.flush();
  return user;
}

describe('a refusal that names a person', () => {
  it('reaches the person by DM with the name escaped, not as a link', async () => {
    const user = await person();
    // A requester's change between paid roles sent as a form, refused once the form is closed: the refusal
    // comes by DM.
    await t.slack.viewSubmission({
      user: 'UMANAGER',
      view: {
        id: 'VFORGEDNAME',
        hash: 'h1',
        callback_id: 'person_change_modal',
        private_metadata: JSON.stringify({ u: user.id, c: 'role' }),
        state: {
          values: {
            role: { role: { type: 'static_select', selected_option: { value: 'contractor' } } },
          },
        },
      },
    });
    const dm = await t.standin.waitForMessage(
      (m) => m.channel === 'DUMANAGER' && textOf(m).includes('Only admins can change'),
    );
    expect(textOf(dm)).toContain('&lt;https://evil.example|Click here&gt;');
    expect(textOf(dm)).not.toContain('<https://evil.example');
  });

  it('reaches the person who clicked with the name escaped, not as a link', async () => {
    const client = await person({ role: 'client', status: 'locked' });
    const before = t.standin.responses.length;
    await t.slack.blockAction({
      user: 'UMANAGER',
      channel: 'DUMANAGER',
      actions: [
        {
          type: 'button',
          action_id: 'person_change_unlock',
          block_id: 'b',
          value: JSON.stringify({ u: client.id, c: 'unlock' }),
        },
      ],
    });
    const told = await eventually(() =>
      t.standin.responses.slice(before).find((r) => textOf(r.body).includes('Only admins can unlock')),
    );
    expect(textOf(told.body)).toContain('&lt;https://evil.example|Click here&gt;');
    expect(textOf(told.body)).not.toContain('<https://evil.example');
  });
});

describe("a form's field error", () => {
  it('says a request is already decided in plain words, without mentions, dates or escapes', async () => {
    const em = t.em();
    const account = await t.account();
    const locked = em.create(User, {
      account,
      email: 'decided@acme.test',
      role: 'employee',
      status: 'locked',
      addedBy: 'UADMIN',
    });
    await em.flush();
    const asked = await t.roster.deps.people.unlock(
      t.em(),
      account,
      { slackUserId: 'UMANAGER', isAdmin: false, surface: 'slack' },
      locked.id,
    );
    if (asked.status !== 'requested') throw new Error('expected a seat request');
    const copy = await eventually(
      () =>
        t.standin.messages.find(
          (m) =>
            m.method === 'chat.postMessage' &&
            m.channel === 'DUADMIN' &&
            JSON.stringify(m.blocks ?? []).includes(asked.request.id),
        ),
      30_000,
    );
    await t.slack.clickButton(copy, { actionId: 'seat_reject' }, { user: 'UADMIN' });
    const form = t.standin.lastOpenedView();
    // Another admin rejected it, with a reason holding an ampersand, while this form was open.
    await t
      .em()
      .nativeUpdate(
        SeatRequest,
        { id: asked.request.id },
        { status: 'rejected', decidedBy: 'UOWNER', decidedAt: new Date(), reason: 'R&D has no budget' },
      );
    const submitted = await t.slack.submitView(form, { reason: 'Not now' }, { user: 'UADMIN' });
    const error: string = submitted.json.errors.reason;
    expect(error).toMatch(/^Already decided: rejected on \d{4}-\d\d-\d\d \d\d:\d\d UTC\./);
    // Slack shows it as plain text: markup would show as typed.
    expect(error).not.toMatch(/<[@#!]|&amp;|&lt;/);
  });
});

describe('an invitation by Slack DM', () => {
  it('reaches a member whose personal message is full of & and < and line breaks', async () => {
    await t.slack.command('/invite', 'mia@acme.test', { user: 'UADMIN' });
    const view = t.standin.lastOpenedView();
    // 1,000 characters, the most the form takes, and over 4,000 once escaped and quoted: Slack takes 3,000.
    const message = `Q&A:\n${'<3 & '.repeat(120)}\n${'&\n'.repeat(197)}`.slice(0, 1000);
    await t.slack.submitView(view, { message }, { user: 'UADMIN' });
    const dm = await eventually(
      () =>
        t.standin.messages.find((m) => m.channel === 'DUMANAGER' && String(m.text).includes('invited you')),
      20_000,
    );
    const quote = (dm.blocks ?? []).find((b: any) => b.text?.text?.startsWith('> '))!;
    expect(quote.text.text.length).toBeLessThanOrEqual(3000);
    expect(quote.text.text).toMatch(/^> Q&amp;A:\n> &lt;3 &amp; &lt;3 &amp; /);
    expect(quote.text.text).toMatch(/\n> &amp;\n> (&amp;)?…$/);
    expect(t.standin.refusedBlocks).toEqual([]);
  });
});

describe('escFit', () => {
  it('never cuts an emoji in half', () => {
    for (let max = 2; max < 60; max++) {
      const fitted = escFit('🙂'.repeat(40), max);
      expect(fitted.length).toBeLessThanOrEqual(max);
      expect(fitted).not.toMatch(LONE_SURROGATE);
    }
  });
});

describe("a SCIM service's answer on the SCIM form", () => {
  it('shows the error page a proxy in front of the service answered as text, not as markup', async () => {
    // What nginx answers for a request it will not pass on.
    const page =
      '<html>\r\n<head><title>400 Bad Request</title></head>\r\n<body>\r\n<center><h1>400 Bad Request</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n';
    const proxy = createServer((_req, res) => {
      res.writeHead(400, { 'content-type': 'text/html' });
      res.end(page);
    });
    await new Promise<void>((ok) => proxy.listen(0, '127.0.0.1', ok));
    try {
      const { port } = proxy.address() as AddressInfo;
      const form = await openScimForm(t);
      await t.slack.submitView(
        form,
        { url: `http://127.0.0.1:${port}/scim/v2`, token: 'a-token' },
        { user: 'UADMIN' },
      );
      const shown = await eventually(() => {
        const text = textOf(t.standin.views.get(form.id)!);
        return text.includes('Not connected') ? text : undefined;
      });
      expect(shown).toContain('&lt;html&gt;');
      expect(shown).not.toContain('<html>');
    } finally {
      await new Promise((done) => proxy.close(done));
    }
  });
});

describe('a name from a CSV file with line breaks and text direction controls', () => {
  it('shows on one line of the Home tab, reading as typed', async () => {
    const typed = await person({
      // Each line break would start a line of its own in the list; U+202E would make the rest read backwards.
      firstName: 'Ana\n:white_check_mark: Approved by the CEO\t',
      lastName: '\u202Eesrever',
      status: 'expired',
    });
    await t.slack.event({ type: 'app_home_opened', user: 'UADMIN', tab: 'home', channel: 'DUADMIN' });
    const home = await eventually(() => t.standin.homeView('UADMIN'));
    const line = home.blocks
      .map((b: any) => b.text?.text ?? '')
      .find((text: string) => text.includes(typed.email));
    expect(line).toContain('• Ana :white_check_mark: Approved by the CEO esrever (');
    expect(line).not.toMatch(/[\n\t\u202A-\u202E\u2066-\u2069]/);
  });
});

describe('names with line breaks and text direction controls in /contact find', () => {
  it('shows each contact, company and user on one line, reading as typed', async () => {
    const em = t.em();
    em.create(Contact, {
      account: await t.account(),
      name: 'Zoltan\n:white_check_mark: Verified\t\u202Eeman',
      email: 'zoltan@supplier.test',
      company: 'Zeta\nLtd\u2066',
      addedBy: 'UMEMBER',
    });
    await em.flush();
    await person({
      email: 'zora@acme.test',
      firstName: 'Zora\n:white_check_mark: Admin',
      lastName: '\u202Ekcal',
    });
    const before = t.standin.responses.length;
    await t.slack.command('/contact', 'find zo', { user: 'UMEMBER' });
    const body = (await eventually(() => t.standin.responses[before])).body;
    const lines = (body.blocks as any[]).map((b) => b.text?.text ?? '').filter(Boolean);
    const contact = lines.find((l: string) => l.includes('zoltan@supplier.test'));
    const user = lines.find((l: string) => l.includes('zora@acme.test'));
    expect(contact).toMatch(
      /^\*Zoltan :white_check_mark: Verified eman\* · zoltan@supplier\.test · Zeta Ltd\nContact/,
    );
    expect(user).toMatch(/^\*Zora :white_check_mark: Admin kcal\* · zora@acme\.test\nUser, /);
    for (const line of [contact, user]) expect(line).not.toMatch(/[\t\u202A-\u202E\u2066-\u2069]/);
  });
});
