import { Invitation } from '../../../src/features/invites/invitation.entity.ts';
import { InviteService } from '../../../src/features/invites/invite.service.ts';
import { User } from '../../../src/features/people/user.entity.ts';
import { SeatRequest } from '../../../src/features/seats/seat-request.entity.ts';
import { eventually, startTestApp, type TestApp } from '../../support/app.ts';
import type { Mail } from '../../support/smtp-sink.ts';
import { links } from '../../support/smtp-sink.ts';
import { textOf } from '../../support/views.ts';

/**
 * The inviter's personal message is shown in the DM, the email and the accept page; an invitation sent again
 * (Resend, or Resend of an expired one) shows it again, not a message-less copy.
 */
let t: TestApp;

beforeAll(async () => {
  t = await startTestApp({ seatLimit: 20 });
});
afterAll(() => t.stop());

const MESSAGE = 'Welcome aboard, the team starts on Monday at nine.';

/** /invite as `user` with the personal message, for `emails`; resolves once each invitation went out. */
async function inviteWithMessage(user: string, emails: string) {
  await t.slack.command('/invite', emails, { user });
  await t.slack.submitView(t.standin.lastOpenedView(), { message: MESSAGE }, { user });
  const people = [];
  for (const email of emails.split(/,\s*/)) {
    const person = await eventually(() => t.em().findOne(User, { email }));
    await eventually(async () => (await t.em().findOne(Invitation, { user: person.id }))?.deliveredAt);
    people.push(person);
  }
  return people;
}

const mailsTo = (email: string) => t.smtp.messages.filter((m) => m.toText === email);
const linkIn = (mail: Mail) => {
  const link = links(mail).find((l) => l.includes('/invitations/'));
  if (!link) throw new Error('no invitation link in the mail');
  return link;
};
const dmsTo = (user: string) =>
  t.standin.messages.filter(
    (m) =>
      m.method === 'chat.postMessage' && m.channel === `D${user}` && String(m.text).includes('invited you'),
  );

/** Clicks Resend next to `userId` in `clicker`'s /invite pending. */
async function resend(clicker: string, userId: string, email: string) {
  await t.slack.command('/invite', 'pending', { user: clicker });
  const list = await t.standin.waitForResponse((r) => textOf(r.body).includes(email));
  await t.slack.clickButton(list.body, { actionId: 'invite_resend', value: userId }, { user: clicker });
}

/** The new email's link (after `before` mails), its text, and the accept page it opens. */
async function nextMail(email: string, before: number) {
  const mail = await eventually(() => mailsTo(email)[before]);
  const link = linkIn(mail);
  const page = await fetch(link).then((r) => r.text());
  return { mail, link, page };
}

describe('an invitation sent again', () => {
  it('keeps the personal message in the new DM, email and accept page', async () => {
    const [mia, pat] = await inviteWithMessage('UADMIN', 'mia@acme.test, pat@outside.test');
    // The first ones have it: Mia is in Slack (a DM), Pat is not (an email).
    expect(textOf(dmsTo('UMANAGER').at(-1))).toContain(MESSAGE);
    expect(mailsTo('pat@outside.test')[0]?.text).toContain(MESSAGE);

    const dmsBefore = dmsTo('UMANAGER').length;
    await resend('UADMIN', mia!.id, 'mia@acme.test');
    const dm = await eventually(() => dmsTo('UMANAGER')[dmsBefore]);
    expect(textOf(dm)).toContain(MESSAGE);

    await resend('UADMIN', pat!.id, 'pat@outside.test');
    const { mail, link, page } = await nextMail('pat@outside.test', 1);
    expect(link).not.toBe(linkIn(mailsTo('pat@outside.test')[0]!));
    expect(mail.text).toContain(MESSAGE);
    expect(mail.html).toContain(MESSAGE);
    expect(page).toContain(MESSAGE);
    const latest = await t.em().findOneOrFail(Invitation, { user: pat!.id, status: 'pending' });
    expect(latest.personalMessage).toBe(MESSAGE);
  });

  it("keeps it when an admin resends an expired invitation, and when an admin approves a requester's", async () => {
    const [lee, kim] = await inviteWithMessage('UADMIN', 'lee@outside.test, kim@outside.test');
    await t.em().nativeUpdate(User, { id: kim!.id }, { addedBy: 'UMANAGER' });
    const later = new InviteService(
      t.roster.deps.seats,
      t.roster.jobs,
      () => new Date(Date.now() + 8 * 86_400_000),
    );
    await later.expire(t.em());
    for (const person of [lee!, kim!])
      expect((await t.em().findOneOrFail(User, person.id)).status).toBe('expired');

    await resend('UADMIN', lee!.id, 'lee@outside.test');
    const sent = await nextMail('lee@outside.test', 1);
    expect(sent.mail.text).toContain(MESSAGE);
    expect(sent.page).toContain(MESSAGE);

    // Mia is no admin: her Resend of an expired invitation asks an admin for the seat first.
    await resend('UMANAGER', kim!.id, 'kim@outside.test');
    const request = await eventually(() =>
      t.em().findOne(SeatRequest, { email: 'kim@outside.test', status: 'pending' }),
    );
    await t.roster.deps.seats.decide(t.em(), await t.account(), {
      requestId: request.id,
      actor: { slackUserId: 'UADMIN', isAdmin: true, surface: 'slack' },
      decision: 'approve',
    });
    const approved = await nextMail('kim@outside.test', 1);
    expect(approved.mail.text).toContain(MESSAGE);
    expect(approved.page).toContain(MESSAGE);
  });
});
