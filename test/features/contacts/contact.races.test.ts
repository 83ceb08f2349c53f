import { AuditEvent } from '../../../src/features/audit/audit-event.entity.ts';
import { Contact } from '../../../src/features/contacts/contact.entity.ts';
import { User } from '../../../src/features/people/user.entity.ts';
import { SeatRequest } from '../../../src/features/seats/seat-request.entity.ts';
import { startTestApp, type TestApp } from '../../support/app.ts';

let t: TestApp;

beforeAll(async () => {
  t = await startTestApp({ seatLimit: 100 });
});
afterAll(() => t.stop());

const admin = { slackUserId: 'UADMIN', isAdmin: true, surface: 'slack' as const };
const owner = { slackUserId: 'UOWNER', isAdmin: true, surface: 'slack' as const };
const manager = { slackUserId: 'UMANAGER', isAdmin: false, surface: 'slack' as const };
const employee = { role: 'employee' as const, sendNow: false };

describe('converting contacts while seats change', () => {
  it('never deadlocks: a conversion, an approval of the same conversion and a new seat limit, all at once', async () => {
    const account = await t.account();
    const em = t.em();
    const contacts = Array.from({ length: 12 }, (_, i) =>
      em.create(Contact, { account, name: `Race Contact ${i}`, email: `race${i}@partner.test` }),
    );
    await em.flush();
    // A manager asked for each conversion; the requests wait for an admin.
    const requests: string[] = [];
    for (const c of contacts) {
      const asked = await t.roster.deps.contacts.convert(t.em(), account, manager, c.id, employee);
      expect(asked.status).toBe('requested');
      requests.push((await t.em().findOneOrFail(SeatRequest, { email: c.email!, status: 'pending' })).id);
    }

    // One admin converts each contact directly while another approves the manager's request for it, and
    // the seat limit changes in between: every path that takes the account's seats and touches a contact.
    const results = await Promise.allSettled(
      contacts.flatMap((c, i) => [
        t.roster.deps.contacts.convert(t.em(), account, admin, c.id, employee),
        t.roster.deps.seats.decide(t.em(), account, {
          requestId: requests[i]!,
          actor: owner,
          decision: 'approve',
        }),
        t.roster.deps.seats.setLimit(t.em(), account, 100 + i, owner),
      ]),
    );
    const failures = results.flatMap((r) => (r.status === 'rejected' ? [String(r.reason?.message)] : []));
    // Only a person's answer may fail ("already converted"); never the database.
    expect(failures.filter((m) => !/already converted/.test(m))).toEqual([]);

    for (const c of contacts) {
      const users = await t.em().find(User, { account, email: c.email! });
      expect(users).toHaveLength(1);
      const contact = await t.em().findOneOrFail(Contact, c.id);
      expect(contact.user?.id).toBe(users[0]!.id);
      expect(await t.em().count(AuditEvent, { action: 'contact.converted', subjectId: c.id })).toBe(1);
    }
    const usage = await t.roster.deps.seats.usage(t.em(), account);
    expect(usage.used).toBe(contacts.length);
  });
});

describe('converting a contact while someone invites its address', () => {
  it('never deadlocks: one adds the person, the other says they are already in Roster', async () => {
    const account = await t.account();
    const em = t.em();
    const contacts = Array.from({ length: 20 }, (_, i) =>
      em.create(Contact, { account, name: `Both Ways ${i}`, email: `both${i}@partner.test` }),
    );
    await em.flush();
    // A client is free: the invite takes no seat lock, and reaches the contact by its email alone.
    const results = await Promise.allSettled(
      contacts.flatMap((c) => [
        t.roster.deps.contacts.convert(t.em(), account, admin, c.id, employee),
        t.roster.deps.invites.invite(t.em(), account, owner, {
          emails: [c.email!],
          role: 'client',
          sendNow: false,
        }),
      ]),
    );
    const failures = results.flatMap((r) => (r.status === 'rejected' ? [String(r.reason?.message)] : []));
    expect(failures.filter((m) => !/already/.test(m))).toEqual([]);
    for (const c of contacts) {
      const users = await t.em().find(User, { account, email: c.email! });
      expect(users).toHaveLength(1);
      expect((await t.em().findOneOrFail(Contact, c.id)).user?.id).toBe(users[0]!.id);
    }
  }, 60_000);
});
