import pg from 'pg';
import { initORM, type ORM } from '../../../src/db/orm.ts';
import type { IAccount } from '../../../src/features/accounts/account.entity.ts';
import { ensureAccount } from '../../../src/features/accounts/account.service.ts';
import { Invitation } from '../../../src/features/invites/invitation.entity.ts';
import { INVITE_JOBS } from '../../../src/features/invites/invitation.service.ts';
import { InviteService } from '../../../src/features/invites/invite.service.ts';
import { deactivateFromSlack } from '../../../src/features/people/people.service.ts';
import { User, type UserStatus } from '../../../src/features/people/user.entity.ts';
import { type Actor, SEAT_JOBS, SeatService } from '../../../src/features/seats/seat.service.ts';
import { DomainError } from '../../../src/shared/errors.ts';
import { JobQueue } from '../../../src/shared/jobs.ts';
import { createLogger } from '../../../src/shared/logger.ts';
import { createTestDatabase, type TestDatabase } from '../../support/database.ts';

/*
 * A resend reads the person and then marks them invited. These tests stop a resend between the two (a
 * transaction of the test's own holds the invitation table, so the resend waits to write its new
 * invitation), let a cancel or a deactivation run meanwhile, and then let the resend go on. Whatever
 * the order, the person must end up out of Roster, holding no seat.
 */

let db: TestDatabase;
let orm: ORM;
let jobs: JobQueue;
let seats: SeatService;
let invites: InviteService;
let blocker: pg.Client;

const admin: Actor = { slackUserId: 'UADMIN', isAdmin: true, surface: 'slack' };

beforeAll(async () => {
  db = await createTestDatabase();
  orm = await initORM(db.url);
  jobs = await JobQueue.start(db.url, createLogger('silent'));
  for (const name of [SEAT_JOBS.postRequest, SEAT_JOBS.requestDecided, INVITE_JOBS.deliver]) {
    await jobs.define(name, async () => {});
  }
  seats = new SeatService(jobs);
  invites = new InviteService(seats, jobs);
  blocker = new pg.Client({ connectionString: db.url });
  await blocker.connect();
});
afterAll(async () => {
  await blocker.end();
  await jobs.stop();
  await orm.close(true);
  await db.drop();
});

let n = 0;
async function personHoldingTheOnlySeat(status: UserStatus): Promise<{ account: IAccount; id: string }> {
  const em = orm.em.fork();
  const account = await ensureAccount(em, `T_RACE_${++n}`);
  await em.getConnection().execute('update account set seat_limit = 1 where id = ?', [account.id]);
  const user = em.create(User, {
    account,
    email: `ana${n}@example.com`,
    role: 'employee',
    status,
    slackUserId: `UANA${n}`,
  });
  await em.flush();
  return { account, id: user.id };
}

/** Resolves once `count` sessions of this database wait for a lock, or once `done()` holds. */
async function lockWaits(count: number, done: () => boolean = () => false): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline && !done()) {
    // The statistics are a snapshot per transaction, and the blocker is in one: take a fresh one.
    await blocker.query('select pg_stat_clear_snapshot()');
    const { rows } = await blocker.query(
      `select count(*)::int as n from pg_stat_activity
        where datname = current_database() and wait_event_type = 'Lock' and pid <> pg_backend_pid()`,
    );
    if (rows[0].n >= count) return;
    await new Promise((ok) => setTimeout(ok, 10));
  }
  if (done()) return;
  throw new Error(`fewer than ${count} sessions ever waited for a lock`);
}

const settle = <T>(p: Promise<T>) =>
  p.then(
    (value) => ({ ok: true as const, value }),
    (error: unknown) => ({ ok: false as const, error }),
  );

/** Runs `resend`, holds it before it writes, runs `other` and lets both finish. */
async function resendRacing(account: IAccount, id: string, other: () => Promise<unknown>) {
  await blocker.query('begin');
  await blocker.query('lock table invitation in share mode');
  try {
    const resend = settle(invites.resend(orm.em.fork(), account, admin, id));
    await lockWaits(1);
    let finished = false;
    const racing = settle(other()).finally(() => {
      finished = true;
    });
    // The other change either commits at once, or (when the resend holds the person) waits for it.
    await lockWaits(2, () => finished);
    await blocker.query('commit');
    return { resend: await resend, other: await racing };
  } catch (err) {
    await blocker.query('rollback');
    throw err;
  }
}

async function seatHolders(account: IAccount): Promise<number> {
  return (await seats.usage(orm.em.fork(), account)).used;
}

describe('a resend racing', () => {
  it('a cancel never gives the cancelled person their seat back', async () => {
    const { account, id } = await personHoldingTheOnlySeat('not_invited');
    const { other } = await resendRacing(
      account,
      id,
      async () => (await invites.cancel(orm.em.fork(), account, admin, id)).user,
    );
    expect(other.ok).toBe(true);
    const user = await orm.em.fork().findOneOrFail(User, id);
    expect(user.status).toBe('deactivated');
    expect(await orm.em.fork().count(Invitation, { user: id, status: 'pending' })).toBe(0);
    expect(await seatHolders(account)).toBe(0);
  });

  it('a deactivation in Slack never gives the person their seat back', async () => {
    const { account, id } = await personHoldingTheOnlySeat('not_invited');
    const slackId = (await orm.em.fork().findOneOrFail(User, id)).slackUserId!;
    const { other } = await resendRacing(account, id, () =>
      deactivateFromSlack(orm.em.fork(), seats, account, slackId),
    );
    expect(other).toEqual({ ok: true, value: 1 });
    const user = await orm.em.fork().findOneOrFail(User, id);
    expect(user.status).toBe('deactivated');
    expect(await seatHolders(account)).toBe(0);
    // The invitation the resend queued cannot make them active again.
    const pending = await orm.em.fork().find(Invitation, { user: id, status: 'pending' });
    for (const invitation of pending) {
      expect(await invites.accept(orm.em.fork(), { invitationId: invitation.id }, 'web')).toBeNull();
    }
  });

  it('a resend that comes second is refused, and the person stays out', async () => {
    const { account, id } = await personHoldingTheOnlySeat('invited');
    await invites.cancel(orm.em.fork(), account, admin, id);
    await expect(invites.resend(orm.em.fork(), account, admin, id)).rejects.toThrow(
      /deactivated, so there is no invitation to send/,
    );
    expect((await orm.em.fork().findOneOrFail(User, id)).status).toBe('deactivated');
  });
});

describe('an invitation accepted while it is being cancelled', () => {
  it('ends accepted or cancelled, each side told which, never in an error', async () => {
    const { account, id } = await personHoldingTheOnlySeat('invited');
    const invitation = orm.em.fork().create(Invitation, {
      account,
      user: id,
      tokenHash: null,
      status: 'pending',
      expiresAt: new Date(Date.now() + 86_400_000),
      invitedBy: 'UADMIN',
    });
    await orm.em.fork().persist(invitation).flush();
    // The cancel holds the person and then waits to write the invitation; the acceptance takes the
    // invitation meanwhile and asks for the person.
    await blocker.query('begin');
    await blocker.query('lock table invitation in share mode');
    let cancel: Promise<Awaited<ReturnType<typeof settle>>>;
    let accept: Promise<Awaited<ReturnType<typeof settle>>>;
    try {
      cancel = settle(invites.cancel(orm.em.fork(), account, admin, id));
      await lockWaits(1);
      let accepted = false;
      accept = settle(invites.accept(orm.em.fork(), { invitationId: invitation.id }, 'web')).finally(() => {
        accepted = true;
      });
      await lockWaits(2, () => accepted);
    } finally {
      await blocker.query('commit');
    }
    const [c, a] = await Promise.all([cancel, accept]);
    // A deadlock between the two would reach one of them as an error instead of an answer.
    expect(a).toEqual(expect.objectContaining({ ok: true }));
    if (!c.ok) expect(c.error).toBeInstanceOf(DomainError);
    const user = await orm.em.fork().findOneOrFail(User, id);
    const now = await orm.em.fork().findOneOrFail(Invitation, invitation.id);
    if (user.status === 'active') {
      expect(now.status).toBe('accepted');
      expect(c.ok).toBe(false);
    } else {
      expect(user.status).toBe('deactivated');
      expect(now.status).toBe('cancelled');
      expect(a.ok && a.value).toBeNull();
    }
  });
});

describe('an invitation expiring while it is being cancelled', () => {
  it('is left to the next expiry run, and the cancel goes through', async () => {
    const { account, id } = await personHoldingTheOnlySeat('invited');
    const em = orm.em.fork();
    const invitation = em.create(Invitation, {
      account,
      user: id,
      tokenHash: null,
      status: 'pending',
      expiresAt: new Date(Date.now() - 60_000),
      invitedBy: 'UADMIN',
    });
    await em.flush();
    // The cancel holds the person and waits to record itself (before it writes the invitation); the
    // expiry run comes meanwhile.
    await blocker.query('begin');
    await blocker.query('lock table audit_event in share mode');
    let cancel: Promise<Awaited<ReturnType<typeof settle>>>;
    let expire: Promise<Awaited<ReturnType<typeof settle>>>;
    try {
      cancel = settle(invites.cancel(orm.em.fork(), account, admin, id));
      await lockWaits(1);
      let expired = false;
      expire = settle(invites.expire(orm.em.fork())).finally(() => {
        expired = true;
      });
      await lockWaits(2, () => expired);
    } finally {
      await blocker.query('commit');
    }
    const [c, e] = await Promise.all([cancel, expire]);
    expect(c).toEqual(expect.objectContaining({ ok: true }));
    expect(e).toEqual(expect.objectContaining({ ok: true }));
    expect((await orm.em.fork().findOneOrFail(User, id)).status).toBe('deactivated');
    expect((await orm.em.fork().findOneOrFail(Invitation, invitation.id)).status).toBe('cancelled');
    expect(await seatHolders(account)).toBe(0);
  });
});
