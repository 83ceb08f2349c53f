import { Writable } from 'node:stream';
import type { ORM } from '../../../src/db/orm.ts';
import type { IAccount } from '../../../src/features/accounts/account.entity.ts';
import { AuditEvent } from '../../../src/features/audit/audit-event.entity.ts';
import { Contact } from '../../../src/features/contacts/contact.entity.ts';
import { CsvImport, CsvImportRow } from '../../../src/features/csv-import/csv-import.entity.ts';
import {
  CsvImportService,
  type PreviewSummary,
} from '../../../src/features/csv-import/csv-import.service.ts';
import { INVITED_PER_BATCH } from '../../../src/features/csv-import/import-run.ts';
import { Invitation } from '../../../src/features/invites/invitation.entity.ts';
import { INVITE_JOBS } from '../../../src/features/invites/invitation.service.ts';
import { User } from '../../../src/features/people/user.entity.ts';
import type { SeatService } from '../../../src/features/seats/seat.service.ts';
import { DomainError } from '../../../src/shared/errors.ts';
import type { JobQueue } from '../../../src/shared/jobs.ts';
import { createLogger } from '../../../src/shared/logger.ts';
import { admin, type ImportTestbed, startImportTestbed } from './support.ts';

// The staging path of the CSV import on real Postgres: rows COPied into csv_import_row, decided there
// with set-based SQL, and applied in set-based batches.

let bed: ImportTestbed;
let orm: ORM;
let jobs: JobQueue;
let seats: SeatService;
let service: CsvImportService;

beforeAll(async () => {
  bed = await startImportTestbed();
  ({ orm, jobs, seats, service } = bed);
});
afterAll(() => bed.stop());

const freshAccount = (seatLimit = 1000) => bed.freshAccount(seatLimit);

/** A logger whose entries the test reads. */
function captureLog() {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk, _enc, done) {
      lines.push(String(chunk));
      done();
    },
  });
  return {
    logger: createLogger('info', stream),
    entries: () => lines.map((l) => JSON.parse(l) as Record<string, any>),
  };
}
const preview = (
  account: IAccount,
  content: Buffer | string | AsyncIterable<Uint8Array>,
  using = service,
): Promise<PreviewSummary> => bed.preview(account, content, { using });

async function importNow(account: IAccount, summary: PreviewSummary, using = service) {
  expect((await using.start(orm.em.fork(), account, summary.csvImport.id, admin)).status).toBe('started');
  const done = await using.run(summary.csvImport.id);
  if (!done) throw new Error('the import did not finish');
  return done;
}

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

/** The bytes in chunks of `size`, as a download hands them over. */
async function* chunked(bytes: Buffer, size: number): AsyncGenerator<Uint8Array> {
  for (let i = 0; i < bytes.length; i += size) yield new Uint8Array(bytes.subarray(i, i + size));
}

describe('staging a file', () => {
  it('finds duplicates anywhere in a large file, whatever their case, and keeps the first', async () => {
    const account = await freshAccount();
    const lines = ['first_name,email'];
    for (let i = 0; i < 1500; i++) lines.push(`P${i},p${i}@acme.test`);
    lines.push('Again,P3@ACME.test', 'Twice,  p1499@acme.test  ');
    const summary = await preview(account, lines.join('\n'));
    expect(summary.counts).toMatchObject({ rows: 1502, create: 1500, error: 2 });
    expect(summary.firstErrors).toEqual([
      { line: 1502, reason: 'email P3@ACME.test is also on line 5' },
      { line: 1503, reason: 'email p1499@acme.test is also on line 1501' },
    ]);
  });

  it('keeps backslashes, tabs, quotes and line breaks in cells as written', async () => {
    const account = await freshAccount();
    const notes = 'C:\\path\\to\tfile, "quoted"\nsecond line \\N';
    const lines = [
      'type,first_name,last_name,email,company,notes,role',
      `contact,Back,Slash,back@acme.test,Co \\ Ltd,"${notes.replace(/"/g, '""')}",`,
      `user,Bad,Role,bad@acme.test,,"tab\there \\N",boss`,
    ];
    const summary = await preview(account, lines.join('\r\n'));
    expect(summary.counts).toMatchObject({ rows: 2, create: 1, error: 1 });
    const staged = await orm.em
      .fork()
      .find(CsvImportRow, { csvImport: summary.csvImport.id }, { orderBy: { line: 'asc' } });
    expect(staged.map((r) => r.cells)).toEqual([
      ['contact', 'Back', 'Slash', 'back@acme.test', 'Co \\ Ltd', notes, ''],
      ['user', 'Bad', 'Role', 'bad@acme.test', '', 'tab\there \\N', 'boss'],
    ]);
    await importNow(account, summary);
    const contact = await orm.em.fork().findOneOrFail(Contact, { account, email: 'back@acme.test' });
    expect(contact).toMatchObject({ name: 'Back Slash', company: 'Co \\ Ltd', notes });
  });

  it('matches existing people and contacts by email whatever its case and spaces', async () => {
    const account = await freshAccount();
    const em = orm.em.fork();
    em.create(User, {
      account,
      email: 'Mixed@Case.test',
      role: 'employee',
      status: 'locked',
      firstName: 'M',
    });
    em.create(Contact, { account, name: 'Cy Contact', email: 'CY@case.test' });
    await em.flush();
    const summary = await preview(
      account,
      'type,first_name,last_name,email\nuser,M,,mixed@CASE.test\ncontact,Cy,Contact,cy@Case.Test\nuser,New,,new@case.test\n',
    );
    expect(summary.counts).toMatchObject({ rows: 3, create: 1, unchanged: 2, error: 0 });
    const done = await importNow(account, summary);
    expect(done.counts).toMatchObject({ created: 1, kept: 2 });
    expect((await usersOf(account)).map((u) => u.email)).toEqual(['Mixed@Case.test', 'new@case.test']);
    expect(await orm.em.fork().count(Contact, { account })).toBe(1);
  });

  it('reads a download in chunks: a character split between chunks, and Windows-1252 found late', async () => {
    const account = await freshAccount();
    const utf8 = Buffer.from(
      'first_name,last_name,email\nJosé,Müller,jose@acme.test\nZoë,Ångström,zoe@acme.test\n',
    );
    const split = await preview(account, chunked(utf8, 29));
    const rows = await orm.em
      .fork()
      .find(CsvImportRow, { csvImport: split.csvImport.id }, { orderBy: { line: 'asc' } });
    expect(rows.map((r) => [r.data.firstName, r.data.lastName])).toEqual([
      ['José', 'Müller'],
      ['Zoë', 'Ångström'],
    ]);

    const ascii = 'first_name,email\n'.concat(
      ...Array.from({ length: 300 }, (_, i) => `A${i},a${i}@acme.test\n`),
    );
    const latin = Buffer.concat([
      Buffer.from(ascii),
      Buffer.from([0x52, 0xe9, 0x6d, 0x79]),
      Buffer.from(',remy@acme.test\n'),
    ]);
    const late = await preview(account, chunked(latin, 1024));
    const [remy] = await orm.em.fork().find(CsvImportRow, { csvImport: late.csvImport.id, line: 302 });
    expect(remy?.data.firstName).toBe('Rémy');
  });

  it('refuses an over-long header or cell at preview, naming the limit', async () => {
    const account = await freshAccount();
    const err = await preview(account, `first_name,email,${'x'.repeat(101)}\nA,a@acme.test,1\n`).catch(
      (e) => e,
    );
    expect(err).toBeInstanceOf(DomainError);
    expect(err.message).toContain('The header of column 3');
    expect(err.message).toContain('is longer than 100 characters, the limit for a column name');

    const summary = await preview(
      account,
      [
        'type,first_name,last_name,email,notes,extra',
        `user,Long,Cell,long@acme.test,,${'y'.repeat(5001)}`,
        `contact,${'F'.repeat(200)},${'L'.repeat(200)},,,`,
        `user,${'N'.repeat(256)},,name@acme.test,,`,
        `user,Long,Notes,notes@acme.test,${'n'.repeat(3001)},`,
        `user,Full,Notes,full@acme.test,${'n'.repeat(3000)},`,
        'user,Fine,Row,fine@acme.test,,',
      ].join('\n'),
    );
    expect(summary.counts).toMatchObject({ rows: 6, create: 2, error: 4 });
    expect(summary.firstErrors).toEqual([
      { line: 2, reason: 'the extra cell is longer than 5,000 characters, the limit for a cell' },
      {
        line: 3,
        reason: "the contact's name (first_name and last_name together) is longer than 255 characters",
      },
      { line: 4, reason: 'first_name is longer than 255 characters' },
      // The notes the person's Edit details form can show, as Slack's text inputs take 3,000 characters.
      { line: 5, reason: 'notes is longer than 3000 characters' },
    ]);
  });

  it('refuses a file with more rows than the limit, saying so, and keeps nothing of it', async () => {
    const account = await freshAccount();
    const limited = new CsvImportService({ orm, jobs, seats, maxRows: 3 });
    const err = await preview(
      account,
      'first_name,email\na,a@x.test\nb,b@x.test\nc,c@x.test\nd,d@x.test\n',
      limited,
    ).catch((e) => e);
    expect(err).toBeInstanceOf(DomainError);
    expect(err.message).toBe(
      'people.csv has more than 3 rows, the limit for one file. Split it into smaller files and upload them one by one.',
    );
    const failed = await orm.em.fork().find(CsvImport, { account, status: 'failed' });
    expect(failed).toHaveLength(1);
    expect(await orm.em.fork().count(CsvImportRow, { csvImport: failed[0]?.id })).toBe(0);
  });
});

describe('applying staged rows', () => {
  it('changes nothing, not even an audit event, when the same file is imported again', async () => {
    const account = await freshAccount();
    const file = [
      'type,first_name,last_name,email,company,send_invitation',
      'user,Ann,One,ann@acme.test,,yes',
      'user,Ben,Two,ben@acme.test,,no',
      'contact,Cat,Three,cat@acme.test,Acme,',
      'contact,Dan,Four,,Acme,',
    ].join('\n');
    await importNow(account, await preview(account, file));
    const events = await orm.em.fork().count(AuditEvent, { account });
    const invitations = await orm.em.fork().count(Invitation, { account });
    const again = await preview(account, file);
    expect(again.counts).toMatchObject({ create: 0, update: 0, unchanged: 4, invitations: 0 });
    expect(await service.completeUnchanged(again.csvImport.id)).toBe(true);
    expect(await orm.em.fork().count(AuditEvent, { account, action: { $ne: 'csv_import.completed' } })).toBe(
      events - 1,
    );
    expect(await orm.em.fork().count(Invitation, { account })).toBe(invitations);
    expect(await deliveryJobs(account)).toBe(1);
  });

  it("keeps a user row's company and notes on their contact details; the same file again changes nothing", async () => {
    const account = await freshAccount();
    const file = [
      'type,first_name,last_name,email,company,notes,send_invitation',
      'user,Eve,Five,eve@acme.test,Globex,Likes tea,no',
      'user,Fay,Six,fay@acme.test,Initech,,yes',
      'user,Gus,Seven,gus@acme.test,,,no',
    ].join('\n');
    await importNow(account, await preview(account, file));
    const detailsOf = async (email: string) => {
      const user = await orm.em.fork().findOneOrFail(User, { account, email });
      return orm.em.fork().find(Contact, { account, user }, { orderBy: { createdAt: 'asc' } });
    };
    expect(await detailsOf('eve@acme.test')).toMatchObject([
      { name: 'Eve Five', company: 'Globex', notes: 'Likes tea' },
    ]);
    expect(await detailsOf('fay@acme.test')).toMatchObject([{ company: 'Initech', notes: null }]);
    expect(await detailsOf('gus@acme.test')).toEqual([]);

    const again = await preview(account, file);
    expect(again.counts).toMatchObject({ create: 0, update: 0, unchanged: 3 });

    const changed = await preview(account, file.replace('Globex', 'Globex Ltd'));
    expect(changed.counts).toMatchObject({ update: 1, unchanged: 2 });
    await importNow(account, changed);
    expect(await detailsOf('eve@acme.test')).toMatchObject([{ company: 'Globex Ltd', notes: 'Likes tea' }]);
  });

  it("imports a user whose names together are longer than a contact's name, cutting only the details' label", async () => {
    const account = await freshAccount();
    const [first, last] = ['A'.repeat(200), 'B'.repeat(200)];
    const file = `email,first_name,last_name,company\nlong@acme.test,${first},${last},Acme\n`;
    const summary = await preview(account, file);
    expect(summary.counts).toMatchObject({ create: 1, error: 0 });
    const done = await importNow(account, summary);
    expect(done.counts).toMatchObject({ created: 1, failed: 0 });
    const user = await orm.em.fork().findOneOrFail(User, { account, email: 'long@acme.test' });
    expect(user).toMatchObject({ firstName: first, lastName: last });
    const [details] = await orm.em.fork().find(Contact, { account, user });
    expect(details).toMatchObject({ company: 'Acme', name: `${first} ${last}`.slice(0, 255) });
  });

  it("does not take a contact row without an email for a user's contact details of the same name", async () => {
    const account = await freshAccount();
    await importNow(
      account,
      await preview(account, 'email,first_name,last_name,company\nada@acme.test,Ada,Lovelace,Acme\n'),
    );
    const file = 'type,email,first_name,last_name,company,title\ncontact,,Ada,Lovelace,Acme,Buyer\n';
    const summary = await preview(account, file);
    expect(summary.counts).toMatchObject({ create: 1, update: 0 });
    await importNow(account, summary);
    const contacts = await orm.em.fork().find(Contact, { account }, { orderBy: { createdAt: 'asc' } });
    expect(contacts).toMatchObject([
      { name: 'Ada Lovelace', company: 'Acme', title: null, user: expect.anything() },
      { name: 'Ada Lovelace', company: 'Acme', title: 'Buyer', user: null },
    ]);
    expect((await preview(account, file)).counts).toMatchObject({ create: 0, unchanged: 1 });
  });

  it('imports a user whose email column holds a name as locked with the login marked missing', async () => {
    const account = await freshAccount();
    const file = [
      'type,first_name,last_name,email,role,send_invitation',
      'user,,,John Smith,employee,no',
      "user,,,Zoë O'Neil,client,",
      'user,,,Ann Invite,employee,yes',
      'user,,,bad@,employee,no',
    ].join('\n');
    const summary = await preview(account, file);
    expect(summary.counts).toMatchObject({ rows: 4, create: 2, error: 2 });
    expect(summary.firstErrors.map((e) => e.reason)).toEqual([
      expect.stringContaining('is a name, not an address, so no invitation can be sent'),
      expect.stringContaining('is not a valid email address'),
    ]);
    await importNow(account, summary);
    const john = await orm.em.fork().findOneOrFail(User, { account, loginHint: 'John Smith' });
    expect(john).toMatchObject({
      status: 'locked',
      loginMissing: true,
      firstName: 'John',
      lastName: 'Smith',
    });
    expect(john.email).toMatch(/^missing-[0-9a-f]{20}@login\.invalid$/);
    expect(await orm.em.fork().count(User, { account, loginMissing: true })).toBe(2);

    const again = await preview(account, file);
    expect(again.counts).toMatchObject({ create: 0, unchanged: 2, error: 2 });

    // A name repeated in the email column is named as the file has it, not by its placeholder.
    const twice = await preview(account, 'email,first_name\nAnn Lee,Ann\nAnn Lee,Ann\n');
    expect(twice.firstErrors).toEqual([
      { line: 3, reason: 'the name "Ann Lee" in the email column is also on line 2' },
    ]);
  });

  it('resumes a stop in the middle of invited rows with no duplicate and no lost row', async () => {
    const account = await freshAccount();
    const small = new CsvImportService({ orm, jobs, seats, batchSize: 7 });
    const lines = ['type,first_name,last_name,email,company,send_invitation'];
    for (let i = 0; i < 20; i++) lines.push(`user,In,${i},in${i}@acme.test,,yes`);
    for (let i = 0; i < 10; i++) lines.push(`contact,Co,${i},,Co ${i % 2},`);
    const summary = await preview(account, lines.join('\n'), small);
    const id = summary.csvImport.id;
    expect((await small.start(orm.em.fork(), account, id, admin)).status).toBe('started');
    expect(await small.run(id, { maxBatches: 1 })).toBeNull();
    await expect(
      small.run(id, {
        beforeCommit: (batch) => {
          if (batch === 1) throw new Error('killed');
        },
      }),
    ).rejects.toThrow('killed');
    expect(await small.progress(id)).toEqual({ done: 14, total: 30 });
    const done = await small.run(id);
    expect(done?.counts).toMatchObject({ created: 30, failed: 0, invited: 20 });
    const users = await usersOf(account);
    expect(users).toHaveLength(20);
    expect(users.every((u) => u.status === 'invited')).toBe(true);
    expect(await orm.em.fork().count(Invitation, { account })).toBe(20);
    // Not delivered yet, so no link token exists: the delivery makes it.
    expect(await orm.em.fork().count(Invitation, { account, tokenHash: null })).toBe(20);
    expect(await deliveryJobs(account)).toBe(20);
    expect(await orm.em.fork().count(Contact, { account })).toBe(10);
    expect(await orm.em.fork().count(AuditEvent, { account, action: 'seat.taken' })).toBe(
      users.filter((u) => u.role !== 'client').length,
    );
    expect((await seats.usage(orm.em.fork(), account)).used).toBe(20);
  });

  it('cuts a batch before the invitation past INVITED_PER_BATCH, and the next batch goes on from there', async () => {
    const account = await freshAccount();
    const lines = ['first_name,email,role,send_invitation'];
    for (let i = 0; i < 10; i++) lines.push(`Plain${i},plain${i}@acme.test,client,no`);
    for (let i = 0; i < INVITED_PER_BATCH + 5; i++) lines.push(`Inv${i},inv${i}@acme.test,client,yes`);
    for (let i = 0; i < 10; i++) lines.push(`After${i},after${i}@acme.test,client,no`);
    const summary = await preview(account, lines.join('\n'));
    const id = summary.csvImport.id;
    expect((await service.start(orm.em.fork(), account, id, admin)).status).toBe('started');
    expect(await service.run(id, { maxBatches: 1 })).toBeNull();
    const total = 20 + INVITED_PER_BATCH + 5;
    expect(await service.progress(id)).toEqual({ done: 10 + INVITED_PER_BATCH, total });
    expect(await orm.em.fork().count(Invitation, { account })).toBe(INVITED_PER_BATCH);
    const done = await service.run(id);
    expect(done?.counts).toMatchObject({ created: total, failed: 0, invited: INVITED_PER_BATCH + 5 });
    expect(await orm.em.fork().count(Invitation, { account })).toBe(INVITED_PER_BATCH + 5);
    expect(await orm.em.fork().count(User, { account, status: 'locked' })).toBe(20);
  });

  it('applies every row once when two workers run the same import at the same time', async () => {
    const account = await freshAccount();
    const small = new CsvImportService({ orm, jobs, seats, batchSize: 5 });
    const lines = ['first_name,email,send_invitation'];
    for (let i = 0; i < 30; i++) lines.push(`Twin${i},twin${i}@acme.test,${i % 2 ? 'yes' : 'no'}`);
    const summary = await preview(account, lines.join('\n'), small);
    const id = summary.csvImport.id;
    expect((await small.start(orm.em.fork(), account, id, admin)).status).toBe('started');
    const [a, b] = await Promise.all([small.run(id), small.run(id)]);
    expect([a?.csvImport.status, b?.csvImport.status]).toEqual(['completed', 'completed']);
    expect(a?.counts).toMatchObject({ created: 30, failed: 0, invited: 15 });
    expect(await orm.em.fork().count(User, { account })).toBe(30);
    expect(await orm.em.fork().count(Invitation, { account })).toBe(15);
    expect(await deliveryJobs(account)).toBe(15);
    expect(
      await orm.em.fork().count(AuditEvent, { account, action: 'csv_import.completed', subjectId: id }),
    ).toBe(1);
  });

  it('writes none of the company and notes of a row refused at import for want of a paid seat', async () => {
    const account = await freshAccount(0);
    await importNow(
      account,
      await preview(account, 'email,first_name,role,company\nzed@acme.test,Zed,employee,OldCo'),
    );
    const file = 'email,first_name,company,notes,send_invitation\nzed@acme.test,Zed,NewCo,hello,yes';
    const done = await importNow(account, await preview(account, file));
    expect(done.counts).toMatchObject({ noSeat: 1, failed: 1 });
    const user = await orm.em.fork().findOneOrFail(User, { account, email: 'zed@acme.test' });
    expect(user.status).toBe('locked');
    expect(await orm.em.fork().find(Contact, { account, user })).toMatchObject([
      { company: 'OldCo', notes: null },
    ]);
  });

  it('refuses a contact row with the address of a user converted from a contact, and changes nothing', async () => {
    const account = await freshAccount();
    const contact = 'type,first_name,last_name,email,company';
    await importNow(account, await preview(account, `${contact}\ncontact,Carl,Contact,carl@acme.test,Acme`));
    // The same address as a user row: the contact becomes that user.
    await importNow(account, await preview(account, `${contact}\nuser,Carl,Contact,carl@acme.test,`));
    const user = await orm.em.fork().findOneOrFail(User, { account, email: 'carl@acme.test' });
    expect(await orm.em.fork().count(Contact, { account, user })).toBe(1);
    const summary = await preview(account, `${contact}\ncontact,Evil,Rename,CARL@acme.test,EvilCo`);
    expect(summary.counts).toMatchObject({ error: 1, update: 0 });
    expect(summary.firstErrors[0]?.reason).toContain('CARL@acme.test is already a user in Roster');
    expect(await orm.em.fork().find(Contact, { account, user })).toMatchObject([
      { name: 'Carl Contact', company: 'Acme' },
    ]);
  });

  it('stops giving seats at the limit: the first rows are invited, the rest are errors, used stays at the limit', async () => {
    const account = await freshAccount(5);
    const small = new CsvImportService({ orm, jobs, seats, batchSize: 4 });
    const lines = ['first_name,email,role,send_invitation'];
    for (let i = 0; i < 12; i++) lines.push(`S${i},s${String(i).padStart(2, '0')}@acme.test,employee,yes`);
    lines.push('Cli,client@acme.test,client,yes');
    const summary = await preview(account, lines.join('\n'), small);
    expect(summary.counts).toMatchObject({ seatsNeeded: 12, invitations: 13 });
    const done = await importNow(account, summary, small);
    expect(done.counts).toMatchObject({ created: 6, failed: 7, noSeat: 7, invited: 6 });
    expect(done.firstErrors[0]).toEqual({
      line: 7,
      reason:
        'no paid seat free (5 of 5 used), so s05@acme.test was not imported; raise the limit with /seats and import the error file',
    });
    expect((await seats.usage(orm.em.fork(), account)).used).toBe(5);
    expect((await usersOf(account)).map((u) => u.email)).toEqual([
      'client@acme.test',
      's00@acme.test',
      's01@acme.test',
      's02@acme.test',
      's03@acme.test',
      's04@acme.test',
    ]);
    const errors = (await service.errorFile(summary.csvImport.id))?.toString() ?? '';
    expect(errors.split('\r\n').filter((l) => l.includes('no paid seat free'))).toHaveLength(7);
  });

  it('locks the account only in batches that take seats', async () => {
    const account = await freshAccount();
    // Whether another transaction could lock the account row at the moment a batch is about to commit.
    // Every row a batch inserts refers to the account, and its foreign key holds a KEY SHARE lock on it
    // until commit (a plain FOR UPDATE waits for that, for one batch); anything stronger is the seats.
    const probe = async (file: string) => {
      const summary = await preview(account, file);
      expect((await service.start(orm.em.fork(), account, summary.csvImport.id, admin)).status).toBe(
        'started',
      );
      let seen = 'not run';
      await service.run(summary.csvImport.id, {
        beforeCommit: async () => {
          seen = await orm.em
            .fork()
            .transactional(async (tx) => {
              await tx
                .getConnection()
                .execute(
                  'select id from account where id = ? for no key update nowait',
                  [account.id],
                  'all',
                  tx.getTransactionContext(),
                );
              return 'free';
            })
            .catch((err: Error) => (/could not obtain lock/.test(err.message) ? 'locked' : err.message));
        },
      });
      return seen;
    };
    expect(await probe('first_name,email,company\nPlain,plain@acme.test,\n')).toBe('free');
    expect(await probe('first_name,email,send_invitation\nPaid,paid@acme.test,yes\n')).toBe('locked');
  });

  it('reports a row that fails at write time as that row, and writes the others', async () => {
    const account = await freshAccount();
    const summary = await preview(
      account,
      [
        'type,first_name,last_name,email,company,send_invitation',
        'contact,Ok,One,ok1@acme.test,,',
        'contact,Refused,Row,refused@acme.test,,',
        'contact,Ok,Two,ok2@acme.test,,',
        'user,Ivy,Inv,ivy@acme.test,,yes',
        'user,Lou,Locked,lou@acme.test,,no',
      ].join('\n'),
    );
    expect(summary.counts).toMatchObject({ create: 5, error: 0 });
    // Something the preview could not know: the database refuses one of the rows when it is written.
    const conn = orm.em.fork().getConnection();
    await conn.execute(`create function refuse_contact() returns trigger language plpgsql as $$
      begin
        if new.email = 'refused@acme.test' then raise exception 'contact refused by a rule'; end if;
        return new;
      end $$`);
    await conn.execute(
      'create trigger refuse_contact before insert on contact for each row execute function refuse_contact()',
    );
    const log = captureLog();
    try {
      expect((await service.start(orm.em.fork(), account, summary.csvImport.id, admin)).status).toBe(
        'started',
      );
      const done = await service.run(summary.csvImport.id, { log: log.logger });
      if (!done) throw new Error('the import did not finish');
      expect(done.counts).toMatchObject({ created: 4, failed: 1, failedInRun: 1, noSeat: 0, invited: 1 });
      // The admin reads what is wrong in plain words; the database's own words are in the log, under the
      // reference the row gives.
      const [error] = done.firstErrors;
      expect(error?.line).toBe(3);
      const ref = error?.reason.match(/\(reference (\w+)\)/)?.[1];
      expect(error?.reason).toBe(
        `could not be written: Roster refused one of its values (reference ${ref}). Check the row's values and import the error file again`,
      );
      expect(error?.reason).not.toContain('contact refused by a rule');
      const logged = log.entries().find((e) => e.ref === ref);
      expect(logged).toMatchObject({ line: 3, importId: summary.csvImport.id, err: { code: 'P0001' } });
      expect(JSON.stringify(logged)).toContain('contact refused by a rule');
    } finally {
      await conn.execute('drop trigger refuse_contact on contact');
      await conn.execute('drop function refuse_contact()');
    }
    expect(
      (await orm.em.fork().find(Contact, { account }, { orderBy: { email: 'asc' } })).map((c) => c.email),
    ).toEqual(['ok1@acme.test', 'ok2@acme.test']);
    expect((await usersOf(account)).map((u) => [u.email, u.status])).toEqual([
      ['ivy@acme.test', 'invited'],
      ['lou@acme.test', 'locked'],
    ]);
    expect(await orm.em.fork().count(Invitation, { account })).toBe(1);
    expect(await deliveryJobs(account)).toBe(1);
    expect(await service.errorFile(summary.csvImport.id).then((b) => b?.toString())).toContain(
      'refused@acme.test',
    );
  });
});
