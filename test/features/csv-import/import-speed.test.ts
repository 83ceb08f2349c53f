import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import type { ORM } from '../../../src/db/orm.ts';
import type { IAccount } from '../../../src/features/accounts/account.entity.ts';
import { AuditEvent } from '../../../src/features/audit/audit-event.entity.ts';
import { CsvImport } from '../../../src/features/csv-import/csv-import.entity.ts';
import type {
  CsvImportService,
  PreviewSummary,
} from '../../../src/features/csv-import/csv-import.service.ts';
import { Invitation } from '../../../src/features/invites/invitation.entity.ts';
import { INVITE_JOBS } from '../../../src/features/invites/invitation.service.ts';
import { User } from '../../../src/features/people/user.entity.ts';
import type { SeatService } from '../../../src/features/seats/seat.service.ts';
import { eventually } from '../../support/app.ts';
import type { TestDatabase } from '../../support/database.ts';
import { admin, type ImportTestbed, startImportTestbed } from './support.ts';

// What makes large imports fast without losing anything, on real Postgres: the seat lock taken only to
// count again before the commit, staged rows that a crash can empty, the error file written to disk.

let bed: ImportTestbed;
let db: TestDatabase;
let orm: ORM;
let seats: SeatService;
let service: CsvImportService;

beforeAll(async () => {
  bed = await startImportTestbed();
  ({ db, orm, seats, service } = bed);
});
afterAll(() => bed.stop());

const freshAccount = (seatLimit = 1000) => bed.freshAccount(seatLimit);
const preview = (account: IAccount, content: string): Promise<PreviewSummary> =>
  bed.preview(account, content);

const usersOf = (account: IAccount) => orm.em.fork().find(User, { account }, { orderBy: { email: 'asc' } });
const deliveryJobs = async (account: IAccount) => {
  const [row] = await orm.em
    .fork()
    .getConnection()
    .execute<{ n: number }[]>(
      `select count(*)::int as n from pgboss.job j
       cross join lateral jsonb_array_elements_text(j.data->'invitationIds') as x(id)
       join invitation i on i.id = x.id::uuid
     where j.name = ? and i.account_id = ?`,
      [INVITE_JOBS.deliverBatch, account.id],
    );
  return row?.n ?? 0;
};

describe('a large import', () => {
  it('gives seats out again under the lock when another admin took them while a batch was written', async () => {
    const account = await freshAccount(6);
    const lines = ['first_name,email,role,send_invitation'];
    for (let i = 0; i < 4; i++) lines.push(`R${i},race${i}@acme.test,employee,yes`);
    const summary = await preview(account, lines.join('\n'));
    const id = summary.csvImport.id;
    expect((await service.start(orm.em.fork(), account, id, admin)).status).toBe('started');
    // Another paid addition holds the seat lock with 4 seats taken, not yet committed: the batch sees 6
    // free seats, writes its 4 users, then waits for the lock to count again.
    const other = new pg.Client({ connectionString: db.url });
    await other.connect();
    try {
      await other.query('begin');
      await other.query('select id from account where id = $1 for no key update', [account.id]);
      for (let i = 0; i < 4; i++) {
        await other.query(
          `insert into app_user (id, account_id, email, role, status) values (gen_random_uuid(), $1, $2, 'employee', 'invited')`,
          [account.id, `other${i}@acme.test`],
        );
      }
      const running = service.run(id);
      await eventually(async () => {
        const [waiting] = await orm.em
          .fork()
          .getConnection()
          .execute<{ n: number }[]>(
            `select count(*)::int as n from pg_stat_activity where datname = current_database() and wait_event_type = 'Lock'`,
          );
        return (waiting?.n ?? 0) > 0 || undefined;
      });
      await other.query('commit');
      const done = await running;
      expect(done?.counts).toMatchObject({ created: 2, failed: 2, noSeat: 2, invited: 2 });
    } finally {
      await other.end();
    }
    expect((await seats.usage(orm.em.fork(), account)).used).toBe(6);
    expect((await usersOf(account)).map((u) => u.email).filter((e) => e.startsWith('race'))).toEqual([
      'race0@acme.test',
      'race1@acme.test',
    ]);
    expect(await orm.em.fork().count(Invitation, { account })).toBe(2);
    expect(await deliveryJobs(account)).toBe(2);
    const taken = await orm.em
      .fork()
      .find(AuditEvent, { account, action: 'seat.taken' }, { orderBy: { id: 'asc' } });
    expect(taken.map((e) => e.data)).toEqual([
      { for: 'race0@acme.test', used: 5, limit: 6, seatAdded: false },
      { for: 'race1@acme.test', used: 6, limit: 6, seatAdded: false },
    ]);
  });

  it('fails an import whose staged rows a database crash emptied, asking for the file again', async () => {
    const account = await freshAccount();
    const summary = await preview(account, 'first_name,email\nLost,lost@acme.test\n');
    const id = summary.csvImport.id;
    expect((await service.start(orm.em.fork(), account, id, admin)).status).toBe('started');
    // What crash recovery does to an unlogged table.
    await orm.em.fork().getConnection().execute('delete from csv_import_row where csv_import_id = ?', [id]);
    expect(await service.run(id)).toBeNull();
    const failed = await orm.em.fork().findOneOrFail(CsvImport, id);
    expect(failed.status).toBe('failed');
    expect(failed.error).toContain('Upload the file again');
    expect(await orm.em.fork().count(User, { account })).toBe(0);
  });

  it('writes an error file of many pages to disk, the same bytes as in memory', async () => {
    const account = await freshAccount();
    const lines = ['first_name,email,role'];
    for (let i = 0; i < 12_000; i++) lines.push(`=Bad${i},bad${i}@acme.test,${i % 2 ? 'boss' : 'chief'}`);
    const summary = await preview(account, lines.join('\n'));
    expect(summary.counts.error).toBe(12_000);
    const dir = await mkdtemp(join(tmpdir(), 'roster-error-file-'));
    try {
      const path = join(dir, 'errors.csv');
      expect(await service.writeErrorFile(summary.csvImport.id, path)).toBe(true);
      const written = await readFile(path);
      expect(written.equals((await service.errorFile(summary.csvImport.id)) as Buffer)).toBe(true);
      const text = written.toString('utf8').split('\r\n');
      expect(text[0]).toBe('\ufefffirst_name,email,role,line,reason');
      expect(text[1]).toMatch(/^'=Bad0,bad0@acme\.test,chief,2,/);
      expect(text.at(-2)).toMatch(/^'=Bad11999,bad11999@acme\.test,boss,12001,/);
      expect(text).toHaveLength(12_002);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
