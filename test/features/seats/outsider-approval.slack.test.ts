import { randomUUID } from 'node:crypto';
import { query, sql } from '../../../src/db/sql.ts';
import { AuditEvent } from '../../../src/features/audit/audit-event.entity.ts';
import { User } from '../../../src/features/people/user.entity.ts';
import { SEAT_JOBS } from '../../../src/features/seats/seat.service.ts';
import { SeatRequest } from '../../../src/features/seats/seat-request.entity.ts';
import {
  DEFAULT_MEMBERS,
  eventually,
  jobsDrained,
  outsider,
  startTestApp,
  type TestApp,
} from '../../support/app.ts';
import { textOf } from '../../support/views.ts';

let t: TestApp;

beforeAll(async () => {
  t = await startTestApp({
    seatLimit: 10,
    members: [
      ...DEFAULT_MEMBERS,
      outsider('UEXT1', 'ezra', 'ezra@partner.example'),
      outsider('UEXT2', 'rhea', 'rhea@partner.example'),
    ],
  });
});
afterAll(() => t.stop());

/**
 * A pending seat request written as a version of Roster from before people of other organisations were
 * refused would have written it, its message posted to the admins as that version queued it.
 */
async function oldRequest(row: {
  kind: string;
  email: string;
  requestedBy: string;
  payload: Record<string, unknown>;
  userId?: string;
}) {
  const account = await t.account();
  const id = randomUUID();
  await query(
    t.em(),
    sql`insert into seat_request (id, account_id, kind, status, email, role, user_id, requested_by, payload, expires_at)
        values (${id}, ${account.id}, ${row.kind}, 'pending', ${row.email}, 'employee', ${row.userId ?? null},
          ${row.requestedBy}, ${JSON.stringify(row.payload)}::jsonb, now() + interval '10 days')`,
  );
  await t.roster.deps.jobs.send(SEAT_JOBS.postRequest, { requestId: id });
  const copy = await eventually(
    () =>
      t.standin.messages.find(
        (m) =>
          m.method === 'chat.postMessage' &&
          m.channel === 'DUADMIN' &&
          JSON.stringify(m.blocks ?? []).includes(id),
      ),
    30_000,
  );
  return { id, copy };
}

async function usedSeats() {
  return (await t.roster.deps.seats.usage(t.em(), await t.account())).used;
}

describe('approving a request filed before people of other organisations were refused', () => {
  it('refuses a join by someone of another organisation: closed, audited, no seat, the admin told why', async () => {
    const { id, copy } = await oldRequest({
      kind: 'join',
      email: 'ezra@partner.example',
      requestedBy: 'UEXT1',
      payload: { joinLinkId: randomUUID(), slackUserId: 'UEXT1', surface: 'slack' },
    });
    const before = await usedSeats();

    const res = await t.slack.clickButton(copy, { actionId: 'seat_approve' }, { user: 'UADMIN' });
    expect(res.status).toBe(200);
    const reply = await t.standin.waitForResponse((r) =>
      String(r.body.text).includes('ezra@partner.example'),
    );
    expect(reply.body.response_type).toBe('ephemeral');
    expect(reply.body.text).toBe(
      ':no_entry_sign: Not approved: the request for ezra@partner.example was made by <@UEXT1>, of another organisation (met through Slack Connect), and Roster admits only members of this workspace. The request is closed and no seat was taken.',
    );

    const request = await t.em().findOneOrFail(SeatRequest, id);
    expect(request.status).toBe('expired');
    expect(request.payload).toMatchObject({ closedBecause: 'outsider', outsiders: ['UEXT1'] });
    expect(await t.em().count(User, { email: 'ezra@partner.example' })).toBe(0);
    expect(await usedSeats()).toBe(before);
    const [event] = await t.em().find(AuditEvent, { action: 'seat_request.expired', subjectId: id });
    expect(event?.actor).toBe('UADMIN');
    expect(event?.data).toMatchObject({
      reason: 'another organisation (Slack Connect)',
      outsiders: ['UEXT1'],
    });

    // The admins' copy says so; nothing goes to the other organisation's person.
    await eventually(() =>
      t.standin.messages.find(
        (m) => m.method === 'chat.update' && m.ts === copy.ts && textOf(m).includes('another organisation'),
      ),
    );
    await jobsDrained(t.em());
    expect(t.standin.messagesTo('UEXT1')).toHaveLength(0);
    expect(t.smtp.messages.filter((m) => m.toText.includes('ezra@partner.example'))).toHaveLength(0);

    // A second click finds it decided, and still takes no seat.
    await t.slack.clickButton(copy, { actionId: 'seat_approve' }, { user: 'UOWNER' });
    await t.standin.waitForResponse((r) => String(r.body.text).includes('already decided'));
    expect(await usedSeats()).toBe(before);
  });

  it('refuses a member’s request for someone of another organisation and tells the member', async () => {
    const em = t.em();
    const account = await t.account();
    const user = em.create(User, {
      account,
      email: 'rhea@partner.example',
      role: 'employee',
      status: 'locked',
      slackUserId: 'UEXT2',
    });
    await em.flush();
    const { id, copy } = await oldRequest({
      kind: 'unlock',
      email: 'rhea@partner.example',
      requestedBy: 'UMANAGER',
      payload: {},
      userId: user.id,
    });
    const before = await usedSeats();

    await t.slack.clickButton(copy, { actionId: 'seat_approve' }, { user: 'UADMIN' });
    const reply = await t.standin.waitForResponse((r) =>
      String(r.body.text).includes('rhea@partner.example'),
    );
    expect(reply.body.text).toContain('is for <@UEXT2>, of another organisation (met through Slack Connect)');
    expect((await t.em().findOneOrFail(SeatRequest, id)).status).toBe('expired');
    expect((await t.em().findOneOrFail(User, user.id)).status).toBe('locked');
    expect(await usedSeats()).toBe(before);
    const dm = await eventually(() =>
      t.standin.messagesTo('UMANAGER').find((m) => String(m.text).includes('rhea@partner.example')),
    );
    expect(dm.text).toContain('was closed: it is for someone of another organisation');
  });
});
