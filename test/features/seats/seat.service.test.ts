import { initORM, type ORM } from '../../../src/db/orm.ts';
import type { IAccount } from '../../../src/features/accounts/account.entity.ts';
import { ensureAccount } from '../../../src/features/accounts/account.service.ts';
import { AuditEvent } from '../../../src/features/audit/audit-event.entity.ts';
import { User } from '../../../src/features/people/user.entity.ts';
import { type Actor, SEAT_JOBS, SeatService } from '../../../src/features/seats/seat.service.ts';
import { SeatRequest } from '../../../src/features/seats/seat-request.entity.ts';
import { DomainError } from '../../../src/shared/errors.ts';
import { JobQueue } from '../../../src/shared/jobs.ts';
import { createLogger } from '../../../src/shared/logger.ts';
import { createTestDatabase, type TestDatabase } from '../../support/database.ts';

let db: TestDatabase;
let orm: ORM;
let jobs: JobQueue;
let seats: SeatService;
let clock = new Date();
const posted: string[] = [];
const decided: string[] = [];

const admin: Actor = { slackUserId: 'UADMIN', isAdmin: true, surface: 'slack' };
const admin2: Actor = { slackUserId: 'UADMIN2', isAdmin: true, surface: 'slack' };
const requester: Actor = { slackUserId: 'UREQ', isAdmin: false, surface: 'slack' };

beforeAll(async () => {
  db = await createTestDatabase();
  orm = await initORM(db.url);
  jobs = await JobQueue.start(db.url, createLogger('silent'));
  await jobs.define<{ requestId: string }>(SEAT_JOBS.postRequest, async (d) => void posted.push(d.requestId));
  await jobs.define<{ requestId: string }>(
    SEAT_JOBS.requestDecided,
    async (d) => void decided.push(d.requestId),
  );
  seats = new SeatService(jobs, () => clock);
  seats.register('invite', {
    async approve(tx, request, account) {
      tx.create(User, { account, email: request.email, role: request.role, status: 'invited' });
      return `invited ${request.email}`;
    },
  });
});
afterAll(async () => {
  await jobs.stop();
  await orm.close(true);
  await db.drop();
});

let n = 0;
async function freshAccount(limit: number): Promise<IAccount> {
  const em = orm.em.fork();
  const account = await ensureAccount(em, `T_SEATS_${++n}`);
  await em.getConnection().execute('update account set seat_limit = ? where id = ?', [limit, account.id]);
  return account;
}

function addPaid(account: IAccount, actor: Actor, email: string, opts: { addSeat?: boolean } = {}) {
  return orm.em
    .fork()
    .transactional((tx) =>
      seats.admit(
        tx,
        account,
        actor,
        { kind: 'invite', email, role: 'employee', requestedBy: actor.slackUserId, ...opts },
        async () => tx.create(User, { account, email, role: 'employee', status: 'invited' }),
      ),
    );
}

const usedSeats = (account: IAccount) => seats.usage(orm.em.fork(), account);

describe('seats', () => {
  it('never passes the limit when 50 paid additions and 20 approvals race', async () => {
    const account = await freshAccount(10);
    // Five requests wait for approval first; they will race the direct additions.
    const requests = [];
    for (let i = 0; i < 5; i++) {
      const r = await addPaid(account, requester, `waiting${i}@example.com`);
      expect(r.status).toBe('requested');
      if (r.status === 'requested') requests.push(r.request.id);
    }
    const additions = Array.from({ length: 50 }, (_, i) => addPaid(account, admin, `racer${i}@example.com`));
    const approvals = requests.flatMap((id) => [
      seats.decide(orm.em.fork(), account, { requestId: id, actor: admin, decision: 'approve' }),
      seats.decide(orm.em.fork(), account, { requestId: id, actor: admin2, decision: 'approve' }),
    ]);
    const [added, decisions] = await Promise.all([
      Promise.allSettled(additions),
      Promise.allSettled(approvals),
    ]);

    const usage = await usedSeats(account);
    expect(usage).toEqual({ used: 10, limit: 10, free: 0 });
    const users = await orm.em
      .fork()
      .count(User, { account, role: 'employee', status: { $in: ['invited'] } });
    expect(users).toBe(10);

    const addedOk = added.filter((r) => r.status === 'fulfilled').length;
    const refused = added.filter((r) => r.status === 'rejected');
    for (const r of refused) {
      expect((r as PromiseRejectedResult).reason).toBeInstanceOf(DomainError);
      expect((r as PromiseRejectedResult).reason.message).toMatch(/No paid seat is free \(10 of 10 used\)/);
    }
    const outcomes = decisions.map((d) => (d.status === 'fulfilled' ? d.value.outcome : 'error'));
    expect(outcomes).not.toContain('error');
    const approved = outcomes.filter((o) => o === 'approved').length;
    // Every request was decided at most once, and each took exactly one seat.
    expect(approved + addedOk).toBe(10);
    expect(outcomes.filter((o) => o === 'approved' || o === 'no_seat').length).toBeGreaterThanOrEqual(5);
    const stillPending = await orm.em.fork().count(SeatRequest, { account, status: 'pending' });
    expect(stillPending).toBe(5 - approved);
  });

  it('lets an admin add a seat when none is free, and records the change', async () => {
    const account = await freshAccount(1);
    await addPaid(account, admin, 'one@example.com');
    await expect(addPaid(account, admin, 'two@example.com')).rejects.toThrow(
      /No paid seat is free \(1 of 1 used\)/,
    );
    const res = await addPaid(account, admin, 'two@example.com', { addSeat: true });
    expect(res).toMatchObject({ status: 'added', seatAdded: true });
    expect(await usedSeats(account)).toEqual({ used: 2, limit: 2, free: 0 });
    const events = await orm.em.fork().find(AuditEvent, { account, action: 'seat_limit.changed' });
    expect(events.map((e) => e.data)).toEqual([{ from: 1, to: 2, why: 'added for two@example.com' }]);
  });

  it('lets clients in without a seat or approval', async () => {
    const account = await freshAccount(0);
    const res = await orm.em
      .fork()
      .transactional((tx) =>
        seats.admit(
          tx,
          account,
          requester,
          { kind: 'invite', email: 'c@example.com', role: 'client', requestedBy: 'UREQ' },
          async () => tx.create(User, { account, email: 'c@example.com', role: 'client', status: 'invited' }),
        ),
      );
    expect(res.status).toBe('added');
    expect(await usedSeats(account)).toEqual({ used: 0, limit: 0, free: 0 });
  });

  it("turns a requester's paid addition into one pending request and posts it", async () => {
    const account = await freshAccount(5);
    const res = await addPaid(account, requester, 'req@example.com');
    expect(res.status).toBe('requested');
    await expect(addPaid(account, requester, ' REQ@example.com ')).rejects.toThrow(
      /already waiting for an admin/,
    );
    expect(await usedSeats(account)).toEqual({ used: 0, limit: 5, free: 5 });
    const id = res.status === 'requested' ? res.request.id : '';
    await waitFor(() => posted.includes(id));
  });

  it('decides a request once, whoever clicks and however often', async () => {
    const account = await freshAccount(5);
    const res = await addPaid(account, requester, 'once@example.com');
    const id = res.status === 'requested' ? res.request.id : '';
    const results = await Promise.all(
      [admin, admin2, admin, admin2].map((actor) =>
        seats.decide(orm.em.fork(), account, { requestId: id, actor, decision: 'approve' }),
      ),
    );
    expect(results.filter((r) => r.outcome === 'approved')).toHaveLength(1);
    expect(results.filter((r) => r.outcome === 'already_decided')).toHaveLength(3);
    expect(await orm.em.fork().count(User, { account, email: 'once@example.com' })).toBe(1);
    expect(await usedSeats(account)).toEqual({ used: 1, limit: 5, free: 4 });
    await waitFor(() => decided.includes(id));
  });

  it('refuses a decision from someone who is not an admin, changing nothing', async () => {
    const account = await freshAccount(5);
    const res = await addPaid(account, requester, 'nope@example.com');
    const id = res.status === 'requested' ? res.request.id : '';
    await expect(
      seats.decide(orm.em.fork(), account, { requestId: id, actor: requester, decision: 'approve' }),
    ).rejects.toThrow('Only admins can approve seat requests.');
    const request = await orm.em.fork().findOneOrFail(SeatRequest, id);
    expect(request.status).toBe('pending');
  });

  it('says no seat is left on approval, and approves with an added seat when asked', async () => {
    const account = await freshAccount(0);
    const res = await addPaid(account, requester, 'full@example.com');
    const id = res.status === 'requested' ? res.request.id : '';
    const first = await seats.decide(orm.em.fork(), account, {
      requestId: id,
      actor: admin,
      decision: 'approve',
    });
    expect(first).toMatchObject({ outcome: 'no_seat', usage: { used: 0, limit: 0, free: 0 } });
    expect((await orm.em.fork().findOneOrFail(SeatRequest, id)).status).toBe('pending');
    const second = await seats.decide(orm.em.fork(), account, {
      requestId: id,
      actor: admin,
      decision: 'approve_add_seat',
    });
    expect(second).toMatchObject({
      outcome: 'approved',
      seatAdded: true,
      usage: { used: 1, limit: 1, free: 0 },
    });
  });

  it('keeps the reason of a rejection and adds no one', async () => {
    const account = await freshAccount(5);
    const res = await addPaid(account, requester, 'rej@example.com');
    const id = res.status === 'requested' ? res.request.id : '';
    const r = await seats.decide(orm.em.fork(), account, {
      requestId: id,
      actor: admin,
      decision: 'reject',
      reason: '  Hire freeze  ',
    });
    expect(r.outcome).toBe('rejected');
    const request = await orm.em.fork().findOneOrFail(SeatRequest, id);
    expect(request).toMatchObject({ status: 'rejected', reason: 'Hire freeze', decidedBy: 'UADMIN' });
    expect(await orm.em.fork().count(User, { account, email: 'rej@example.com' })).toBe(0);
  });

  it('expires requests after 14 days and tells the requester', async () => {
    const account = await freshAccount(5);
    const res = await addPaid(account, requester, 'old@example.com');
    const id = res.status === 'requested' ? res.request.id : '';
    clock = new Date(Date.now() + 13 * 86_400_000);
    expect(await seats.expire(orm.em.fork())).toBe(0);
    clock = new Date(Date.now() + 14 * 86_400_000 + 1000);
    expect(await seats.expire(orm.em.fork())).toBeGreaterThanOrEqual(1);
    expect((await orm.em.fork().findOneOrFail(SeatRequest, id)).status).toBe('expired');
    const late = await seats.decide(orm.em.fork(), account, {
      requestId: id,
      actor: admin,
      decision: 'approve',
    });
    expect(late.outcome).toBe('already_decided');
    await waitFor(() => decided.includes(id));
    clock = new Date();
  });

  it('refuses a limit below the seats in use, and sets one above', async () => {
    const account = await freshAccount(3);
    await addPaid(account, admin, 'a@example.com');
    await addPaid(account, admin, 'b@example.com');
    await expect(seats.setLimit(orm.em.fork(), account, 1, admin)).rejects.toThrow(
      '2 paid seats are in use, so the limit cannot be 1. Deactivate people or make them clients first.',
    );
    await expect(seats.setLimit(orm.em.fork(), account, 9, requester)).rejects.toThrow('Only admins');
    expect(await seats.setLimit(orm.em.fork(), account, 2, admin)).toEqual({ used: 2, limit: 2, free: 0 });
  });
});

async function waitFor(check: () => boolean, timeoutMs = 15000): Promise<void> {
  const start = Date.now();
  while (!check()) {
    if (Date.now() - start > timeoutMs) throw new Error('timed out waiting for a job');
    await new Promise((r) => setTimeout(r, 20));
  }
}
