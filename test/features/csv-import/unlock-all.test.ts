import pg from 'pg';
import { query, sql } from '../../../src/db/sql.ts';
import { unlockedSince } from '../../../src/features/people/people.changes.ts';
import { SeatRequest } from '../../../src/features/seats/seat-request.entity.ts';
import { HandedBack } from '../../../src/shared/jobs.ts';
import { startTestApp, type TestApp } from '../../support/app.ts';

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp({ seatLimit: 1000 });
});
afterAll(() => t.stop());

const admin = { slackUserId: 'UADMIN', isAdmin: true, surface: 'slack' as const };
let imports = 0;

/** `count` people an import created locked, in file order `prefix`1, `prefix`2, …; returns its id. */
async function importedLocked(prefix: string, count: number, role = 'client'): Promise<string> {
  const account = await t.account();
  const importId = `00000000-0000-4000-8000-${String(++imports).padStart(12, '0')}`;
  await query(
    t.em(),
    sql`with u as (
          insert into app_user (id, account_id, email, role, status)
          select gen_random_uuid(), ${account.id}, ${prefix} || g || '@acme.test', ${role}, 'locked'
          from generate_series(1, ${count}) g returning id, email)
        insert into audit_event (account_id, actor, action, subject_type, subject_id, surface, data)
        select ${account.id}, 'UADMIN', 'user.imported', 'user', u.id::text, 'slack',
          jsonb_build_object('email', u.email, 'importId', ${importId}::text)
        from u order by split_part(substr(u.email, ${prefix.length + 1}), '@', 1)::int`,
  );
  return importId;
}

const statusOf = async (email: string) =>
  (await query<{ status: string }>(t.em(), sql`select status from app_user where email = ${email}`))[0]
    ?.status;

describe('Unlock and invite all', () => {
  it('unlocks someone who was being changed by someone else while the first hundred were written', async () => {
    const importId = await importedLocked('held', 250);
    // An admin saves held1's card at the moment the run starts, and is done once the first hundred are.
    const other = new pg.Client({ connectionString: t.db.url });
    await other.connect();
    let released: Promise<unknown> | undefined;
    try {
      await other.query('begin');
      await other.query(`update app_user set title = 'Buyer' where email = 'held1@acme.test'`);
      const result = await t.roster.deps.people.unlockImported(t.em(), await t.account(), admin, importId, {
        progress: () => {
          released ??= other.query('commit');
        },
      });
      expect(result).toMatchObject({ invited: 250, left: 0 });
    } finally {
      await released;
      await other.end();
    }
    expect(await statusOf('held1@acme.test')).toBe('invited');
  });

  it('closes a request to unlock someone it unlocked, as their card does, and tells why', async () => {
    const importId = await importedLocked('asked', 1, 'employee');
    const account = await t.account();
    const [user] = await query<{ id: string }>(
      t.em(),
      sql`select id from app_user where email = 'asked1@acme.test'`,
    );
    const member = { slackUserId: 'UMEMBER', isAdmin: false, surface: 'slack' as const };
    const asked = await t.roster.deps.people.unlock(t.em(), account, member, user!.id, {
      sendInvitation: true,
    });
    expect(asked.status).toBe('requested');
    await t.roster.deps.people.unlockImported(t.em(), account, admin, importId);
    expect(await statusOf('asked1@acme.test')).toBe('invited');
    const requests = await t.em().find(SeatRequest, { user: user!.id });
    expect(requests.map((r) => [r.status, r.decidedBy, r.payload.closedBecause])).toEqual([
      ['approved', 'UADMIN', 'done'],
    ]);
    expect(requests[0]?.payload.outcome).toContain('Unlock and invite all');
  });

  it('counts what it did before a stop once it is taken up again', async () => {
    const importId = await importedLocked('stopped', 300);
    const account = await t.account();
    const [{ since }] = (await query<{ since: Date }>(t.em(), sql`select now() as since`)) as [
      { since: Date },
    ];
    const stop = new AbortController();
    // Roster stops after the first hundred: the job is handed back and runs again after the restart.
    await expect(
      t.roster.deps.people.unlockImported(t.em(), account, admin, importId, {
        signal: stop.signal,
        progress: () => stop.abort(),
      }),
    ).rejects.toBeInstanceOf(HandedBack);
    const before = await unlockedSince(t.em(), account, importId, 'UADMIN', since);
    expect(before).toBe(100);
    const again = await t.roster.deps.people.unlockImported(t.em(), account, admin, importId);
    expect(before + again.invited).toBe(300);
    // Another import's people, and what was unlocked before the click, are not counted.
    expect(await unlockedSince(t.em(), account, importId, 'UADMIN', new Date(Date.now() + 60_000))).toBe(0);
  });
});
