import { initORM, type ORM } from '../../src/db/orm.ts';
import { query, sql } from '../../src/db/sql.ts';
import { Account } from '../../src/features/accounts/account.entity.ts';
import { DirectoryService } from '../../src/features/directory/directory.service.ts';
import { User } from '../../src/features/people/user.entity.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { mirroredMember } from '../support/directory.ts';

const MIGRATION = 'Migration20261204110000_unlink_slack_connect_ids';

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

describe('upgrading a database where invitations went to people of other organisations', () => {
  it('unlinks the users linked to a Slack id of another organisation, audited, and keeps every other link', async () => {
    // As the database was before the upgrade.
    await orm.migrator.down({ migrations: [MIGRATION] });
    const em = orm.em.fork();
    const account = em.create(Account, { teamId: 'T0001', name: 'Acme' });
    const other = em.create(Account, { teamId: 'T0002', name: 'Partner' });
    const user = (a: typeof account, email: string, slackUserId: string) =>
      em.create(User, { account: a, email, role: 'client', status: 'active', slackUserId });
    const ana = user(account, 'ana@partner.example', 'UEXTANA');
    const max = user(account, 'max@acme.test', 'UMAX');
    const grid = user(account, 'gil@acme.test', 'WGIL');
    const unseen = user(account, 'una@acme.test', 'UUNSEEN');
    // The same Slack id is a member of the other account's own workspace.
    const partnerAna = user(other, 'ana@partner.example', 'UEXTANA');
    await em.flush();
    const directory = new DirectoryService();
    await directory.upsert(em, account, [
      mirroredMember('UEXTANA', 'ana@partner.example', ['T0002']),
      mirroredMember('UMAX', 'max@acme.test', ['T0001']),
      mirroredMember('WGIL', 'gil@acme.test', ['T0009', 'T0001']),
    ]);
    await directory.upsert(em, other, [mirroredMember('UEXTANA', 'ana@partner.example', ['T0002'])]);

    await orm.migrator.up({ migrations: [MIGRATION] });

    const now = orm.em.fork();
    const linked = async (id: string) => (await now.findOneOrFail(User, id)).slackUserId;
    expect(await linked(ana.id)).toBeNull();
    expect(await linked(max.id)).toBe('UMAX');
    expect(await linked(grid.id)).toBe('WGIL');
    expect(await linked(unseen.id)).toBe('UUNSEEN');
    expect(await linked(partnerAna.id)).toBe('UEXTANA');
    const audits = await query<{ subject_id: string; action: string; data: Record<string, unknown> }>(
      now,
      sql`select subject_id, action, data from audit_event where account_id in (${account.id}, ${other.id})`,
    );
    expect(audits).toEqual([
      {
        subject_id: ana.id,
        action: 'user.updated',
        data: {
          slackUserId: 'UEXTANA',
          teams: ['T0002'],
          reason: 'the Slack id is of another organisation (Slack Connect)',
        },
      },
    ]);
  });
});
