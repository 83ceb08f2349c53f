import pg from 'pg';
import { AuditEvent } from '../../../src/features/audit/audit-event.entity.ts';
import { memberOf, type SlackUser } from '../../../src/features/directory/directory.service.ts';
import { deactivateFromSlack } from '../../../src/features/people/people.service.ts';
import { User } from '../../../src/features/people/user.entity.ts';
import { SeatRequest } from '../../../src/features/seats/seat-request.entity.ts';
import { eventually, jobsDrained, startTestApp, type TestApp } from '../../support/app.ts';
import { textOf } from '../../support/views.ts';
import { postLink } from '../join-links/support.ts';

// A person's life in Roster as an operator and a member meet it: joins, requests and seats around a
// deactivation.

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp({ seatLimit: 1000 });
});
afterAll(() => t.stop());

let people = 0;
/** A new workspace member, whom Roster does not know yet. */
function member(): { id: string; email: string } {
  const n = ++people;
  const id = `ULIFE${n}`;
  const email = `life${n}@acme.test`;
  t.standin.addMember({ id, name: `life${n}`, realName: `Lee Life${n}`, email });
  return { id, email };
}

const used = async () => (await t.roster.deps.seats.usage(t.em(), await t.account())).used;

async function withSeatsFull<T>(fn: () => Promise<T>): Promise<T> {
  await t.setSeatLimit(await used());
  try {
    return await fn();
  } finally {
    await t.setSeatLimit(1000);
  }
}

/** A member clicks Join on a new link while no seat is free; returns their request and the admin's copy. */
async function joinWaiting(person: { id: string; email: string }) {
  const { message } = await postLink(t);
  await withSeatsFull(() => t.slack.clickButton(message, 'Join', { user: person.id }));
  const request = await t.em().findOneOrFail(SeatRequest, { email: person.email, kind: 'join' });
  expect(request.status).toBe('pending');
  const asked = await t.standin.waitForMessage(
    (m) => m.channel === 'DUADMIN' && textOf(m).includes(`for ${person.email}`),
  );
  return { request, asked };
}

describe('a join waiting for a seat when Slack deactivates the joiner', () => {
  it("is closed when Slack says so: the admins' copies say there is nothing to approve", async () => {
    const person = member();
    const { request, asked } = await joinWaiting(person);
    t.standin.addMember({ ...t.standin.members.get(person.id)!, deleted: true });
    await t.slack.event({ type: 'user_change', user: t.standin.userOf(person.id) });
    await jobsDrained(t.em());
    const closed = await t.em().findOneOrFail(SeatRequest, request.id);
    expect(closed.status).toBe('expired');
    expect(closed.payload).toMatchObject({ closedBecause: 'deactivated' });
    await eventually(() =>
      t.standin.messages.some(
        (m) => m.method === 'chat.update' && m.ts === asked.ts && textOf(m).includes('nothing to approve'),
      ),
    );
    const before = await used();
    await t.slack.clickButton(asked, 'Approve', { user: 'UADMIN' }).catch(() => undefined);
    await jobsDrained(t.em());
    expect(await t.em().findOne(User, { email: person.email })).toBeNull();
    expect(await used()).toBe(before);
    // The person who left is sent nothing: no DM that Slack would refuse, no word of an expiry.
    expect(t.standin.messagesTo(`D${person.id}`).filter((m) => /request|place/i.test(textOf(m)))).toEqual([]);
  });

  it('cannot be approved even when its closing was missed: nobody gone from Slack gets a paid seat', async () => {
    const person = member();
    const { request, asked } = await joinWaiting(person);
    // The mirror learnt of the deletion, but closing the join did not happen (its job gave up).
    t.standin.addMember({ ...t.standin.members.get(person.id)!, deleted: true });
    const gone = memberOf(t.standin.userOf(person.id) as SlackUser)!;
    await t.roster.deps.directory.upsert(t.em(), await t.account(), [gone]);

    const before = await used();
    const approve = textOf(asked).includes('Approve and add a seat') ? 'Approve and add a seat' : 'Approve';
    await t.slack.clickButton(asked, approve, { user: 'UADMIN' });
    await jobsDrained(t.em());
    expect(await t.em().findOne(User, { email: person.email })).toBeNull();
    expect((await t.em().findOneOrFail(SeatRequest, request.id)).status).not.toBe('approved');
    expect(await used()).toBe(before);
    // The admin is told why.
    const said = [
      ...t.standin.responses.map((r) => textOf(r.body)),
      ...t.standin.messagesTo('DUADMIN').map(textOf),
    ];
    const answer = said.find((x) =>
      x.includes(`${person.email} was deactivated in Slack after asking to join`),
    );
    // The person who left is sent nothing, and the admin is not told otherwise.
    expect(answer).toMatch(/They have left Slack, so nobody was told\.$/);
    expect(answer).not.toMatch(/has been told/);
    expect(t.standin.messagesTo(`D${person.id}`).filter((m) => /request|place/i.test(textOf(m)))).toEqual([]);
  });
});

describe('a join closed when an admin approves it', () => {
  it('tells the joiner the reason it was closed: their address became a user meanwhile', async () => {
    const person = member();
    const { request, asked } = await joinWaiting(person);
    // An admin invites the same address directly while the join waits.
    const admin = { slackUserId: 'UADMIN', isAdmin: true, surface: 'slack' as const };
    const [outcome] = await t.roster.deps.invites.invite(t.em(), await t.account(), admin, {
      emails: [person.email],
      role: 'employee',
      sendNow: false,
    });
    expect(outcome?.result).toBe('added');
    const approve = textOf(asked).includes('Approve and add a seat') ? 'Approve and add a seat' : 'Approve';
    await t.slack.clickButton(asked, approve, { user: 'UADMIN' });
    await jobsDrained(t.em());
    expect((await t.em().findOneOrFail(SeatRequest, request.id)).status).toBe('rejected');
    const told = await eventually(() =>
      t.standin.messagesTo(`D${person.id}`).find((m) => textOf(m).includes('request to join was closed')),
    );
    expect(textOf(told)).toContain(
      `You are already in Acme (as ${person.email} or another address of yours), so your request to join was closed.`,
    );
    expect(textOf(told)).not.toContain('email domain');
  });
});

describe('a join an admin turned down', () => {
  it('asked again through the same link, goes to the admins again on the place it took, not a new one', async () => {
    const person = member();
    const { request } = await joinWaiting(person);
    const linkId = request.payload.joinLinkId as string;
    const uses = async () =>
      (await t.em().getConnection().execute(`select uses from join_link where id = ?`, [linkId]))[0]?.uses;
    expect(await uses()).toBe(1);
    const admin = { slackUserId: 'UADMIN', isAdmin: true, surface: 'slack' as const };
    const decided = await t.roster.deps.seats.decide(t.em(), await t.account(), {
      requestId: request.id,
      actor: admin,
      decision: 'reject',
    });
    expect(decided.outcome).toBe('rejected');
    const link = await t.standin.waitForMessage(
      (m) => m.method === 'chat.postMessage' && JSON.stringify(m.blocks ?? []).includes(linkId),
    );
    await withSeatsFull(() => t.slack.clickButton(link, 'Join', { user: person.id }));
    const again = await eventually(() =>
      t.em().findOne(SeatRequest, { email: person.email, kind: 'join', status: 'pending' }),
    );
    expect(again.id).not.toBe(request.id);
    expect(await uses()).toBe(1);
  });

  it('asked again while seats are free, still waits for an admin, who is told they turned it down before', async () => {
    const person = member();
    const { request } = await joinWaiting(person);
    const linkId = request.payload.joinLinkId as string;
    await t.roster.deps.seats.decide(t.em(), await t.account(), {
      requestId: request.id,
      actor: { slackUserId: 'UADMIN', isAdmin: true, surface: 'slack' },
      decision: 'reject',
      reason: 'Not one of ours',
    });
    const link = await t.standin.waitForMessage(
      (m) => m.method === 'chat.postMessage' && JSON.stringify(m.blocks ?? []).includes(linkId),
    );
    const free = await t.roster.deps.seats.usage(t.em(), await t.account());
    expect(free.free).toBeGreaterThan(0);
    const since = t.standin.responses.length;
    await t.slack.clickButton(link, 'Join', { user: person.id });
    const answer = t.standin.responses
      .slice(since)
      .map((r) => textOf(r.body))
      .join('\n');
    expect(answer).toContain('has been asked to approve your place');
    expect(await t.em().findOne(User, { email: person.email })).toBeNull();
    await eventually(() =>
      t.em().findOne(SeatRequest, { email: person.email, kind: 'join', status: 'pending' }),
    );
    const asked = await t.standin.waitForMessage(
      (m) =>
        m.channel === 'DUADMIN' &&
        textOf(m).includes(`for ${person.email}`) &&
        textOf(m).includes('ask again'),
    );
    expect(textOf(asked)).toContain('An admin turned down');
  });
});

describe('a join approved while Slack deactivates the joiner', () => {
  it('ends with the person deactivated, not active in a paid seat', async () => {
    const person = member();
    const { request } = await joinWaiting(person);
    const account = await t.account();
    const admin = { slackUserId: 'UADMIN', isAdmin: true, surface: 'slack' as const };
    const seatsBefore = await used();
    // The account's seats held a moment by someone else, so the approval waits with the request locked.
    const holder = new pg.Client({ connectionString: t.db.url });
    await holder.connect();
    const waiting = async () => {
      const { rows } = await holder.query(
        `select count(*)::int as n from pg_stat_activity where datname = current_database() and wait_event_type = 'Lock'`,
      );
      return rows[0].n as number;
    };
    try {
      await holder.query('begin');
      await holder.query('select id from account where id = $1 for no key update', [account.id]);
      const approving = t.roster.deps.seats.decide(t.em(), account, {
        requestId: request.id,
        actor: admin,
        decision: 'approve',
      });
      await eventually(async () => (await waiting()) >= 1);
      let settled = false;
      const deactivating = deactivateFromSlack(
        t.em(),
        t.roster.deps.seats,
        account,
        person.id,
        person.email,
        {
          asOf: new Date(),
        },
      ).finally(() => {
        settled = true;
      });
      await eventually(async () => settled || (await waiting()) >= 2);
      await holder.query('commit');
      expect((await approving).outcome).toBe('approved');
      await deactivating;
    } finally {
      await holder.end();
    }
    await jobsDrained(t.em());
    const user = await t.em().findOneOrFail(User, { email: person.email });
    expect(user.status).toBe('deactivated');
    expect(await used()).toBe(seatsBefore);
  });
});

describe('reactivating when no paid seat is free', () => {
  async function deactivatedPerson() {
    const em = t.em();
    const user = em.create(User, {
      account: await t.account(),
      email: `back${++people}@acme.test`,
      firstName: 'Bo',
      lastName: `Back${people}`,
      role: 'employee',
      status: 'deactivated',
      addedBy: 'UADMIN',
    });
    await em.flush();
    return user;
  }
  async function card(user: string, email: string) {
    const before = t.standin.responses.length;
    await t.slack.command('/people', email, { user });
    return eventually(() => t.standin.responses.slice(before).at(-1));
  }
  async function change(user: string, body: any, button: string, values: Record<string, any> = {}) {
    await t.slack.clickButton(body, button, { user });
    const view = t.standin.lastOpenedView();
    return { view, result: await t.slack.submitView(view, values, { user }) };
  }

  it('tells an admin no seat is free and adds one only when asked; a member asks the admins', async () => {
    const admins = await deactivatedPerson();
    const asked = await deactivatedPerson();
    await t.setSeatLimit(await used());
    try {
      const { view, result } = await change(
        'UADMIN',
        (await card('UADMIN', admins.email)).body,
        'Reactivate',
        {
          send_now: [],
        },
      );
      expect(result.json.errors.add_seat).toMatch(/No paid seat is free/);
      expect((await t.em().findOneOrFail(User, admins.id)).status).toBe('deactivated');
      await t.slack.submitView(view, { send_now: [], add_seat: ['add_seat'] }, { user: 'UADMIN' });
      expect((await t.em().findOneOrFail(User, admins.id)).status).toBe('not_invited');

      const before = t.standin.responses.length;
      await change('UMEMBER', (await card('UMEMBER', asked.email)).body, 'Ask an admin to reactivate', {
        send_now: [],
      });
      const request = await eventually(() =>
        t.em().findOne(SeatRequest, { email: asked.email, status: 'pending', kind: 'reactivate' }),
      );
      expect(request.requestedBy).toBe('UMEMBER');
      expect((await t.em().findOneOrFail(User, asked.id)).status).toBe('deactivated');
      const copy = await t.standin.waitForMessage(
        (m) => m.channel === 'DUADMIN' && textOf(m).includes(asked.email) && textOf(m).includes('Approve'),
      );
      // The member hears that the admins were asked.
      const told = [
        ...t.standin.responses.slice(before).map((r) => textOf(r.body)),
        ...t.standin.messagesTo('DUMEMBER').map(textOf),
      ];
      expect(told.some((x) => /asked|admin/i.test(x) && x.includes(asked.email))).toBe(true);
      // Still no seat: the admin is offered to add one.
      expect(textOf(copy)).toContain('Approve and add a seat');
    } finally {
      await t.setSeatLimit(1000);
    }
  });
});

describe('the last paid seat, wanted by every kind of change at once', () => {
  it('goes to exactly one of them, and the seats in use never pass the limit', async () => {
    const account = await t.account();
    const admin = { slackUserId: 'UADMIN', isAdmin: true, surface: 'slack' as const };
    const em = t.em();
    const make = (status: 'deactivated' | 'locked' | 'active', role: 'employee' | 'client') =>
      em.create(User, {
        account,
        email: `last${++people}@acme.test`,
        role,
        status,
        addedBy: 'UADMIN',
      });
    const gone = [make('deactivated', 'employee'), make('deactivated', 'employee')];
    const imported = make('locked', 'employee');
    const client = make('active', 'client');
    await em.flush();
    const joiners = [member(), member()];
    const { message } = await postLink(t);
    await t.setSeatLimit((await used()) + 1);
    try {
      const d = t.roster.deps;
      const settled = await Promise.allSettled([
        ...gone.map((u) => d.people.reactivate(t.em(), account, admin, u.id)),
        d.people.unlock(t.em(), account, admin, imported.id),
        d.people.changeRole(t.em(), account, admin, client.id, 'employee'),
        ...joiners.map((j) => t.slack.clickButton(message, 'Join', { user: j.id })),
      ]);
      await jobsDrained(t.em());
      const { used: inUse, limit } = await d.seats.usage(t.em(), account);
      expect(inUse).toBe(limit);
      const ids = [...gone, imported, client].map((u) => u.id);
      const rows = await t.em().find(User, { id: { $in: ids } });
      const seated = rows.filter(
        (u) => u.role !== 'client' && ['not_invited', 'invited', 'active'].includes(u.status),
      );
      const joined = await t.em().count(User, { email: { $in: joiners.map((j) => j.email) } });
      expect(seated.length + joined).toBe(1);
      // Every admin change that lost was refused for want of a seat, not failed otherwise.
      for (const s of settled.slice(0, 4)) {
        if (s.status === 'rejected') expect((s.reason as { code?: string }).code).toBe('no_seat');
      }
      // A join that lost waits for an admin.
      expect(
        await t.em().count(SeatRequest, { email: { $in: joiners.map((j) => j.email) }, status: 'pending' }),
      ).toBe(2 - joined);
    } finally {
      await t.setSeatLimit(1000);
    }
  });
});

describe('an admin deactivating someone while another approves their unlock', () => {
  it('ends with the person deactivated and their seat free, whichever commits first', async () => {
    const account = await t.account();
    const d = t.roster.deps;
    const admin = { slackUserId: 'UADMIN', isAdmin: true, surface: 'slack' as const };
    const requester = { slackUserId: 'UMEMBER', isAdmin: false, surface: 'slack' as const };
    const em = t.em();
    const users = [1, 2, 3, 4].map(() =>
      em.create(User, {
        account,
        email: `race${++people}@acme.test`,
        role: 'employee',
        status: 'locked',
        addedBy: 'UADMIN',
      }),
    );
    await em.flush();
    const requests: { id: string }[] = [];
    for (const u of users) {
      const asked = await d.people.unlock(t.em(), account, requester, u.id, { sendInvitation: true });
      if (asked.status !== 'requested') throw new Error(`the unlock of ${u.email} was not a request`);
      requests.push(asked.request);
    }
    await jobsDrained(t.em());
    const before = await used();
    await Promise.all(
      users.map((u, i) =>
        Promise.allSettled([
          d.seats.decide(t.em(), account, { requestId: requests[i]!.id, actor: admin, decision: 'approve' }),
          d.person.deactivate(t.em(), account, admin, u.id),
        ]).then((results) => {
          for (const r of results) if (r.status === 'rejected') throw r.reason;
        }),
      ),
    );
    await jobsDrained(t.em());
    for (const [i, u] of users.entries()) {
      expect((await t.em().findOneOrFail(User, u.id)).status).toBe('deactivated');
      expect((await t.em().findOneOrFail(SeatRequest, requests[i]!.id)).status).not.toBe('pending');
    }
    expect(await used()).toBe(before);
  });
});

describe('a join waiting for a seat whose address became a person since, now deactivated', () => {
  it('is closed when approved: no seat is taken and Approve and add a seat adds none', async () => {
    const person = member();
    const { request, asked } = await joinWaiting(person);
    const account = await t.account();
    const admin = { slackUserId: 'UADMIN', isAdmin: true, surface: 'slack' as const };
    // An admin invited the address directly meanwhile, then deactivated them.
    const em = t.em();
    const user = em.create(User, {
      account,
      email: person.email,
      role: 'employee',
      status: 'invited',
      addedBy: 'UADMIN',
    });
    await em.flush();
    await t.roster.deps.person.deactivate(t.em(), account, admin, user.id);
    const limit = await t.setSeatLimit(await used()).then(async () => (await t.account()).seatLimit);
    try {
      // With no seat free, the admin's choice is to approve and add one.
      const decided = await t.roster.deps.seats.decide(t.em(), account, {
        requestId: request.id,
        actor: admin,
        decision: 'approve_add_seat',
      });
      expect(decided.outcome).toBe('refused');
      await jobsDrained(t.em());
      await eventually(() =>
        t.standin.messages.some(
          (m) => m.method === 'chat.update' && m.ts === asked.ts && textOf(m).includes('already a user'),
        ),
      );
      expect((await t.account()).seatLimit).toBe(limit);
      const closed = await t.em().findOneOrFail(SeatRequest, request.id);
      expect(closed.status).toBe('rejected');
      expect(closed.reason).toContain('already a user (deactivated)');
      expect((await t.em().findOneOrFail(User, user.id)).status).toBe('deactivated');
      expect(await t.em().count(AuditEvent, { action: 'seat.taken', data: { for: person.email } })).toBe(0);
    } finally {
      await t.setSeatLimit(1000);
    }
  });
});
