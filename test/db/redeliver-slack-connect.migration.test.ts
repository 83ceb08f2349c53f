import { initORM, type ORM } from '../../src/db/orm.ts';
import { query, sql } from '../../src/db/sql.ts';
import { Account } from '../../src/features/accounts/account.entity.ts';
import { DirectoryService } from '../../src/features/directory/directory.service.ts';
import { Invitation } from '../../src/features/invites/invitation.entity.ts';
import { INVITE_JOBS, queueRedeliveries } from '../../src/features/invites/invitation.service.ts';
import { User } from '../../src/features/people/user.entity.ts';
import { newToken } from '../../src/shared/ids.ts';
import { JobQueue } from '../../src/shared/jobs.ts';
import { createLogger } from '../../src/shared/logger.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { mirroredMember } from '../support/directory.ts';

const UNLINK = 'Migration20261204110000_unlink_slack_connect_ids';
const MIGRATION = 'Migration20261204190000_redeliver_slack_connect_invitations';

let db: TestDatabase;
let orm: ORM;
let jobs: JobQueue;

beforeAll(async () => {
  db = await createTestDatabase();
  orm = await initORM(db.url);
  // Jobs are queued, not worked: what is asserted is what waits in the queue.
  jobs = await JobQueue.start(db.url, createLogger('silent'), { works: () => false });
  await jobs.define(INVITE_JOBS.deliver, async () => {});
});
afterAll(async () => {
  await jobs.stop();
  await orm.close(true);
  await db.drop();
});

describe('upgrading a database where invitation DMs went to people of other organisations', () => {
  it('voids the link those DMs carried, audited, and queues each invitation once to be delivered again', async () => {
    // As the database was before either upgrade.
    await orm.migrator.down({ migrations: [MIGRATION, UNLINK] });
    const em = orm.em.fork();
    const account = em.create(Account, { teamId: 'T0001', name: 'Acme' });
    const person = (email: string, slackUserId: string) =>
      em.create(User, { account, email, role: 'client', status: 'invited', slackUserId });
    const ana = person('ana@partner.example', 'UEXTANA');
    const bo = person('bo@partner.example', 'UEXTBO');
    const max = person('max@acme.test', 'UMAX');
    const day = 86_400_000;
    const invitation = (
      user: typeof ana,
      fields: Partial<{ status: 'pending' | 'accepted'; method: 'slack_dm' | 'email' }> = {},
    ) => {
      const { token, hash } = newToken();
      const inv = em.create(Invitation, {
        account,
        user,
        tokenHash: hash,
        status: fields.status ?? 'pending',
        expiresAt: new Date(Date.now() + 7 * day),
        deliveryMethod: fields.method ?? 'slack_dm',
        deliveredAt: new Date(),
        deliveryAttempts: 1,
      });
      return { inv, token };
    };
    const toAna = invitation(ana);
    // Bo's went by email: its link reached the address, not the other organisation's Slack account.
    const toBo = invitation(bo, { method: 'email' });
    const toMax = invitation(max);
    await em.flush();
    await new DirectoryService().upsert(em, account, [
      mirroredMember('UEXTANA', 'ana@partner.example', ['T0002']),
      mirroredMember('UEXTBO', 'bo@partner.example', ['T0002']),
      mirroredMember('UMAX', 'max@acme.test', ['T0001']),
    ]);

    await orm.migrator.up({ migrations: [UNLINK, MIGRATION] });

    const now = orm.em.fork();
    const state = async (id: string) => {
      const i = await now.findOneOrFail(Invitation, id, { refresh: true });
      return {
        tokenHash: i.tokenHash,
        deliveredAt: i.deliveredAt,
        deliveryMethod: i.deliveryMethod,
        status: i.status,
      };
    };
    expect(await state(toAna.inv.id)).toEqual({
      tokenHash: null,
      deliveredAt: null,
      deliveryMethod: null,
      status: 'pending',
    });
    expect((await state(toBo.inv.id)).tokenHash).toBe(toBo.inv.tokenHash);
    expect((await state(toMax.inv.id)).tokenHash).toBe(toMax.inv.tokenHash);
    const audits = await query<{ subject_id: string; data: Record<string, unknown> }>(
      now,
      sql`select subject_id, data from audit_event where account_id = ${account.id} and action = 'invitation.resent'`,
    );
    expect(audits).toEqual([
      {
        subject_id: toAna.inv.id,
        data: {
          email: 'ana@partner.example',
          reason:
            'the Slack DM went to someone of another organisation (Slack Connect); its link no longer works',
        },
      },
    ]);

    // Roster starting (twice: the main process and the bulk jobs thread) queues Ana's delivery once.
    expect(await queueRedeliveries(orm.em.fork(), jobs)).toBe(1);
    expect(await queueRedeliveries(orm.em.fork(), jobs)).toBe(0);
    const queued = await jobs.boss.findJobs<{ invitationId: string }>(INVITE_JOBS.deliver, { queued: true });
    expect(queued.map((j) => j.data)).toEqual([{ invitationId: toAna.inv.id }]);
    expect((await now.findOneOrFail(Invitation, toAna.inv.id, { refresh: true })).lastError).toBeNull();
  });
});
