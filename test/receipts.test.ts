import { initORM, type ORM } from '../src/db/orm.ts';
import { firstTime, pruneReceipts } from '../src/slack/once.ts';
import { createTestDatabase, type TestDatabase } from './support/database.ts';

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

describe('Slack receipts', () => {
  it('let a delivery through once, and are pruned after a week', async () => {
    const em = orm.em.fork();
    expect(await firstTime(em, 'view:V1:h1')).toBe(true);
    expect(await firstTime(em, 'view:V1:h1')).toBe(false);
    expect(await firstTime(em, 'view:V2:h1')).toBe(true);
    await em
      .getConnection()
      .execute(`update slack_receipt set created_at = now() - interval '8 days' where key = 'view:V1:h1'`);
    expect(await pruneReceipts(em)).toBe(1);
    const rows = await em
      .getConnection()
      .execute<{ key: string }[]>('select key from slack_receipt order by key');
    expect(rows.map((r) => r.key)).toEqual(['view:V2:h1']);
  });
});
