import type { IAccount } from '../src/features/accounts/account.entity.ts';
import { Contact } from '../src/features/contacts/contact.entity.ts';
import type { Deps } from '../src/features/feature.ts';
import { User } from '../src/features/people/user.entity.ts';
import type { Actor } from '../src/features/seats/seat.service.ts';
import { SEAT_REQUEST_KINDS, SeatRequest } from '../src/features/seats/seat-request.entity.ts';
import { KINDS_WITHOUT_FLOW } from '../src/services.ts';
import { startTestApp, type TestApp } from './support/app.ts';

/*
 * The services the running app uses come from one composition root, which registers what approving
 * each kind of seat request does. Each kind a person can file is filed here through its own service
 * and approved by an admin through the seat service, as the Approve button does.
 */

let t: TestApp;
let deps: Deps;
let account: IAccount;
const admin: Actor = { slackUserId: 'UADMIN', isAdmin: true, surface: 'slack' };
const requester: Actor = { slackUserId: 'UMEMBER', isAdmin: false, surface: 'slack' };

beforeAll(async () => {
  t = await startTestApp({ seatLimit: 0 });
  deps = t.roster.deps;
  account = await t.account();
});
afterAll(() => t.stop());

async function approveTheRequestFor(email: string) {
  const request = await t.em().findOneOrFail(SeatRequest, { account, email, status: 'pending' });
  const result = await deps.seats.decide(t.em(), account, {
    requestId: request.id,
    actor: admin,
    decision: 'approve_add_seat',
  });
  expect(result).toMatchObject({ outcome: 'approved', seatAdded: true });
  return result;
}

async function userStatus(email: string) {
  return (await t.em().findOneOrFail(User, { account, email })).status;
}

async function existingUser(
  email: string,
  role: 'employee' | 'client',
  status: 'locked' | 'active' | 'deactivated',
) {
  const em = t.em();
  const user = em.create(User, { account, email, role, status });
  await em.flush();
  return user.id;
}

describe('the services built by the composition root', () => {
  it('answer every kind of seat request that can be filed', () => {
    for (const kind of SEAT_REQUEST_KINDS) {
      if (!KINDS_WITHOUT_FLOW.includes(kind))
        expect({ kind, flow: Boolean(deps.seats.flow(kind)) }).toEqual({ kind, flow: true });
    }
  });

  it('approve an invitation', async () => {
    const [outcome] = await deps.invites.invite(t.em(), account, requester, {
      emails: ['invitee@acme.test'],
      role: 'employee',
      sendNow: false,
    });
    expect(outcome).toMatchObject({ result: 'requested' });
    await approveTheRequestFor('invitee@acme.test');
    expect(await userStatus('invitee@acme.test')).toBe('not_invited');
  });

  it('approve converting a contact', async () => {
    const em = t.em();
    const contact = em.create(Contact, { account, name: 'Cora Contact', email: 'cora@acme.test' });
    await em.flush();
    const result = await deps.contacts.convert(t.em(), account, requester, contact.id, {
      role: 'contractor',
      sendNow: false,
    });
    expect(result).toEqual({ status: 'requested', email: 'cora@acme.test' });
    await approveTheRequestFor('cora@acme.test');
    expect(await userStatus('cora@acme.test')).toBe('not_invited');
  });

  it('approve a join through a link', async () => {
    const link = await deps.joinLinks.create(
      t.em(),
      account,
      admin,
      { role: 'employee', expiryDays: 7, maxUses: null, allowedDomains: [], channelId: 'C0GENERAL' },
      async () => ({ channel: 'C0GENERAL', ts: '1.0' }),
    );
    const joined = await deps.joinLinks.join(
      t.em(),
      link.id,
      { email: 'joiner@acme.test', name: 'Jo' },
      'web',
    );
    expect(joined).toEqual({ status: 'requested', reason: 'no_seat' });
    await approveTheRequestFor('joiner@acme.test');
    expect(await userStatus('joiner@acme.test')).toBe('active');
  });

  it.each([
    ['unlock', 'locked@acme.test', 'employee', 'locked'],
    ['reactivate', 'back@acme.test', 'employee', 'deactivated'],
    ['role_change', 'client@acme.test', 'client', 'active'],
  ] as const)('approve a person change: %s', async (kind, email, role, status) => {
    const id = await existingUser(email, role, status);
    const result =
      kind === 'unlock'
        ? await deps.people.unlock(t.em(), account, requester, id)
        : kind === 'reactivate'
          ? await deps.people.reactivate(t.em(), account, requester, id)
          : await deps.people.changeRole(t.em(), account, requester, id, 'employee');
    expect(result.status).toBe('requested');
    await approveTheRequestFor(email);
    const user = await t.em().findOneOrFail(User, id);
    expect([user.role, user.status]).toEqual(
      kind === 'role_change' ? ['employee', 'active'] : ['employee', 'not_invited'],
    );
  });
});
