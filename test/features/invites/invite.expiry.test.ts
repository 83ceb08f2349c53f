import { query, sql } from '../../../src/db/sql.ts';
import { AuditEvent } from '../../../src/features/audit/audit-event.entity.ts';
import { Invitation } from '../../../src/features/invites/invitation.entity.ts';
import { INVITE_JOBS } from '../../../src/features/invites/invitation.service.ts';
import { InviteService } from '../../../src/features/invites/invite.service.ts';
import { User } from '../../../src/features/people/user.entity.ts';
import { SeatRequest } from '../../../src/features/seats/seat-request.entity.ts';
import { eventually, jobsDrained, startTestApp, type TestApp } from '../../support/app.ts';
import { buttonMessage, textOf } from '../../support/views.ts';

let t: TestApp;

beforeAll(async () => {
  t = await startTestApp({ seatLimit: 20 });
});
afterAll(() => t.stop());

const used = async () => (await t.roster.deps.seats.usage(t.em(), await t.account())).used;

/** The expiry as it runs in `days` days. */
const expireIn = (days: number) =>
  new InviteService(
    t.roster.deps.seats,
    t.roster.jobs,
    () => new Date(Date.now() + days * 86_400_000),
  ).expire(t.em());

async function invite(as: string, email: string) {
  await t.slack.command('/invite', `${email} employee`, { user: as });
  await t.slack.submitView(t.standin.lastOpenedView(), {}, { user: as });
  const user = await eventually(() => t.em().findOne(User, { email }));
  // Delivery holds the invitation's row for a moment; the expiry skips rows in use and takes them next run.
  await eventually(async () => (await t.em().findOne(Invitation, { user: user.id }))?.deliveredAt);
  return user;
}

describe('invitations that expire', () => {
  it('frees the seat when the invitation expires, and only then', async () => {
    const user = await invite('UADMIN', 'late@acme.test');
    expect(user.status).toBe('invited');
    const before = await used();
    expect(await expireIn(6)).toBe(0);
    expect(await expireIn(8)).toBe(1);
    expect((await t.em().findOneOrFail(User, user.id)).status).toBe('expired');
    expect((await t.em().findOneOrFail(Invitation, { user: user.id })).status).toBe('expired');
    expect(await used()).toBe(before - 1);
    expect(await t.em().count(AuditEvent, { action: 'invitation.expired' })).toBe(1);
    expect(await t.em().count(AuditEvent, { action: 'seat.freed', data: { for: 'late@acme.test' } })).toBe(1);
    // Running again finds nothing left to expire.
    expect(await expireIn(8)).toBe(0);
  });

  it('runs on a schedule', async () => {
    const schedules = await t.roster.jobs.boss.getSchedules();
    expect(schedules.map((s: { name: string }) => s.name)).toContain(INVITE_JOBS.expire);
  });

  it("lists an expired invitation in /invite pending, and an admin's Resend takes a seat again", async () => {
    const user = await invite('UADMIN', 'again@acme.test');
    await expireIn(8);
    const before = await used();
    await t.slack.command('/invite', 'pending', { user: 'UADMIN' });
    const list = await t.standin.waitForResponse((r) => textOf(r.body).includes('again@acme.test'));
    expect(textOf(list.body)).toContain('the invitation expired and the seat was freed');
    await t.slack.clickButton(list.body, { actionId: 'invite_resend', value: user.id }, { user: 'UADMIN' });
    await t.standin.waitForResponse((r) =>
      textOf(r.body).includes('Invitation sent again to again@acme.test'),
    );
    expect((await t.em().findOneOrFail(User, user.id)).status).toBe('invited');
    expect(await used()).toBe(before + 1);
    await t.smtp.waitForMail(
      (m) => m.toText === 'again@acme.test' && String(m.subject).includes('invited you'),
    );
  });

  it('sends an expired invitation again once for a double click, saying so to the second', async () => {
    const user = await invite('UADMIN', 'twice@acme.test');
    await expireIn(8);
    await t.slack.command('/invite', 'pending', { user: 'UADMIN' });
    const list = await t.standin.waitForResponse((r) => textOf(r.body).includes('twice@acme.test'));
    const since = t.standin.responses.length;
    const click = () =>
      t.slack.clickButton(list.body, { actionId: 'invite_resend', value: user.id }, { user: 'UADMIN' });
    await Promise.all([click(), click()]);
    await eventually(() => t.standin.responses.length >= since + 2);
    const answers = t.standin.responses.slice(since).map((r) => textOf(r.body));
    expect(answers).toEqual(
      expect.arrayContaining([
        expect.stringContaining('Invitation sent again to twice@acme.test'),
        // Found under the person's lock, or (when the first had finished) before it: a repeat either way.
        expect.stringMatching(
          /^:envelope: (twice@acme\.test was invited again a moment ago, so nothing more was sent|An invitation to twice@acme\.test was queued a moment ago and is on its way, so it was not sent again)\.$/,
        ),
      ]),
    );
    expect(await t.em().count(Invitation, { user: user.id, status: 'pending' })).toBe(1);
  });

  it('says a Resend overtaken by a reactivation without an invitation as it is, not as a repeat', async () => {
    const user = await invite('UADMIN', 'overtaken@acme.test');
    await expireIn(8);
    await t.slack.command('/invite', 'pending', { user: 'UADMIN' });
    const list = await t.standin.waitForResponse((r) => textOf(r.body).includes('overtaken@acme.test'));
    const since = t.standin.responses.length;
    const account = await t.account();
    let card: Promise<unknown> = Promise.resolve();
    let clicked: Promise<unknown> = Promise.resolve();
    // The account's seats held a moment, so both admins' changes wait behind it, the card's first.
    await t
      .em()
      .fork()
      .transactional(async (tx) => {
        await query(tx, sql`select id from account where id = ${account.id} for no key update`);
        card = t.roster.deps.people.reactivate(
          t.em(),
          account,
          { slackUserId: 'UOWNER', isAdmin: true, surface: 'slack' },
          user.id,
          { sendInvitation: false, openedFor: 'expired' },
        );
        await new Promise((ok) => setTimeout(ok, 500));
        clicked = t.slack.clickButton(
          list.body,
          { actionId: 'invite_resend', value: user.id },
          { user: 'UADMIN' },
        );
        await new Promise((ok) => setTimeout(ok, 1000));
      });
    await card;
    await clicked;
    await eventually(() => t.standin.responses.length > since);
    expect(textOf(t.standin.responses[since]!.body)).toContain(
      'is not invited now, no longer expired: they were changed after',
    );
    expect(await t.em().count(Invitation, { user: user.id, status: 'pending' })).toBe(0);
  });

  it("shows a requester their expired client without a Resend that could only be refused: an admin's to send again", async () => {
    const user = await invite('UADMIN', 'expired.client@acme.test');
    await t.em().nativeUpdate(User, { id: user.id }, { addedBy: 'UMANAGER', role: 'client' });
    await expireIn(8);
    await t.slack.command('/invite', 'pending', { user: 'UMANAGER' });
    const list = await t.standin.waitForResponse((r) => textOf(r.body).includes('expired.client@acme.test'));
    expect(textOf(list.body)).toContain(
      'Client (free), the invitation expired; ask an admin to send it again',
    );
    expect(JSON.stringify(list.body.blocks)).not.toContain(`"value":"${user.id}"`);
    // An admin's list offers Resend, which sends a new one.
    await t.slack.command('/invite', 'pending', { user: 'UADMIN' });
    const theirs = await t.standin.waitForResponse(
      (r) => r !== list && textOf(r.body).includes('expired.client@acme.test'),
    );
    expect(textOf(theirs.body)).toContain('the invitation expired; Resend sends a new one');
    expect(JSON.stringify(theirs.body.blocks)).toContain(`"value":"${user.id}"`);
  });

  it("turns a requester's Resend of an expired invitation into a seat request", async () => {
    const user = await invite('UADMIN', 'requested@acme.test');
    await t.em().nativeUpdate(User, { id: user.id }, { addedBy: 'UMANAGER' });
    await expireIn(8);
    await t.slack.clickButton(
      {
        blocks: [
          {
            type: 'actions',
            elements: [
              {
                type: 'button',
                action_id: 'invite_resend',
                value: user.id,
                text: { type: 'plain_text', text: 'Resend' },
              },
            ],
          },
        ],
      },
      'Resend',
      { user: 'UMANAGER' },
    );
    await t.standin.waitForResponse((r) =>
      textOf(r.body).includes('an admin has been asked to approve a seat again'),
    );
    const request = await t
      .em()
      .findOneOrFail(SeatRequest, { email: 'requested@acme.test', status: 'pending' });
    expect(request.kind).toBe('reactivate');
    expect((await t.em().findOneOrFail(User, user.id)).status).toBe('expired');
  });

  it("refuses a member's Resend of an expired invitation someone else sent, asking no admin for anything", async () => {
    const user = await invite('UADMIN', 'notyours@acme.test');
    await expireIn(8);
    const before = t.standin.responses.length;
    await t.slack.clickButton(buttonMessage('invite_resend', user.id, 'Resend'), 'Resend', {
      user: 'UMEMBER',
    });
    const answer = await eventually(() => t.standin.responses.slice(before).find((r) => r.body.text));
    expect(textOf(answer.body)).toBe('Only the person who invited them or an admin can do that.');
    expect(await t.em().count(SeatRequest, { email: 'notyours@acme.test' })).toBe(0);
    expect((await t.em().findOneOrFail(User, user.id)).status).toBe('expired');
  });

  it('tells an admin whose Resend of an expired invitation finds no seat free how to go on', async () => {
    const user = await invite('UADMIN', 'noseat@acme.test');
    await expireIn(8);
    const limit = await used();
    await t.setSeatLimit(limit);
    try {
      await t.slack.command('/invite', 'pending', { user: 'UADMIN' });
      const list = await t.standin.waitForResponse((r) => textOf(r.body).includes('noseat@acme.test'));
      await t.slack.clickButton(list.body, { actionId: 'invite_resend', value: user.id }, { user: 'UADMIN' });
      const reply = await t.standin.waitForResponse((r) => textOf(r.body).includes('noseat@acme.test'));
      expect(textOf(reply.body)).not.toContain('was not added');
      expect(textOf(reply.body)).toContain('No paid seat is free');
      expect(textOf(reply.body)).toContain(`\`/seats ${limit + 1}\``);
      expect((await t.em().findOneOrFail(User, user.id)).status).toBe('expired');
    } finally {
      await t.setSeatLimit(20);
    }
  });
});

describe('an invitation whose delivery waited past its expiry', () => {
  it('never sends one whose link expired while its delivery waited: the inviter hears so, with Resend', async () => {
    const email = 'late.delivery@example.com';
    t.smtp.refusedAtData.set(email, 451);
    try {
      await t.slack.command('/invite', '', { user: 'UADMIN' });
      await t.slack.submitView(t.standin.lastOpenedView(), { emails: email }, { user: 'UADMIN' });
      const user = await eventually(() => t.em().findOne(User, { email }));
      await eventually(async () => (await t.em().findOne(Invitation, { user: user.id }))?.lastError);
      // Its expiry passes while the mail server still refuses for now, before the expiry job's next run.
      await t.em().nativeUpdate(Invitation, { user: user.id }, { expiresAt: new Date(Date.now() - 60_000) });
    } finally {
      t.smtp.refusedAtData.delete(email);
    }
    const told = await t.standin.waitForMessage(
      (m) => m.channel === 'DUADMIN' && textOf(m).includes(email) && textOf(m).includes('link expired'),
      30_000,
    );
    expect(textOf(told)).toContain('its link expired before Roster could deliver it');
    expect(JSON.stringify(told.blocks)).toContain('Resend');
    const invitation = await t.em().findOneOrFail(Invitation, { user: { email } }, { refresh: true });
    expect(invitation.deliveredAt).toBeNull();
    expect(invitation.deliveryFailedAt).not.toBeNull();
    expect(t.smtp.messages.some((m) => m.toText.includes(email))).toBe(false);
  }, 60_000);
});

describe('a large round of invitations expiring together', () => {
  it('all expire on one run of the scheduled job, a thousand per transaction', async () => {
    const account = await t.account();
    await t.setSeatLimit(5000);
    // Invitations of the tests above already due (one whose delivery waited past its expiry) expire too.
    const due = async () =>
      (
        await query<{ n: number }>(
          t.em(),
          sql`select count(*)::int as n from invitation i join app_user u on u.id = i.user_id
               where i.status = 'pending' and i.expires_at <= now() and u.status = 'invited' and u.role = 'employee'`,
        )
      )[0]!.n;
    const dueBefore = await due();
    try {
      await query(
        t.em(),
        sql`with u as (
              insert into app_user (id, account_id, email, role, status, added_by)
              select gen_random_uuid(), ${account.id}, 'round' || g || '@acme.test', 'employee', 'invited', 'UADMIN'
                from generate_series(1, 2500) g returning id)
            insert into invitation (id, account_id, user_id, token_hash, status, expires_at, delivered_at)
            select gen_random_uuid(), ${account.id}, u.id, encode(sha256(u.id::text::bytea), 'hex'), 'pending',
                   now() - interval '1 minute', now()
              from u`,
      );
      const before = await used();
      await t.roster.jobs.send(INVITE_JOBS.expire, {});
      await jobsDrained(t.em(), { queues: [INVITE_JOBS.expire] });
      const [left] = await query<{ n: number }>(
        t.em(),
        sql`select count(*)::int as n from invitation where status = 'pending' and expires_at <= now()`,
      );
      expect(left!.n).toBe(0);
      expect(await due()).toBe(0);
      expect(await t.em().count(User, { email: { $like: 'round%@acme.test' }, status: 'expired' })).toBe(
        2500,
      );
      expect(await used()).toBe(before - 2500 - dueBefore);
    } finally {
      await t.setSeatLimit(20);
    }
  }, 60_000);
});
