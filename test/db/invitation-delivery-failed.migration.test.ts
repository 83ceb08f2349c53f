import { initORM, type ORM } from '../../src/db/orm.ts';
import { query, sql } from '../../src/db/sql.ts';
import { Account } from '../../src/features/accounts/account.entity.ts';
import { User } from '../../src/features/people/user.entity.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';

const MIGRATION = 'Migration20261208060000_invitation_delivery_failed_at';

let db: TestDatabase;
let orm: ORM;

beforeAll(async () => {
  db = await createTestDatabase();
  orm = await initORM(db.url);
});
afterAll(async () => {
  await orm.close(true);
  await db.drop();
});

describe('upgrading a database with invitations Roster gave up delivering', () => {
  it('dates those its last attempt audited, and not one still tried however many attempts it counts', async () => {
    await orm.migrator.down({ migrations: [MIGRATION] });
    const em = orm.em.fork();
    const account = em.create(Account, { teamId: 'T0001', name: 'Acme', seatLimit: 10 });
    const person = (email: string) =>
      em.create(User, { account, email, role: 'employee', status: 'invited' });
    const gaveUp = person('gone@acme.test');
    const held = person('held@acme.test');
    const delivered = person('late@acme.test');
    await em.flush();
    // As the database was before the upgrade: no delivery_failed_at column.
    const invitation = async (user: { id: string }, attempts: number, deliveredAt: Date | null) => {
      const [row] = await query<{ id: string }>(
        em,
        sql`insert into invitation (id, account_id, user_id, status, expires_at, delivery_attempts, delivered_at, created_at, updated_at)
            values (gen_random_uuid(), ${account.id}, ${user.id}, 'pending', now() + interval '7 days', ${attempts},
              ${deliveredAt}, now(), now()) returning id`,
      );
      return row!.id;
    };
    const gone = await invitation(gaveUp, 31, null);
    // Slack's rate limits held it back 40 times: each counted an attempt, none used up a retry.
    const stillTried = await invitation(held, 40, null);
    const arrived = await invitation(delivered, 31, new Date());
    const failedAt = new Date('2026-11-30T10:00:00Z');
    for (const id of [gone, arrived]) {
      await query(
        em,
        sql`insert into audit_event (account_id, actor, action, subject_type, subject_id, surface, data, created_at)
            values (${account.id}, 'roster', 'invitation.delivery_failed', 'invitation', ${id}, 'job', '{}', ${failedAt})`,
      );
    }

    await orm.migrator.up({ migrations: [MIGRATION] });

    const rows = await query<{ id: string; failed_at: string | null }>(
      orm.em.fork(),
      sql`select id, to_char(delivery_failed_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS') as failed_at from invitation where account_id = ${account.id}`,
    );
    const failed = new Map(rows.map((r) => [r.id, r.failed_at]));
    expect(failed.get(gone)).toBe('2026-11-30T10:00:00');
    expect(failed.get(stillTried)).toBeNull();
    // Delivered after all (a Resend's delivery of the same row): not failed.
    expect(failed.get(arrived)).toBeNull();
  });
});
