import { Account } from '../../../src/features/accounts/account.entity.ts';
import { AuditEvent } from '../../../src/features/audit/audit-event.entity.ts';
import { User } from '../../../src/features/people/user.entity.ts';
import { SeatRequest } from '../../../src/features/seats/seat-request.entity.ts';
import { eventually, startTestApp, type TestApp } from '../../support/app.ts';
import { textOf } from '../../support/views.ts';

let t: TestApp;

beforeAll(async () => {
  t = await startTestApp({ seatLimit: 10 });
});
afterAll(() => t.stop());

const requester = { slackUserId: 'UMANAGER', isAdmin: false, surface: 'slack' as const };

/** A locked (imported) employee whose unlocking by a manager files a seat request. */
async function pendingRequest(email: string) {
  const em = t.em();
  const account = await t.account();
  const user = em.create(User, { account, email, role: 'employee', status: 'locked' });
  await em.flush();
  const result = await t.roster.deps.people.unlock(t.em(), account, requester, user.id);
  if (result.status !== 'requested') throw new Error('expected a seat request');
  return { requestId: result.request.id, userId: user.id };
}

/**
 * The copy of a request's message that the bot posted in an admin's DM. Dozens of requests to one admin's
 * DM take turns at about one message a second per channel (ten a second here), so this waits long enough.
 */
async function postedCopy(requestId: string, admin = 'UADMIN') {
  return eventually(
    () =>
      t.standin.messages.find(
        (m) =>
          m.method === 'chat.postMessage' &&
          m.channel === `D${admin}` &&
          JSON.stringify(m.blocks ?? []).includes(requestId),
      ),
    // 25 requests to two admins are 50 posts at Slack's pace for chat.postMessage (3 a second past a burst).
    60_000,
  );
}

describe('/seats', () => {
  it('shows seats used, the limit and pending requests', async () => {
    await t.setSeatLimit(10);
    const res = await t.slack.command('/seats', '', { user: 'UMEMBER' });
    expect(res.status).toBe(200);
    const reply = await t.standin.waitForResponse();
    expect(textOf(reply.body)).toMatch(/Paid seats:\* 0 of 10 used, 10 free/);
  });

  it('lets an admin set the limit and refuses a non-admin', async () => {
    await t.slack.command('/seats', '25', { user: 'UADMIN' });
    const ok = await t.standin.waitForResponse((r) => JSON.stringify(r.body).includes('limit is now 25'));
    expect(ok.body.text).toBe(':white_check_mark: The seat limit is now 25 (0 used, 25 free).');
    expect((await t.account()).seatLimit).toBe(25);

    await t.slack.command('/seats', '5', { user: 'UMEMBER' });
    await t.standin.waitForResponse((r) =>
      JSON.stringify(r.body).includes('Only admins can change the seat limit.'),
    );
    expect((await t.account()).seatLimit).toBe(25);
  });

  it('refuses a limit below the seats in use, with the reason', async () => {
    const em = t.em();
    const account = await t.account();
    em.create(User, { account, email: 'inuse1@example.com', role: 'employee', status: 'active' });
    em.create(User, { account, email: 'inuse2@example.com', role: 'contractor', status: 'invited' });
    await em.flush();
    await t.slack.command('/seats', '1', { user: 'UOWNER' });
    const reply = await t.standin.waitForResponse((r) => JSON.stringify(r.body).includes('cannot be 1'));
    expect(reply.body.text).toContain('2 paid seats are in use, so the limit cannot be 1.');
    expect((await t.account()).seatLimit).toBe(25);
  });

  it('explains its usage when it does not understand', async () => {
    await t.slack.command('/seats', 'lots please', { user: 'UADMIN' });
    const reply = await t.standin.waitForResponse((r) =>
      JSON.stringify(r.body).includes('did not understand'),
    );
    expect(reply.body.text).toContain('*`/seats 25`* sets the limit to 25 (admins).');
  });

  it('echoes what it did not understand as Slack sent it, escaped, and cut short', async () => {
    await t.slack.command('/seats', `a < b & ${'x'.repeat(500)}`, { user: 'UADMIN' });
    const reply = await t.standin.waitForResponse((r) =>
      JSON.stringify(r.body).includes('did not understand `/seats a &lt; b &amp; x'),
    );
    const echoed = reply.body.text.split('\n')[0];
    expect(echoed.length).toBeLessThan(240);
    expect(echoed).toMatch(/x…`\.$/);
  });
});

describe('seat requests in Slack', () => {
  beforeEach(() => t.setSeatLimit(10));

  it('posts a request to every admin with who asks, for whom, the role and the seats', async () => {
    const { requestId } = await pendingRequest('ana@example.com');
    for (const admin of ['UADMIN', 'UOWNER']) {
      const copy = await postedCopy(requestId, admin);
      const text = textOf(copy);
      expect(text).toContain('<@UMANAGER>');
      expect(text).toContain('ana@example.com');
      expect(text).toContain('Employee (paid seat)');
      expect(text).toMatch(/Seats:\* \d+ of 10 used/);
      expect(text).toContain('Approve');
      expect(text).toContain('Reject');
    }
    // Nobody else is asked.
    expect(
      t.standin.messages.filter((m) => m.channel === 'DUMEMBER' && JSON.stringify(m).includes(requestId)),
    ).toHaveLength(0);
  });

  it('lets only admins approve: anyone else is told so and nothing changes', async () => {
    const { requestId, userId } = await pendingRequest('bo@example.com');
    const copy = await postedCopy(requestId);
    await t.slack.clickButton(copy, { actionId: 'seat_approve' }, { user: 'UMEMBER' });
    const reply = await t.standin.waitForResponse(
      (r) => r.body.text === 'Only admins can approve seat requests.',
    );
    expect(reply.body.response_type).toBe('ephemeral');
    expect((await t.em().findOneOrFail(SeatRequest, requestId)).status).toBe('pending');
    expect((await t.em().findOneOrFail(User, userId)).status).toBe('locked');
  });

  it('approves once on a double click, a second admin and a Slack retry; updates every copy and tells the requester', async () => {
    const { requestId, userId } = await pendingRequest('cy@example.com');
    const adminCopy = await postedCopy(requestId, 'UADMIN');
    const ownerCopy = await postedCopy(requestId, 'UOWNER');
    const clicks = await Promise.all([
      t.slack.clickButton(adminCopy, { actionId: 'seat_approve' }, { user: 'UADMIN' }),
      t.slack.clickButton(adminCopy, { actionId: 'seat_approve' }, { user: 'UADMIN' }),
      t.slack.clickButton(ownerCopy, { actionId: 'seat_approve' }, { user: 'UOWNER' }),
    ]);
    await clicks[0]!.resend();
    expect(clicks.map((c) => c.status)).toEqual([200, 200, 200]);

    const request = await t.em().findOneOrFail(SeatRequest, requestId);
    expect(request.status).toBe('approved');
    expect(['UADMIN', 'UOWNER']).toContain(request.decidedBy);
    expect((await t.em().findOneOrFail(User, userId)).status).toBe('not_invited');
    expect(await t.em().count(AuditEvent, { action: 'seat_request.approved', subjectId: requestId })).toBe(1);

    for (const copy of [adminCopy, ownerCopy]) {
      await eventually(() =>
        t.standin.messages.find(
          (m) =>
            m.method === 'chat.update' &&
            m.ts === copy.ts &&
            textOf(m).includes(`Approved by <@${request.decidedBy}>`),
        ),
      );
    }
    const dm = await eventually(() =>
      t.standin.messages.find(
        (m) =>
          m.method === 'chat.postMessage' &&
          m.channel === 'DUMANAGER' &&
          String(m.text).includes('cy@example.com'),
      ),
    );
    expect(dm.text).toContain(
      `<@${request.decidedBy}> approved your request for a paid seat for cy@example.com`,
    );
    const answers = t.standin.responses.filter((r) => JSON.stringify(r.body).includes('cy@example.com'));
    expect(answers.some((r) => String(r.body.text).includes('already decided'))).toBe(true);
  });

  it('offers Approve and add a seat when none is free, and raises the limit by one', async () => {
    const { requestId, userId } = await pendingRequest('dee@example.com');
    const copy = await postedCopy(requestId);
    const { used } = await t.roster.deps.seats.usage(t.em(), await t.account());
    await t.setSeatLimit(used);

    await t.slack.clickButton(copy, { actionId: 'seat_approve' }, { user: 'UADMIN' });
    const reply = await t.standin.waitForResponse((r) =>
      String(r.body.text).includes('No paid seat is free'),
    );
    expect(reply.body.text).toContain(`Use *Approve and add a seat* to raise the limit to ${used + 1}`);
    expect((await t.em().findOneOrFail(SeatRequest, requestId)).status).toBe('pending');

    const refreshed = await eventually(() =>
      t.standin.messages.find(
        (m) => m.method === 'chat.update' && m.ts === copy.ts && textOf(m).includes('Approve and add a seat'),
      ),
    );
    expect(textOf(refreshed)).toContain('No paid seat is free');
    await t.slack.clickButton(
      { ...copy, blocks: refreshed.blocks },
      { actionId: 'seat_approve_add_seat' },
      { user: 'UADMIN' },
    );
    await eventually(async () => (await t.em().findOneOrFail(SeatRequest, requestId)).status === 'approved');
    expect((await t.account()).seatLimit).toBe(used + 1);
    expect((await t.em().findOneOrFail(User, userId)).status).toBe('not_invited');
  });

  it('rejects with a reason from the modal, and the requester gets the reason', async () => {
    const { requestId, userId } = await pendingRequest('eve@example.com');
    const copy = await postedCopy(requestId);
    await t.slack.clickButton(copy, { actionId: 'seat_reject' }, { user: 'UOWNER' });
    const view = t.standin.lastOpenedView();
    expect(view.callback_id).toBe('seat_reject_modal');
    const submitted = await t.slack.submitView(
      view,
      { reason: 'No budget this quarter' },
      { user: 'UOWNER' },
    );
    expect(submitted.status).toBe(200);
    const request = await t.em().findOneOrFail(SeatRequest, requestId);
    expect(request).toMatchObject({
      status: 'rejected',
      reason: 'No budget this quarter',
      decidedBy: 'UOWNER',
    });
    expect((await t.em().findOneOrFail(User, userId)).status).toBe('locked');
    const dm = await eventually(() =>
      t.standin.messages.find(
        (m) => m.channel === 'DUMANAGER' && String(m.text).includes('rejected your request'),
      ),
    );
    expect(dm.text).toContain('Reason: “No budget this quarter”');
  });

  it('expires requests nobody decided, updates the message and tells the requester', async () => {
    const { requestId } = await pendingRequest('fay@example.com');
    const copy = await postedCopy(requestId);
    await t
      .em()
      .getConnection()
      .execute(`update seat_request set expires_at = now() - interval '1 minute' where id = ?`, [requestId]);
    await t.roster.deps.seats.expire(t.em());
    expect((await t.em().findOneOrFail(SeatRequest, requestId)).status).toBe('expired');
    await eventually(() =>
      t.standin.messages.find(
        (m) => m.method === 'chat.update' && m.ts === copy.ts && textOf(m).includes('Expired'),
      ),
    );
    const dm = await eventually(() =>
      t.standin.messages.find(
        (m) =>
          m.channel === 'DUMANAGER' &&
          String(m.text).includes('fay@example.com') &&
          String(m.text).includes('expired'),
      ),
    );
    expect(dm.text).toContain('no admin decided within 14 days');
  });

  it('never passes the limit when admins approve through Slack while admins add people directly', async () => {
    const account = await t.account();
    const { used } = await t.roster.deps.seats.usage(t.em(), account);
    await t.setSeatLimit(used + 10);
    const requests = [];
    for (let i = 0; i < 25; i++) requests.push(await pendingRequest(`race${i}@example.com`));
    const copies = await Promise.all(requests.map((r) => postedCopy(r.requestId)));

    const clicks = copies.flatMap((copy) => [
      t.slack.clickButton(copy, { actionId: 'seat_approve' }, { user: 'UADMIN' }),
      t.slack.clickButton(copy, { actionId: 'seat_approve' }, { user: 'UOWNER' }),
    ]);
    const direct = Array.from({ length: 25 }, (_, i) =>
      t
        .em()
        .transactional((tx) =>
          t.roster.deps.seats.admit(
            tx,
            account,
            { slackUserId: 'UADMIN', isAdmin: true, surface: 'slack' },
            { kind: 'invite', email: `direct${i}@example.com`, role: 'employee', requestedBy: 'UADMIN' },
            async () =>
              tx.create(User, {
                account,
                email: `direct${i}@example.com`,
                role: 'employee',
                status: 'not_invited',
              }),
          ),
        )
        .then(
          () => 'added',
          (err: Error) => err.message,
        ),
    );
    const [clicked, added] = await Promise.all([Promise.all(clicks), Promise.all(direct)]);
    expect(clicked.every((c) => c.status === 200)).toBe(true);

    const after = await t.roster.deps.seats.usage(t.em(), account);
    expect(after).toEqual({ used: used + 10, limit: used + 10, free: 0 });
    const approved = await t
      .em()
      .count(SeatRequest, { id: { $in: requests.map((r) => r.requestId) }, status: 'approved' });
    const addedCount = added.filter((a) => a === 'added').length;
    expect(approved + addedCount).toBe(10);
    for (const refusal of added.filter((a) => a !== 'added')) expect(refusal).toMatch(/No paid seat is free/);
    // Each approval that found no seat said so to the admin who clicked.
    const noSeatAnswers = t.standin.responses.filter((r) =>
      String(r.body.text).includes('No paid seat is free'),
    );
    expect(noSeatAnswers.length).toBeGreaterThan(0);
  }, 90_000); // 25 requests posted to one approval channel at Slack's 1 message a second
});

describe('an approval racing a free addition of the same address', () => {
  it('closes the request as already a user, rather than failing on the address taken meanwhile', async () => {
    const email = 'held@acme.test';
    // Seats free, so the request offers its plain Approve.
    const { used } = await t.roster.deps.seats.usage(t.em(), await t.account());
    await t.em().nativeUpdate(Account, { id: (await t.account()).id }, { seatLimit: used + 5 });
    await t.slack.command('/invite', email, { user: 'UMANAGER' });
    await t.slack.submitView(t.standin.lastOpenedView(), {}, { user: 'UMANAGER' });
    const request = await eventually(() => t.em().findOne(SeatRequest, { email, status: 'pending' }));
    const copy = await postedCopy(request.id);
    const account = await t.account();
    // A client added at the address (a free role takes no seat lock), written but not yet committed when
    // the admin approves.
    let inserted!: () => void;
    const written = new Promise<void>((ok) => {
      inserted = ok;
    });
    const other = t.em().transactional(async (tx) => {
      tx.create(User, { account, email, role: 'client', status: 'not_invited', addedBy: 'UMEMBER' });
      await tx.flush();
      inserted();
      await new Promise((ok) => setTimeout(ok, 1500));
    });
    await written;
    const since = t.standin.responses.length;
    await t.slack.clickButton(copy, { actionId: 'seat_approve' }, { user: 'UADMIN' });
    await other;
    await eventually(() => t.standin.responses.length > since);
    const said = t.standin.responses
      .slice(since)
      .map((r) => textOf(r.body))
      .join('\n');
    expect(said).toContain(`${email} is already a user (not invited), so there is nothing to approve.`);
    expect(said).not.toMatch(/Something went wrong/);
    expect((await t.em().findOneOrFail(SeatRequest, request.id)).status).not.toBe('pending');
    expect(await t.em().count(User, { email })).toBe(1);
  });
});

describe('/seats with more requests waiting than it lists', () => {
  it('lists the oldest 20 with their buttons and says how many more wait', async () => {
    const em = t.em();
    const account = await t.account();
    const expiresAt = new Date(Date.now() + 86_400_000);
    for (let i = 0; i < 45; i++) {
      em.create(SeatRequest, {
        account,
        kind: 'invite',
        status: 'pending',
        email: `waiting${i}@example.com`,
        role: 'employee',
        requestedBy: 'UMANAGER',
        expiresAt,
      });
    }
    await em.flush();
    try {
      const waiting = await t.em().count(SeatRequest, { account, status: 'pending' });
      expect(waiting).toBeGreaterThan(20);
      const before = t.standin.responses.length;
      await t.slack.command('/seats', '', { user: 'UADMIN' });
      const [reply] = t.standin.responses.slice(before);
      const text = textOf(reply!.body);
      expect(text.match(/• \*/g)).toHaveLength(20);
      expect(JSON.stringify(reply!.body.blocks).match(/"seat_reject"/g)).toHaveLength(20);
      expect(text).toContain(
        `…and ${waiting - 20} more waiting (${waiting} in all; the oldest are shown first).`,
      );
    } finally {
      await t.em().nativeDelete(SeatRequest, { email: { $like: 'waiting%@example.com' } });
    }
  });
});

describe('people deactivated in Slack', () => {
  it('are deactivated in Roster and give their seat back, once however often Slack sends it', async () => {
    const em = t.em();
    const account = await t.account();
    // Max holds a seat of his own: the earlier tests may have used every seat there was.
    await em
      .getConnection()
      .execute('update account set seat_limit = seat_limit + 1 where id = ?', [account.id]);
    em.create(User, {
      account,
      email: 'max@acme.test',
      role: 'employee',
      status: 'active',
      slackUserId: 'UMEMBER',
    });
    await em.flush();
    const before = await t.roster.deps.seats.usage(t.em(), account);
    const event = {
      type: 'user_change',
      user: { id: 'UMEMBER', deleted: true, profile: { email: 'max@acme.test' } },
    };
    const first = await t.slack.event(event, { eventId: 'Ev_DEL_1' });
    await first.resend();
    expect(first.status).toBe(200);
    const user = await t.em().findOneOrFail(User, { account, slackUserId: 'UMEMBER' });
    expect(user.status).toBe('deactivated');
    expect(await t.roster.deps.seats.usage(t.em(), account)).toMatchObject({ used: before.used - 1 });
    expect(await t.em().count(AuditEvent, { action: 'user.deactivated', subjectId: user.id })).toBe(1);
  });
});

describe('the Reject form while an approval holds the request', () => {
  it('closes the Reject form at once while an approval of the same request waits for the seats', async () => {
    const { requestId } = await pendingRequest('gil@example.com');
    const copy = await postedCopy(requestId);
    await t.slack.clickButton(copy, { actionId: 'seat_reject' }, { user: 'UOWNER' });
    const view = t.standin.lastOpenedView();
    // An approval in progress holds the request while it waits for the account's seats, for 4 s.
    let locked!: () => void;
    const taken = new Promise<void>((r) => {
      locked = r;
    });
    const held = t.em().transactional(async (tx) => {
      await tx
        .getConnection()
        .execute(
          'select id from seat_request where id = ? for update',
          [requestId],
          'all',
          tx.getTransactionContext(),
        );
      locked();
      await new Promise((r) => setTimeout(r, 4000));
    });
    await taken;
    const submitted = await t.slack.submitView(view, { reason: 'Not now' }, { user: 'UOWNER' });
    expect(submitted.status).toBe(200);
    expect(submitted.json).toBeUndefined();
    await held;
    expect(await t.em().findOneOrFail(SeatRequest, requestId)).toMatchObject({
      status: 'rejected',
      reason: 'Not now',
    });
  });

  it('tells the admin by DM when the request they rejected was approved while the form closed', async () => {
    const { requestId } = await pendingRequest('hal@example.com');
    const copy = await postedCopy(requestId);
    await t.slack.clickButton(copy, { actionId: 'seat_reject' }, { user: 'UOWNER' });
    const view = t.standin.lastOpenedView();
    let locked!: () => void;
    const taken = new Promise<void>((r) => {
      locked = r;
    });
    // Another admin's approval holds the request, then approves it.
    const held = t.em().transactional(async (tx) => {
      const exec = (q: string) =>
        tx.getConnection().execute(q, [requestId], 'run', tx.getTransactionContext());
      await exec('select id from seat_request where id = ? for update');
      locked();
      await new Promise((r) => setTimeout(r, 500));
      await exec(
        `update seat_request set status = 'approved', decided_by = 'UADMIN', decided_at = now() where id = ?`,
      );
    });
    await taken;
    const submitted = await t.slack.submitView(view, { reason: 'Not now' }, { user: 'UOWNER' });
    expect(submitted.json).toBeUndefined();
    await held;
    const told = await t.standin.waitForMessage(
      (m) => m.channel === 'DUOWNER' && textOf(m).startsWith('Already decided.'),
    );
    expect(textOf(told)).toContain('UADMIN');
    expect((await t.em().findOneOrFail(SeatRequest, requestId)).status).toBe('approved');
  });
});
