import { JoinLink } from '../../../src/features/join-links/join-link.entity.ts';
import { permissionSetByName } from '../../../src/features/people/people.service.ts';
import { User, type UserStatus } from '../../../src/features/people/user.entity.ts';
import { SeatRequest } from '../../../src/features/seats/seat-request.entity.ts';
import { startTestApp, type TestApp } from '../../support/app.ts';
import { links } from '../../support/smtp-sink.ts';
import { textOf } from '../../support/views.ts';
import { httpFrom, openForm, postLink } from './support.ts';

let t: TestApp;

beforeAll(async () => {
  t = await startTestApp({ seatLimit: 1000 });
});
afterAll(() => t.stop());

let n = 0;
/** A new workspace member Roster does not know yet. */
function member(opts: { isAdmin?: boolean } = {}): { id: string; email: string } {
  const i = ++n;
  const id = `UTRUST${i}`;
  const email = `trust${i}@acme.test`;
  t.standin.addMember({ id, name: `trust${i}`, realName: `Terry Trust${i}`, email, ...opts });
  return { id, email };
}

let clients = 100;
const nextClient = () => `127.0.0.${++clients}`;

async function joinAs(message: Record<string, any>, user: string): Promise<string> {
  const since = t.standin.responses.length;
  await t.slack.clickButton(message, 'Join', { user });
  const answers = t.standin.responses.slice(since).map((r) => textOf(r.body));
  expect(answers).toHaveLength(1);
  return answers[0]!;
}

/** Slack tells Roster that `id` changed, and Slack itself now answers so for them. */
async function slackChanges(id: string, change: { isAdmin?: boolean; deleted?: boolean }) {
  const m = t.standin.members.get(id)!;
  t.standin.addMember({ ...m, ...change });
  await t.slack.event({
    type: 'user_change',
    user: {
      id,
      team_id: 'T0001',
      name: m.name,
      real_name: m.realName,
      is_admin: change.isAdmin ?? m.isAdmin ?? false,
      deleted: change.deleted ?? false,
      profile: { email: m.email },
    },
  });
}

/** Fills the join form and presses Confirm on the emailed link; returns the page the press answers. */
async function joinOnTheWeb(url: string, email: string) {
  const form = await openForm(nextClient(), url);
  expect((await form.submit('Web Joiner', email)).status).toBe(200);
  const mail = await t.smtp.waitForMail((m) => m.toText === email);
  const confirm = links(mail).find((l) => l.includes('/join/confirm/'))!;
  const from = nextClient();
  const page = await httpFrom(from, confirm);
  const csrf = page.body.match(/name="csrf" value="([^"]+)"/)![1]!;
  const cookie = String(page.headers['set-cookie']).split(';')[0]!;
  return httpFrom(from, confirm, { method: 'POST', cookie, body: new URLSearchParams({ csrf }).toString() });
}

const plain = (body: string) =>
  body
    .replace(/<[^>]+>/g, ' ')
    .replace(/&#39;|&apos;/g, "'")
    .replace(/\s+/g, ' ');

describe('a link whose poster is no longer an admin', () => {
  for (const [what, change] of [
    ['loses admin rights', { isAdmin: false }],
    ['is deactivated', { deleted: true }],
  ] as const) {
    it(`admits nobody to a paid seat once the poster ${what}: each join waits for an admin`, async () => {
      const poster = member({ isAdmin: true });
      const { message, url, linkId } = await postLink(t, {}, { user: poster.id });
      const before = member();
      expect(await joinAs(message, before.id)).toBe(':tada: You joined Acme as an employee. Welcome!');

      await slackChanges(poster.id, change);

      const after = member();
      expect(await joinAs(message, after.id)).toBe(
        ":hourglass_flowing_sand: This join link now needs an admin's approval for each person, so an admin of Acme has been asked to approve your place. You will get a message when they decide.",
      );
      expect(await t.em().findOne(User, { email: after.email })).toBeNull();
      expect(await t.em().findOneOrFail(SeatRequest, { email: after.email })).toMatchObject({
        kind: 'join',
        status: 'pending',
        requestedBy: after.id,
        payload: expect.objectContaining({ joinLinkId: linkId, posterNoLongerAdmin: poster.id }),
      });
      // The admins asked are told why a link with seats free asks them.
      const asked = await t.standin.waitForMessage(
        (m) =>
          m.method === 'chat.postMessage' &&
          textOf(m).includes(`Seat request*`) &&
          textOf(m).includes(after.email),
      );
      expect(textOf(asked)).toContain(
        `Through:* a join through a join link posted by <@${poster.id}>, whose admin rights Roster cannot confirm now (removed, or Slack could not say), so every join through it needs approval`,
      );

      // The web page's confirmation, checked when it is pressed, not when the form was filled.
      const web = `web-${n}@outside.test`;
      const pressed = await joinOnTheWeb(url, web);
      expect(plain(pressed.body)).toContain(
        "This join link now needs an admin's approval for each person, so an admin of Acme has been asked to approve your place. We will email you when they decide.",
      );
      expect(await t.em().findOne(User, { email: web })).toBeNull();
      expect(await t.em().findOneOrFail(SeatRequest, { email: web })).toMatchObject({ status: 'pending' });
    });
  }

  it('admits as before while the poster is still an admin through Roster’s Admin permission set', async () => {
    const poster = member({ isAdmin: true });
    const { message } = await postLink(t, {}, { user: poster.id });
    const em = t.em();
    const account = await t.account();
    em.create(User, {
      account,
      email: poster.email,
      role: 'employee',
      status: 'active',
      slackUserId: poster.id,
      permissionSet: await permissionSetByName(em, account, 'Admin'),
    });
    await em.flush();
    await slackChanges(poster.id, { isAdmin: false });
    const joiner = member();
    expect(await joinAs(message, joiner.id)).toBe(':tada: You joined Acme as an employee. Welcome!');
  });
});

describe('joining with a Roster record that is not active', () => {
  const cases: [UserStatus, string][] = [
    ['invited', 'is invited to Acme but has not accepted yet. Open the invitation Roster sent you'],
    ['not_invited', 'was added to Acme, but no invitation was sent yet'],
    ['expired', 'expired before it was accepted. Ask an admin to resend it'],
    ['locked', 'was imported into Acme and is locked'],
    [
      'deactivated',
      'was deactivated in Acme, and a join link does not bring it back. Ask an admin to reactivate you',
    ],
  ];
  for (const [status, says] of cases) {
    it(`tells someone whose record is ${status} their real status and what to do, the same on Slack and the web`, async () => {
      const person = member();
      const em = t.em();
      em.create(User, {
        account: await t.account(),
        email: person.email,
        role: 'employee',
        status,
        slackUserId: person.id,
      });
      await em.flush();
      const { message, url, linkId } = await postLink(t);
      const slack = await joinAs(message, person.id);
      expect(slack).toContain(`${person.email} `);
      expect(slack).toContain(says);
      expect(slack).toContain(`/people ${person.email}`);
      expect(slack).not.toMatch(/already (in|has access)/);

      // The web form answers as for anyone; the email tells the address's owner the same as Slack did.
      const form = await openForm(nextClient(), url);
      const answered = await form.submit('Someone', person.email);
      expect(answered.body).toContain('Check your inbox');
      const mail = await t.smtp.waitForMail((m) => m.toText === person.email);
      expect(links(mail).some((l) => l.includes('/join/confirm/'))).toBe(false);
      expect((mail.text ?? '').replace(/\s+/g, ' ')).toContain(slack);
      expect((await em.fork().findOneOrFail(User, { email: person.email })).status).toBe(status);
      expect((await t.em().findOneOrFail(JoinLink, linkId)).uses).toBe(0);
    });
  }

  it('tells someone whose record appeared after the mail their status on the Confirm page too', async () => {
    const { message, url } = await postLink(t);
    const email = 'late-record@acme.test';
    const form = await openForm(nextClient(), url);
    await form.submit('Late Record', email);
    const mail = await t.smtp.waitForMail((m) => m.toText === email);
    const confirm = links(mail).find((l) => l.includes('/join/confirm/'))!;
    const em = t.em();
    em.create(User, { account: await t.account(), email, role: 'employee', status: 'deactivated' });
    await em.flush();
    const from = nextClient();
    const page = await httpFrom(from, confirm);
    const csrf = page.body.match(/name="csrf" value="([^"]+)"/)![1]!;
    const cookie = String(page.headers['set-cookie']).split(';')[0]!;
    const pressed = await httpFrom(from, confirm, {
      method: 'POST',
      cookie,
      body: new URLSearchParams({ csrf }).toString(),
    });
    expect(pressed.body).toContain('<h1>Your access was deactivated</h1>');
    expect(plain(pressed.body)).toContain(
      `${email} was deactivated in Acme, and a join link does not bring it back. Ask an admin to reactivate you; an admin of Acme can do it from your card: /people ${email}. Nothing changed.`,
    );
    expect(plain(pressed.body)).not.toContain('already');
    // Slack says the same words to a deactivated member.
    const person = member();
    em.create(User, {
      account: await t.account(),
      email: person.email,
      role: 'employee',
      status: 'deactivated',
      slackUserId: person.id,
    });
    await em.flush();
    expect(await joinAs(message, person.id)).toBe(
      `${person.email} was deactivated in Acme, and a join link does not bring it back. Ask an admin to reactivate you; an admin of Acme can do it from your card: /people ${person.email}. Nothing changed.`,
    );
  });
});
