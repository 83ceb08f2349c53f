import { initORM, type ORM } from '../../../src/db/orm.ts';
import type { IAccount } from '../../../src/features/accounts/account.entity.ts';
import { ensureAccount } from '../../../src/features/accounts/account.service.ts';
import { AuditEvent } from '../../../src/features/audit/audit-event.entity.ts';
import { Invitation } from '../../../src/features/invites/invitation.entity.ts';
import { INVITE_JOBS } from '../../../src/features/invites/invitation.service.ts';
import { PEOPLE_CHANGES, PeopleChanges } from '../../../src/features/people/people.changes.ts';
import { type Role, User, type UserStatus } from '../../../src/features/people/user.entity.ts';
import { type Actor, SEAT_JOBS, SeatService } from '../../../src/features/seats/seat.service.ts';
import { JobQueue } from '../../../src/shared/jobs.ts';
import { createLogger } from '../../../src/shared/logger.ts';
import { createTestDatabase, type TestDatabase } from '../../support/database.ts';

let db: TestDatabase;
let orm: ORM;
let jobs: JobQueue;
let seats: SeatService;
let people: PeopleChanges;

const admin: Actor = { slackUserId: 'UADMIN', isAdmin: true, surface: 'slack' };
const requester: Actor = { slackUserId: 'UREQ', isAdmin: false, surface: 'slack' };

beforeAll(async () => {
  db = await createTestDatabase();
  orm = await initORM(db.url);
  jobs = await JobQueue.start(db.url, createLogger('silent'));
  for (const name of [SEAT_JOBS.postRequest, SEAT_JOBS.requestDecided, INVITE_JOBS.deliver]) {
    await jobs.define(name, async () => {});
  }
  seats = new SeatService(jobs);
  people = new PeopleChanges(seats, jobs);
  for (const kind of PEOPLE_CHANGES) seats.register(kind, people.seatFlow(kind));
});
afterAll(async () => {
  await jobs.stop();
  await orm.close(true);
  await db.drop();
});

let n = 0;
async function setup(limit: number): Promise<IAccount> {
  const em = orm.em.fork();
  const account = await ensureAccount(em, `T_PEOPLE_${++n}`);
  await em.getConnection().execute('update account set seat_limit = ? where id = ?', [limit, account.id]);
  return account;
}

async function user(account: IAccount, email: string, role: Role, status: UserStatus) {
  const em = orm.em.fork();
  const u = em.create(User, { account, email, role, status });
  await em.flush();
  return u.id;
}

const reload = (id: string) => orm.em.fork().findOneOrFail(User, id);
const usage = (account: IAccount) => seats.usage(orm.em.fork(), account);

describe('changes that need a seat', () => {
  it('unlocks an imported user for an admin, taking a seat, and can send the invitation', async () => {
    const account = await setup(1);
    const id = await user(account, 'locked@example.com', 'employee', 'locked');
    expect(await usage(account)).toMatchObject({ used: 0 });
    const result = await people.unlock(orm.em.fork(), account, admin, id, { sendInvitation: true });
    expect(result.status).toBe('done');
    expect((await reload(id)).status).toBe('invited');
    expect(await usage(account)).toMatchObject({ used: 1, free: 0 });
    expect(await orm.em.fork().count(Invitation, { user: id, status: 'pending' })).toBe(1);
  });

  it('refuses to unlock past the limit', async () => {
    const account = await setup(0);
    const id = await user(account, 'full@example.com', 'contractor', 'locked');
    await expect(people.unlock(orm.em.fork(), account, admin, id)).rejects.toThrow(
      /No paid seat is free \(0 of 0 used\)/,
    );
    expect((await reload(id)).status).toBe('locked');
  });

  it("turns a requester's reactivation into a request that an approval applies", async () => {
    const account = await setup(3);
    const id = await user(account, 'gone@example.com', 'employee', 'deactivated');
    const result = await people.reactivate(orm.em.fork(), account, requester, id);
    expect(result.status).toBe('requested');
    expect((await reload(id)).status).toBe('deactivated');
    const requestId = result.status === 'requested' ? result.request.id : '';
    const decided = await seats.decide(orm.em.fork(), account, {
      requestId,
      actor: admin,
      decision: 'approve',
    });
    expect(decided.outcome).toBe('approved');
    expect((await reload(id)).status).toBe('not_invited');
    expect(await usage(account)).toMatchObject({ used: 1 });
    const events = await orm.em.fork().find(AuditEvent, { account, action: 'user.reactivated' });
    expect(events).toHaveLength(1);
  });

  it('needs a seat to make an active client an employee, but not a locked one', async () => {
    const account = await setup(0);
    const active = await user(account, 'client@example.com', 'client', 'active');
    await expect(people.changeRole(orm.em.fork(), account, admin, active, 'employee')).rejects.toThrow(
      /No paid seat/,
    );
    expect((await reload(active)).role).toBe('client');
    const locked = await user(account, 'lockedclient@example.com', 'client', 'locked');
    const result = await people.changeRole(orm.em.fork(), account, admin, locked, 'employee');
    expect(result.status).toBe('done');
    expect((await reload(locked)).role).toBe('employee');
    expect(await usage(account)).toMatchObject({ used: 0 });
  });

  it('frees the seat when a paid user becomes a client', async () => {
    const account = await setup(1);
    const id = await user(account, 'paid@example.com', 'employee', 'active');
    expect(await usage(account)).toMatchObject({ used: 1 });
    await people.changeRole(orm.em.fork(), account, admin, id, 'client');
    expect(await usage(account)).toMatchObject({ used: 0, free: 1 });
    expect(await orm.em.fork().count(AuditEvent, { account, action: 'seat.freed' })).toBe(1);
  });

  it('refuses a requester a change that needs no seat: only one that needs a seat can be asked of an admin', async () => {
    const account = await setup(5);
    const paid = await user(account, 'demote.me@example.com', 'employee', 'active');
    const client = await user(account, 'client.gone@example.com', 'client', 'deactivated');
    await expect(people.changeRole(orm.em.fork(), account, requester, paid, 'client')).rejects.toMatchObject({
      code: 'not_admin',
    });
    await expect(people.reactivate(orm.em.fork(), account, requester, client)).rejects.toMatchObject({
      code: 'not_admin',
    });
    expect(await usage(account)).toMatchObject({ used: 1 });
    expect(
      await orm.em.fork().count(AuditEvent, { account, action: 'user.role_change_refused', actor: 'UREQ' }),
    ).toBe(1);
    expect(
      await orm.em.fork().count(AuditEvent, { account, action: 'user.reactivate_refused', actor: 'UREQ' }),
    ).toBe(1);
  });

  it('says what is wrong when the user is not in the state the change expects', async () => {
    const account = await setup(5);
    const id = await user(account, 'active@example.com', 'employee', 'active');
    await expect(people.unlock(orm.em.fork(), account, admin, id)).rejects.toThrow(
      'active@example.com is active, not locked.',
    );
  });
});
