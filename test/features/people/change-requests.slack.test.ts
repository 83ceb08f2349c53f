import { ref } from '@mikro-orm/core';
import { Account, PermissionSet } from '../../../src/features/accounts/account.entity.ts';
import { User } from '../../../src/features/people/user.entity.ts';
import { SeatRequest } from '../../../src/features/seats/seat-request.entity.ts';
import { SEAT_LIMIT_CONSTRAINT } from '../../../src/shared/errors.ts';
import { afterAck } from '../../../src/slack/notify.ts';
import { eventually, startTestApp, type TestApp } from '../../support/app.ts';
import { textOf } from '../../support/views.ts';
import { openCard, personMaker } from './support.ts';

// Requests for a change to a person (unlock, reactivate) as admins read them, and as an approval finds the
// person: what they would get back is said, and a person changed since is not given a seat.

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp({ seatLimit: 10 });
});
afterAll(() => t.stop());

const person = personMaker(() => t, { first: 'Req', last: 'Req', domain: 'acme.test' });
const card = (user: string, email: string) => openCard(t, user, email);
async function ask(user: string, email: string, button: string) {
  await t.slack.clickButton((await card(user, email)).body, button, { user });
  const view = t.standin.lastOpenedView();
  expect((await t.slack.submitView(view, {}, { user })).status).toBe(200);
  return eventually(() => t.em().findOne(SeatRequest, { email, status: 'pending' }));
}
const approve = async (requestId: string, actionId = 'seat_approve') => {
  const before = t.standin.responses.length;
  await t.slack.blockAction({
    user: 'UOWNER',
    actions: [{ type: 'button', action_id: actionId, block_id: 'b', value: requestId }],
  });
  return textOf((await eventually(() => t.standin.responses.slice(before).at(-1))).body);
};

it('says in bold on the request that reactivating someone brings back an admin permission set', async () => {
  const account = await t.account();
  const adminSet = await t.em().findOneOrFail(PermissionSet, { account: account.id, isAdmin: true });
  // A former Roster admin, deactivated: no longer an admin, and asking to be brought back.
  const me = await person('deactivated', 'employee', {
    slackUserId: 'UMEMBER',
    email: 'former.admin@acme.test',
    permissionSet: ref(adminSet),
  });
  expect(await t.roster.deps.admins.isAdmin(t.em(), account, 'UMEMBER')).toBe(false);
  const request = await ask('UMEMBER', me.email, 'Ask an admin to reactivate');
  const copy = await eventually(() =>
    t.standin.messages.find(
      (m) => m.channel === 'DUADMIN' && JSON.stringify(m.blocks ?? []).includes(request.id),
    ),
  );
  expect(textOf(copy)).toContain(
    `:warning: *as ${adminSet.name}: they will be able to approve seats and change the limit*`,
  );
});

it('closes an unlock request whose person an admin made a client since, taking and adding no seat', async () => {
  const user = await person('locked', 'employee');
  const request = await ask('UMANAGER', user.email, 'Ask an admin to unlock');
  const em = t.em();
  (await em.findOneOrFail(User, user.id)).role = 'client';
  await em.flush();
  const account = await t.account();
  const used = (await t.roster.deps.seats.usage(t.em(), account)).used;
  await t.setSeatLimit(used);
  const answer = await approve(request.id, 'seat_approve_add_seat');
  expect(answer).toContain('is a client now, no longer an employee as when the request was made');
  expect((await t.em().findOneOrFail(SeatRequest, request.id)).status).toBe('rejected');
  expect((await t.em().findOneOrFail(Account, account.id)).seatLimit).toBe(used);
  expect(await t.em().findOneOrFail(User, user.id)).toMatchObject({ status: 'locked', role: 'client' });
  await t.setSeatLimit(10);
});

it('closes a reactivate request whose address the allowed domains left out since, instead of leaving it pending', async () => {
  const account = await t.account();
  await t.em().nativeUpdate(Account, { id: account.id }, { allowedEmailDomains: [] });
  const user = await person('deactivated', 'employee', { email: 'someone@other.test' });
  const request = await ask('UMANAGER', user.email, 'Ask an admin to reactivate');
  await t.em().nativeUpdate(Account, { id: account.id }, { allowedEmailDomains: ['acme.test'] });
  try {
    const answer = await approve(request.id);
    expect(answer).toContain('other.test');
    expect((await t.em().findOneOrFail(SeatRequest, request.id)).status).toBe('rejected');
    expect((await t.em().findOneOrFail(User, user.id)).status).toBe('deactivated');
  } finally {
    await t.em().nativeUpdate(Account, { id: account.id }, { allowedEmailDomains: [] });
  }
});

it("tells a form's submitter that no seat is free when the database's seat check refuses the change", async () => {
  // What the commit raises when the kept count ran past the limit behind the seat service's back.
  const refusedByDatabase = Object.assign(
    new Error('No paid seat is free: 12 paid seats would be in use, over the limit of 10.'),
    { constraint: SEAT_LIMIT_CONSTRAINT },
  );
  const before = t.standin.messages.length;
  await afterAck(
    t.roster.deps,
    t.roster.deps.slack,
    'UADMIN',
    async () => {
      throw refusedByDatabase;
    },
    (message) => `:no_entry_sign: ${message}`,
  );
  const told = await eventually(() => t.standin.messages.slice(before).find((m) => m.channel === 'DUADMIN'));
  expect(textOf(told)).toBe(
    ':no_entry_sign: No paid seat is free, so that change was not made. An admin can raise the limit with `/seats N`, or free a seat.',
  );
});
