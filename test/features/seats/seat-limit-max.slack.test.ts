import { query, sql } from '../../../src/db/sql.ts';
import { MAX_SEAT_LIMIT } from '../../../src/features/seats/seat.service.ts';
import { SeatRequest } from '../../../src/features/seats/seat-request.entity.ts';
import { eventually, startTestApp, type TestApp } from '../../support/app.ts';
import { textOf } from '../../support/views.ts';

/** An account at the highest seat limit Roster takes, every seat held. */
let t: TestApp;

beforeAll(async () => {
  t = await startTestApp({ seatLimit: MAX_SEAT_LIMIT });
  const account = await t.account();
  await query(
    t.em(),
    sql`insert into app_user (id, account_id, email, role, status)
        select gen_random_uuid(), ${account.id}, 'holder' || g || '@acme.test', 'employee', 'active'
        from generate_series(1, ${MAX_SEAT_LIMIT}) g`,
  );
}, 120_000);
afterAll(() => t.stop());

it('refuses Approve and add a seat past the highest limit, saying so, and keeps the limit', async () => {
  await t.slack.command('/invite', 'one.more@acme.test', { user: 'UMANAGER' });
  await t.slack.submitView(t.standin.lastOpenedView(), {}, { user: 'UMANAGER' });
  const request = await eventually(() => t.em().findOne(SeatRequest, { email: 'one.more@acme.test' }));
  const copy = await eventually(
    () =>
      t.standin.messages.find(
        (m) =>
          m.method === 'chat.postMessage' &&
          m.channel === 'DUADMIN' &&
          JSON.stringify(m.blocks ?? []).includes(request.id),
      ),
    30_000,
  );
  // The request offers no seat to add: the limit can go no higher.
  expect(textOf(copy)).toContain('and the limit is at its most. Free a seat, then approve.');
  expect(JSON.stringify(copy.blocks)).not.toContain('seat_approve_add_seat');
  const since = t.standin.responses.length;
  await t.slack.clickButton(copy, { actionId: 'seat_approve' }, { user: 'UADMIN' });
  await eventually(() => t.standin.responses.length > since);
  expect(textOf(t.standin.responses[since]!.body)).toContain(
    `The limit is at its most (${MAX_SEAT_LIMIT}): free a seat first.`,
  );
  // A forged or earlier copy's Approve and add a seat is refused the same way.
  await t.slack.blockAction({
    user: 'UADMIN',
    channel: 'DUADMIN',
    message: { ts: copy.ts, text: 'x', blocks: [] },
    actions: [{ type: 'button', action_id: 'seat_approve_add_seat', value: request.id }],
  });
  await eventually(() => t.standin.responses.length > since + 1);
  expect(textOf(t.standin.responses[since + 1]!.body)).toContain(
    `the seat limit cannot go above ${MAX_SEAT_LIMIT}, so one.more@acme.test was not added. Free a seat first.`,
  );
  expect((await t.account()).seatLimit).toBe(MAX_SEAT_LIMIT);
  expect((await t.em().findOneOrFail(SeatRequest, request.id)).status).toBe('pending');
});
