import { initORM, type ORM } from '../src/db/orm.ts';
import { ensureAccount } from '../src/features/accounts/account.service.ts';
import { Contact } from '../src/features/contacts/contact.entity.ts';
import { JobQueue } from '../src/shared/jobs.ts';
import { createLogger } from '../src/shared/logger.ts';
import { eventually } from './support/app.ts';
import { createTestDatabase, type TestDatabase } from './support/database.ts';

let db: TestDatabase;
let orm: ORM;
let jobs: JobQueue;
const ran: string[] = [];

beforeAll(async () => {
  db = await createTestDatabase();
  orm = await initORM(db.url);
  jobs = await JobQueue.start(db.url, createLogger('silent'));
  await jobs.define<{ name: string }>('test.record', async ({ name }) => void ran.push(name));
});
afterAll(async () => {
  await jobs.stop();
  await orm.close(true);
  await db.drop();
});

describe('background jobs', () => {
  it('enqueued in a transaction, exist only if it commits', async () => {
    const account = await ensureAccount(orm.em.fork(), 'T_JOBS');
    await orm.em.fork().transactional(async (tx) => {
      tx.create(Contact, { account, name: 'Committed' });
      await tx.flush();
      await jobs.send('test.record', { name: 'committed' }, { em: tx });
    });
    await expect(
      orm.em.fork().transactional(async (tx) => {
        tx.create(Contact, { account, name: 'Rolled back' });
        await tx.flush();
        await jobs.send('test.record', { name: 'rolled back' }, { em: tx });
        throw new Error('something failed half way');
      }),
    ).rejects.toThrow('something failed half way');

    await eventually(() => ran.includes('committed'));
    await jobs.send('test.record', { name: 'marker' });
    await eventually(() => ran.includes('marker'));
    expect(ran).not.toContain('rolled back');
    expect(await orm.em.fork().count(Contact, { name: 'Rolled back' })).toBe(0);
    const [row] = await orm.em
      .fork()
      .getConnection()
      .execute<{ n: number }[]>(
        `select count(*)::int as n from pgboss.job where data->>'name' = 'rolled back'`,
      );
    expect(row?.n).toBe(0);
  });

  it('refuse a job name nobody handles, instead of queueing it forever', async () => {
    await expect(jobs.send('nobody.handles', {})).rejects.toThrow('No job named nobody.handles is defined');
  });
});
