import { readFileSync } from 'node:fs';
import pg from 'pg';
import type { ORM } from '../../../src/db/orm.ts';
import type { IAccount } from '../../../src/features/accounts/account.entity.ts';
import { AuditEvent } from '../../../src/features/audit/audit-event.entity.ts';
import { Contact } from '../../../src/features/contacts/contact.entity.ts';
import { ContactService } from '../../../src/features/contacts/contact.service.ts';
import { CsvImport, CsvImportRow } from '../../../src/features/csv-import/csv-import.entity.ts';
import {
  CsvImportService,
  type PreviewSummary,
} from '../../../src/features/csv-import/csv-import.service.ts';
import { Invitation } from '../../../src/features/invites/invitation.entity.ts';
import { InviteService } from '../../../src/features/invites/invite.service.ts';
import { PersonService } from '../../../src/features/people/person.service.ts';
import { User } from '../../../src/features/people/user.entity.ts';
import { type Actor, SEAT_JOBS, type SeatService } from '../../../src/features/seats/seat.service.ts';
import { SeatRequest } from '../../../src/features/seats/seat-request.entity.ts';
import { DomainError } from '../../../src/shared/errors.ts';
import { HandedBack, type JobQueue } from '../../../src/shared/jobs.ts';
import { eventually, jobsDrained } from '../../support/app.ts';
import { admin, type ImportTestbed, startImportTestbed } from './support.ts';

let bed: ImportTestbed;
let orm: ORM;
let jobs: JobQueue;
let seats: SeatService;
let service: CsvImportService;
const runJobs: string[] = [];
const deliveries: string[] = [];

const member: Actor = { slackUserId: 'UMEMBER', isAdmin: false, surface: 'slack' };

const fixture = (name: string) => readFileSync(new URL(`../../fixtures/csv/${name}`, import.meta.url));

beforeAll(async () => {
  bed = await startImportTestbed({
    onRun: (importId) => void runJobs.push(importId),
    onDeliver: (invitationId) => void deliveries.push(invitationId),
  });
  ({ orm, jobs, seats, service } = bed);
});
afterAll(() => bed.stop());

const freshAccount = (seatLimit = 100) => bed.freshAccount(seatLimit);
const preview = (
  account: IAccount,
  content: Buffer | string,
  name = 'people.csv',
  using = service,
): Promise<PreviewSummary> => bed.preview(account, content, { name, using });

async function rejection(account: IAccount, content: Buffer | string, name = 'people.csv') {
  const err = await preview(account, content, name).catch((e) => e);
  expect(err).toBeInstanceOf(DomainError);
  expect(err.code).toBe('file_rejected');
  return (err as DomainError).message;
}

async function importNow(account: IAccount, summary: PreviewSummary, using = service) {
  const started = await using.start(orm.em.fork(), account, summary.csvImport.id, admin);
  expect(started.status).toBe('started');
  const done = await using.run(summary.csvImport.id);
  if (!done) throw new Error('the import did not finish');
  return done;
}

const users = async (account: IAccount) =>
  (await orm.em.fork().find(User, { account })).sort((a, b) =>
    a.email.toLowerCase().localeCompare(b.email.toLowerCase()),
  );
const contacts = (account: IAccount) =>
  orm.em.fork().find(Contact, { account }, { orderBy: { name: 'asc' } });
const rowsOf = (importId: string) =>
  orm.em.fork().find(CsvImportRow, { csvImport: importId }, { orderBy: { line: 'asc' } });

describe('CSV preview', () => {
  it('decides every row and writes nothing to users or contacts', async () => {
    const account = await freshAccount();
    const summary = await preview(account, fixture('people.csv'));
    expect(summary.counts).toMatchObject({
      rows: 5,
      create: 5,
      update: 0,
      unchanged: 0,
      error: 0,
      users: 3,
      contacts: 2,
      seatsNeeded: 0,
    });
    expect(summary.csvImport.status).toBe('previewed');
    expect(summary.warnings).toEqual([]);
    expect(await users(account)).toHaveLength(0);
    expect(await contacts(account)).toHaveLength(0);
    const rows = await rowsOf(summary.csvImport.id);
    expect(rows.map((r) => [r.line, r.kind, r.outcome])).toEqual([
      [2, 'user', 'create'],
      [3, 'user', 'create'],
      [4, 'user', 'create'],
      [5, 'contact', 'create'],
      [6, 'contact', 'create'],
    ]);
  });

  it('reads a UTF-8 file with a byte order mark', async () => {
    const account = await freshAccount();
    const summary = await preview(account, fixture('bom.csv'));
    expect(summary.counts).toMatchObject({ rows: 1, create: 1, error: 0 });
    expect(summary.warnings).toEqual([]);
    const [row] = await rowsOf(summary.csvImport.id);
    expect(row?.data).toMatchObject({ email: 'bom@acme.test', firstName: 'Bom' });
  });

  it('reads Windows-1252 when the bytes are not UTF-8', async () => {
    const account = await freshAccount();
    const summary = await preview(account, fixture('windows-1252.csv'));
    const [row] = await rowsOf(summary.csvImport.id);
    expect(row?.data).toMatchObject({ firstName: 'José', lastName: 'Müller', title: 'Café € manager' });
  });

  it('reads CRLF line endings without stray carriage returns', async () => {
    const account = await freshAccount();
    const summary = await preview(account, fixture('crlf.csv'));
    expect(summary.counts).toMatchObject({ rows: 2, create: 2, error: 0 });
    const rows = await rowsOf(summary.csvImport.id);
    expect(rows.map((r) => r.data.email)).toEqual(['carl@acme.test', 'cora@acme.test']);
    expect(rows.map((r) => r.line)).toEqual([2, 3]);
  });

  it('keeps commas and line breaks inside quoted cells and numbers the lines after them', async () => {
    const account = await freshAccount();
    const summary = await preview(account, fixture('quoted-newlines.csv'));
    const rows = await rowsOf(summary.csvImport.id);
    expect(rows[0]?.data).toMatchObject({
      company: 'Quote, Comma & Co',
      notes: 'first line\nsecond line, with a comma\nthird "quoted" line',
    });
    // The first row spans lines 2 to 4, so the next starts on line 5.
    expect(rows.map((r) => r.line)).toEqual([2, 5, 6]);
    expect(summary.firstErrors).toEqual([
      { line: 6, reason: 'email "not-an-email" is not a valid email address' },
    ]);
  });

  it('reads a short row as its trailing cells empty, turns a long one into a row error and reads the rest', async () => {
    const account = await freshAccount();
    const summary = await preview(account, fixture('ragged.csv'));
    expect(summary.counts).toMatchObject({ rows: 4, create: 2, error: 2 });
    expect(summary.firstErrors).toEqual([
      // Three cells of four: the missing one is the email, and a user needs one.
      { line: 3, reason: 'a user needs an email' },
      { line: 4, reason: 'has 5 cells but the header has 4 columns (an extra comma?)' },
    ]);
  });

  it('reads a row whose exporter dropped its empty trailing cells', async () => {
    const account = await freshAccount();
    const summary = await preview(
      account,
      'email,first_name,last_name,role\njane@acme.test,Jane\njon@acme.test,Jon,Lee\nkim@acme.test,Kim,Ode,client\n',
    );
    expect(summary.counts).toMatchObject({ rows: 3, create: 3, error: 0 });
    const rows = await rowsOf(summary.csvImport.id);
    expect(rows.map((r) => [r.line, r.data.email, r.data.firstName, r.data.lastName, r.data.role])).toEqual([
      [2, 'jane@acme.test', 'Jane', null, 'employee'],
      [3, 'jon@acme.test', 'Jon', 'Lee', 'employee'],
      [4, 'kim@acme.test', 'Kim', 'Ode', 'client'],
    ]);
  });

  it('rejects a file whose quote is never closed, naming the line, and keeps nothing of it', async () => {
    const account = await freshAccount();
    const { csvImport } = await service.begin(orm.em.fork(), account, {
      uploadedBy: 'UADMIN',
      fileName: 'open.csv',
      fileId: 'FOPEN',
    });
    const err = await service.preview(csvImport.id, fixture('unclosed-quote.csv')).catch((e) => e);
    expect(err).toBeInstanceOf(DomainError);
    expect(err.message).toBe(
      'Line 3 opens a quoted cell (") that is never closed, so the rest of the file cannot be read. Add the missing " and upload the file again.',
    );
    const stored = await orm.em.fork().findOneOrFail(CsvImport, csvImport.id);
    expect(stored.status).toBe('failed');
    expect(stored.error).toBe(err.message);
  });

  it('rejects an empty file, a header without rows and a file missing a required column', async () => {
    const account = await freshAccount();
    expect(await rejection(account, fixture('empty.csv'), 'empty.csv')).toBe(
      'empty.csv is empty. Download a template to start.',
    );
    expect(await rejection(account, fixture('header-only.csv'), 'header.csv')).toBe(
      'header.csv has a header but no rows: add one row per person below it.',
    );
    expect(await rejection(account, fixture('missing-email.csv'))).toBe(
      'The file has no email column. The first row must name the columns; download a template to see them.',
    );
    expect(await rejection(account, 'email,role\na@acme.test,employee\n')).toContain(
      'no first_name (or last_name) column',
    );
  });

  it('rejects a binary file even when it is named .csv', async () => {
    const account = await freshAccount();
    const zip = Buffer.from([0x50, 0x4b, 0x03, 0x04, 0x14, 0x00, 0x06, 0x00]);
    expect(await rejection(account, zip, 'workbook.csv')).toContain('workbook.csv is not a CSV file');
  });

  it('matches headers whatever their case and spaces, and names unknown columns in a warning', async () => {
    const account = await freshAccount();
    const summary = await preview(account, fixture('unknown-column.csv'));
    expect(summary.warnings).toEqual([
      'Ignored 2 columns Roster does not know: Favourite Colour, shoe size.',
    ]);
    expect(summary.counts).toMatchObject({ rows: 1, create: 1, error: 0 });
    const [row] = await rowsOf(summary.csvImport.id);
    expect(row?.data).toMatchObject({ email: 'una.known@acme.test', firstName: 'Una', lastName: 'Known' });
  });

  it('reads the separator from the "sep=;" line Excel writes and reads, numbering lines as in the file', async () => {
    const account = await freshAccount();
    const summary = await preview(
      account,
      '\uFEFFsep=;\r\nfirst_name;last_name;email;company\r\nAnn;Öz;ann@acme.test;Acme, Inc.\r\nBo;Ek;not-an-email;\r\n',
    );
    expect(summary.counts).toMatchObject({ rows: 2, create: 1, error: 1 });
    expect(summary.firstErrors).toEqual([
      { line: 4, reason: 'email "not-an-email" is not a valid email address' },
    ]);
    const [ann] = await rowsOf(summary.csvImport.id);
    expect(ann?.data).toMatchObject({ firstName: 'Ann', lastName: 'Öz', company: 'Acme, Inc.' });
    expect(summary.csvImport.columns).toEqual(['first_name', 'last_name', 'email', 'company']);
  });

  it('refuses a phone number Excel turned into scientific notation, whose digits are lost', async () => {
    const account = await freshAccount();
    const summary = await preview(
      account,
      'first_name;email;phone\nAnn;ann@acme.test;4,93012E+11\nBo;bo@acme.test;1.5E+10\nCy;cy@acme.test;+49 30 1234567\n',
    );
    expect(summary.counts).toMatchObject({ rows: 3, create: 1, error: 2 });
    expect(summary.firstErrors.map((e) => e.line)).toEqual([2, 3]);
    expect(summary.firstErrors[0]?.reason).toBe(
      'phone "4,93012E+11" is a number Excel wrote in scientific notation, which loses digits: format the phone column as Text in Excel, enter the numbers again and save the file again',
    );
  });

  it('gives every bad value a reason', async () => {
    const account = await freshAccount();
    const summary = await preview(account, fixture('bad-emails.csv'));
    expect(summary.counts).toMatchObject({ rows: 5, create: 1, error: 4 });
    expect(summary.firstErrors).toEqual([
      { line: 3, reason: 'email "no-at-sign.acme.test" is not a valid email address' },
      { line: 4, reason: 'email "two@@acme.test" is not a valid email address' },
      { line: 5, reason: 'a user needs an email' },
      {
        line: 6,
        reason:
          'role "boss" is not one of employee, contractor, client; send_invitation "maybe" is not yes or no',
      },
    ]);
  });

  it('refuses a permission set the account does not have, naming the ones it has', async () => {
    const account = await freshAccount();
    const summary = await preview(
      account,
      'first_name,email,permission_set\nPat,pat@acme.test,Wizards\nSam,sam@acme.test,manager\n',
    );
    expect(summary.firstErrors).toEqual([
      {
        line: 2,
        reason: 'permission set "Wizards" does not exist; the sets are Admin, Client, Manager, Member',
      },
    ]);
    expect(summary.counts).toMatchObject({ create: 1, error: 1 });
  });

  it('finds duplicate emails in the file and against the database, whatever their case and spaces', async () => {
    const account = await freshAccount();
    const em = orm.em.fork();
    em.create(User, { account, email: 'Existing@Acme.test', role: 'employee', status: 'locked' });
    em.create(User, { account, email: 'owner@acme.test', role: 'employee', status: 'active' });
    await em.flush();
    const summary = await preview(account, fixture('duplicates.csv'));
    expect(summary.counts).toMatchObject({ rows: 5, create: 1, update: 1, error: 3 });
    expect(summary.firstErrors).toEqual([
      { line: 3, reason: 'email DEE@Acme.Test is also on line 2' },
      { line: 4, reason: 'email dee@ACME.test is also on line 2' },
      {
        line: 6,
        reason:
          'OWNER@acme.test is already a user in Roster (contacts are people without a login); make the row a user to update them',
      },
    ]);
    const rows = await rowsOf(summary.csvImport.id);
    expect(rows.find((r) => r.line === 5)?.outcome).toBe('update');

    await importNow(account, summary);
    const all = await users(account);
    expect(all.map((u) => [u.email, u.firstName])).toEqual([
      ['dee@acme.test', 'Dee'],
      ['Existing@Acme.test', 'Existing'],
      ['owner@acme.test', null],
    ]);
    expect(await contacts(account)).toHaveLength(0);
  });

  it('escapes cells that would run as formulas in the error file', async () => {
    const account = await freshAccount();
    const summary = await preview(account, fixture('formula.csv'));
    expect(summary.counts.error).toBe(3);
    const file = (await service.errorFile(summary.csvImport.id))?.toString('utf8') ?? '';
    expect(file.startsWith('\ufefftype,first_name,last_name,email,notes,line,reason\r\n')).toBe(true);
    const lines = file.slice(1).split('\r\n');
    expect(lines[1]).toBe(
      `user,Eve,Formula,not an email,"'=HYPERLINK(""http://evil.test"",""click"")",2,"email ""not an email"" is not a valid email address"`,
    );
    expect(lines[2]).toBe(
      `user,Tab,Cell,also bad,'\t=1+2,3,"email ""also bad"" is not a valid email address"`,
    );
    expect(lines[3]).toBe(`user,Plus,Cell,'+bad,'@SUM(A1),4,"email ""+bad"" is not a valid email address"`);
    expect(file).not.toMatch(/(^|,)"?[=+@\t-]/m);
  });

  it('keeps every cell of a row with too many in the error file, after its reason', async () => {
    const account = await freshAccount();
    // An unquoted comma in a company name splits it in two: the error file must still hold both halves.
    const summary = await preview(
      account,
      'email,first_name,company\npia@acme.test,Pia,Pia, GmbH & Co,\nota@acme.test,Ota,Ota KG\n',
    );
    expect(summary.firstErrors).toEqual([
      { line: 2, reason: 'has 5 cells but the header has 3 columns (an extra comma?)' },
    ]);
    const file = (await service.errorFile(summary.csvImport.id))?.toString('utf8') ?? '';
    expect(file.slice(1).split('\r\n')).toEqual([
      'email,first_name,company,line,reason',
      'pia@acme.test,Pia,Pia,2,has 5 cells but the header has 3 columns (an extra comma?),GmbH & Co',
      '',
    ]);
    // Dropped again unfixed, the row is still in error rather than imported without its second half.
    const again = await preview(account, file);
    expect(again.counts).toMatchObject({ rows: 1, create: 0, error: 1 });
  });
});

describe('CSV import', () => {
  it('imports users locked and contacts, links a contact to its user and records one audit event', async () => {
    const account = await freshAccount(0);
    const em = orm.em.fork();
    em.create(Contact, { account, name: 'Ada L.', email: 'ADA@acme.test' });
    await em.flush();
    const summary = await preview(account, fixture('people.csv'));
    const done = await importNow(account, summary);
    expect(done.counts).toMatchObject({ created: 5, updated: 0, kept: 0, failed: 0, invited: 0 });
    expect(done.csvImport.status).toBe('completed');

    const all = await users(account);
    expect(all.map((u) => [u.email, u.role, u.status, u.firstName])).toEqual([
      ['ada@acme.test', 'employee', 'locked', 'Ada'],
      ['grace@acme.test', 'contractor', 'locked', 'Grace'],
      ['katherine@acme.test', 'client', 'locked', 'Katherine'],
    ]);
    expect((await seats.usage(orm.em.fork(), account)).used).toBe(0);
    const people = await contacts(account);
    expect(people.map((c) => [c.name, c.email, c.company, c.user?.id ?? null])).toEqual([
      ['Ada L.', 'ADA@acme.test', null, all[0]?.id],
      ['Alan Turing', 'alan@bletchley.test', 'Bletchley Ltd', null],
      ['Joan Clarke', null, 'Bletchley Ltd', null],
    ]);
    const events = await orm.em
      .fork()
      .find(AuditEvent, { account, action: 'csv_import.completed', subjectId: summary.csvImport.id });
    expect(events).toHaveLength(1);
    expect(events[0]?.data).toMatchObject({ fileName: 'people.csv', rows: 5, created: 5, failed: 0 });
    const perPerson = await orm.em
      .fork()
      .find(AuditEvent, { account, action: { $in: ['user.imported', 'contact.imported'] } });
    expect(perPerson.map((e) => e.action).sort()).toEqual([
      'contact.imported',
      'contact.imported',
      'user.imported',
      'user.imported',
      'user.imported',
    ]);
  });

  it('changes nothing when the same file is imported again', async () => {
    const account = await freshAccount();
    await importNow(account, await preview(account, fixture('people.csv')));
    const before = {
      users: (await users(account)).map((u) => ({ ...u, account: undefined })),
      contacts: (await contacts(account)).map((c) => ({ ...c, account: undefined })),
    };
    const again = await preview(account, fixture('people.csv'));
    expect(again.counts).toMatchObject({ rows: 5, create: 0, update: 0, unchanged: 5, error: 0 });
    const done = await importNow(account, again);
    expect(done.counts).toMatchObject({ created: 0, updated: 0, kept: 5 });
    expect((await users(account)).map((u) => ({ ...u, account: undefined }))).toEqual(before.users);
    expect((await contacts(account)).map((c) => ({ ...c, account: undefined }))).toEqual(before.contacts);
  });

  it('closes a preview with nothing to import, audited as not imported when rows are in error', async () => {
    const account = await freshAccount();
    const closed = async (content: string) => {
      const summary = await preview(account, content);
      expect(await service.completeUnchanged(summary.csvImport.id)).toBe(true);
      const events = await orm.em.fork().find(AuditEvent, { account, subjectId: summary.csvImport.id });
      return {
        counts: summary.counts,
        events: events.map((e) => [e.action, e.data.reason, e.data.nothingToChange]),
      };
    };
    // Every row in error.
    const broken = await closed('first_name,email\nBad,not-an-email\nWorse,also bad\n');
    expect(broken.counts).toMatchObject({ create: 0, update: 0, unchanged: 0, error: 2 });
    expect(broken.events).toEqual([['csv_import.not_imported', 'every row in error', undefined]]);
    // Some rows already in Roster as the file has them, the rest in error: not imported either.
    await importNow(account, await preview(account, 'first_name,email\nKept,kept@acme.test\n'));
    const mixed = await closed('first_name,email\nKept,kept@acme.test\nBad,not-an-email\n');
    expect(mixed.counts).toMatchObject({ create: 0, update: 0, unchanged: 1, error: 1 });
    expect(mixed.events).toEqual([
      ['csv_import.not_imported', 'rows in error, the others unchanged', undefined],
    ]);
    // Every row unchanged: completed, with nothing to change.
    const same = await closed('first_name,email\nKept,kept@acme.test\n');
    expect(same.events).toEqual([['csv_import.completed', undefined, true]]);
  });

  it('updates what changed, leaves empty cells alone and never changes a role', async () => {
    const account = await freshAccount();
    await importNow(account, await preview(account, fixture('people.csv')));
    const summary = await preview(
      account,
      [
        'type,first_name,last_name,email,role,title,company,phone',
        'user,Ada,Lovelace,ada@acme.test,,Chief Engineer,,',
        'user,Grace,Hopper,grace@acme.test,employee,,,',
        'contact,Joan,Clarke,,,,Bletchley Ltd,+44 1908 640404',
      ].join('\n'),
    );
    expect(summary.counts).toMatchObject({ update: 2, error: 1 });
    expect(summary.firstErrors).toEqual([
      {
        line: 3,
        reason: 'is already a contractor in Roster; the import does not change roles (change it in Roster)',
      },
    ]);
    await importNow(account, summary);
    const ada = (await users(account)).find((u) => u.email === 'ada@acme.test');
    expect([ada?.title, ada?.phone]).toEqual(['Chief Engineer', '+44 20 7946 0001']);
    const joan = (await contacts(account)).filter((c) => c.name === 'Joan Clarke');
    expect(joan.map((c) => [c.phone, c.notes])).toEqual([
      ['+44 1908 640404', 'No email: matched on name and company'],
    ]);
  });

  it('invites rows that ask for it through the seat rules, and turns rows without a seat into errors', async () => {
    const account = await freshAccount(1);
    const summary = await preview(
      account,
      [
        'first_name,last_name,email,role,send_invitation',
        'Ivy,Invited,ivy@acme.test,employee,yes',
        'Noel,NoSeat,noel@acme.test,contractor,yes',
        'Cleo,Client,cleo@acme.test,client,yes',
      ].join('\n'),
    );
    expect(summary.counts).toMatchObject({ create: 3, seatsNeeded: 2, invitations: 3 });
    expect(summary.seats).toEqual({ used: 0, limit: 1, free: 1 });

    const done = await importNow(account, summary);
    expect(done.counts).toMatchObject({ created: 2, failed: 1, noSeat: 1, invited: 2 });
    expect(done.firstErrors).toEqual([
      {
        line: 3,
        reason:
          'no paid seat free (1 of 1 used), so noel@acme.test was not imported; raise the limit with /seats and import the error file',
      },
    ]);
    const all = await users(account);
    expect(all.map((u) => [u.email, u.status])).toEqual([
      ['cleo@acme.test', 'invited'],
      ['ivy@acme.test', 'invited'],
    ]);
    const invitations = await orm.em.fork().find(Invitation, { account });
    expect(invitations).toHaveLength(2);
    const imported = await orm.em.fork().find(AuditEvent, { account, action: 'user.imported' });
    expect(imported.map((e) => e.data.email).sort()).toEqual(['cleo@acme.test', 'ivy@acme.test']);
    expect((await service.errorFile(summary.csvImport.id))?.toString()).toContain('noel@acme.test');
  });

  it('unlocks and invites a locked user when a later file asks for an invitation', async () => {
    const account = await freshAccount(5);
    await importNow(account, await preview(account, 'first_name,email\nLou,lou@acme.test\n'));
    const summary = await preview(account, 'first_name,email,send_invitation\nLou,lou@acme.test,yes\n');
    expect(summary.counts).toMatchObject({ update: 1, seatsNeeded: 1, invitations: 1 });
    await importNow(account, summary);
    const [lou] = await users(account);
    expect(lou?.status).toBe('invited');
    expect((await seats.usage(orm.em.fork(), account)).used).toBe(1);
    const again = await preview(account, 'first_name,email,send_invitation\nLou,lou@acme.test,yes\n');
    expect(again.counts).toMatchObject({ unchanged: 1, seatsNeeded: 0, invitations: 0 });
  });

  it('starts once however often Import is clicked, and only for admins', async () => {
    const account = await freshAccount();
    const summary = await preview(account, fixture('crlf.csv'));
    const id = summary.csvImport.id;
    await expect(service.start(orm.em.fork(), account, id, member)).rejects.toThrow(
      'Only admins can import people from a CSV file.',
    );
    const results = await Promise.all([1, 2, 3].map(() => service.start(orm.em.fork(), account, id, admin)));
    expect(results.map((r) => r.status).sort()).toEqual(['started', 'unchanged', 'unchanged']);
    await jobsDrained(orm.em);
    expect(runJobs.filter((j) => j === id)).toHaveLength(1);
    expect((await service.cancel(orm.em.fork(), account, id, admin)).status).toBe('unchanged');
  });

  it('decides a preview again from its rows, once, when another import was applied after it', async () => {
    const account = await freshAccount();
    const older = await preview(
      account,
      [
        'email,first_name,title,role,permission_set',
        'ann@acme.test,Ann,Enginer,,',
        'bob@acme.test,Bob,,,Wizards',
        'ann@acme.test,Ann,Engineer,,',
        'cat@acme.test,Cat,,employee,',
      ].join('\n'),
      'typo.csv',
    );
    expect(older.counts).toMatchObject({ create: 2, update: 0, error: 2 });
    const id = older.csvImport.id;
    const newer = await preview(
      account,
      'email,first_name,title,role\nann@acme.test,Ann,Engineer,\ncat@acme.test,Cat,,contractor\n',
      'fixed.csv',
    );
    const started = await service.start(orm.em.fork(), account, newer.csvImport.id, admin);
    expect(started.status).toBe('started');

    // The newer import is under way: the older preview is not started, but checked again, and says so.
    const during = await service.start(orm.em.fork(), account, id, admin, 0);
    expect(during).toMatchObject({ status: 'checking', after: ['fixed.csv'], running: true });
    expect(await service.recheck(id, 1)).toMatchObject({
      status: 'rechecked',
      after: ['fixed.csv'],
      running: true,
    });
    expect(await service.run(newer.csvImport.id)).not.toBeNull();

    // Import clicked three times on the preview as it was: to be checked again once, started never.
    const clicks = await Promise.all(
      [1, 2, 3].map(() => service.start(orm.em.fork(), account, id, admin, 2)),
    );
    expect(clicks.map((r) => r.status).sort()).toEqual(['checking', 'outdated', 'outdated']);
    // The job checking it, run three times at once (retries, a second worker): checked again once.
    const checks = await Promise.all([1, 2, 3].map(() => service.recheck(id, 3)));
    expect(checks.filter((c) => c !== null)).toEqual([
      { status: 'rechecked', after: ['fixed.csv'], running: false, errorsChanged: true },
    ]);
    await jobsDrained(orm.em);
    expect(runJobs).not.toContain(id);
    const rechecked = await service.summary(orm.em.fork(), id);
    expect(rechecked.csvImport).toMatchObject({ status: 'previewed', previewRevision: 4 });
    // Ann is now in Roster with the newer title, Cat as a contractor; the errors found reading the file stay.
    expect(rechecked.counts).toMatchObject({ rows: 4, create: 0, update: 1, unchanged: 0, error: 3 });
    expect(rechecked.firstErrors.map((e) => [e.line, e.reason.slice(0, 30)])).toEqual([
      [3, 'permission set "Wizards" does '],
      [4, 'email ann@acme.test is also on'],
      [5, 'is already a contractor in Ros'],
    ]);
    const byEmail = async () => new Map((await users(account)).map((u) => [u.email, u]));
    expect((await byEmail()).get('ann@acme.test')?.title).toBe('Engineer');

    // Imported as checked again, by the admin who saw it: Ann's title is what this file says.
    expect((await service.start(orm.em.fork(), account, id, admin, 4)).status).toBe('started');
    expect((await service.run(id))?.counts).toMatchObject({ updated: 1, created: 0, failed: 3 });
    const after = await byEmail();
    expect([...after.keys()].sort()).toEqual(['ann@acme.test', 'cat@acme.test']);
    expect(after.get('ann@acme.test')?.title).toBe('Enginer');
    expect(after.get('cat@acme.test')?.role).toBe('contractor');
  });

  it('checks a preview again when people or contacts it names changed by hand after it, and says while it is checked', async () => {
    const account = await freshAccount();
    const people = new PersonService(seats);
    const contactService = new ContactService(seats, jobs);
    await importNow(
      account,
      await preview(account, 'email,first_name,title\nivy@acme.test,Ivy,Chef\n', 'ivy.csv'),
    );
    const ivy = (await users(account))[0];
    if (!ivy) throw new Error('Ivy was not imported');

    // An admin edits Ivy's card after the preview that would make her a cook: the preview is stale.
    const cook = await preview(account, 'email,first_name,title\nivy@acme.test,Ivy,Cook\n', 'cook.csv');
    await people.editDetails(orm.em.fork(), account, admin, ivy.id, { firstName: 'Ivy', title: 'Baker' });
    const edited = await service.start(orm.em.fork(), account, cook.csvImport.id, admin, 0);
    expect(edited).toMatchObject({ status: 'checking', after: [], running: false });
    // An older click while the check is not done says so; once done, that it was done.
    expect(await service.start(orm.em.fork(), account, cook.csvImport.id, admin, 0)).toMatchObject({
      status: 'outdated',
      checking: true,
    });
    expect(await service.recheck(cook.csvImport.id, 1)).toMatchObject({ status: 'rechecked', after: [] });
    expect(await service.start(orm.em.fork(), account, cook.csvImport.id, admin, 0)).toMatchObject({
      status: 'outdated',
      checking: false,
    });
    // Checked again against Ivy as the admin left her: nothing else changed, so it starts.
    expect((await service.start(orm.em.fork(), account, cook.csvImport.id, admin, 2)).status).toBe('started');
    await service.run(cook.csvImport.id);

    // A contact added by hand after a preview makes it stale too.
    const named = await preview(account, 'type,first_name,email\ncontact,Oli,oli@acme.test\n', 'oli.csv');
    await contactService.add(orm.em.fork(), account, admin, {
      name: 'Oli',
      email: 'oli@acme.test',
      phone: null,
      company: null,
      title: null,
      notes: null,
    });
    expect((await service.start(orm.em.fork(), account, named.csvImport.id, admin, 0)).status).toBe(
      'checking',
    );

    // Ivy's email changed after a preview that matched her by it: stale, though the file no longer names her.
    const moved = await preview(account, 'email,first_name,title\nivy@acme.test,Ivy,Cook\n', 'moved.csv');
    const card = orm.em.fork();
    (await card.findOneOrFail(User, ivy.id)).email = 'ivy.m@acme.test';
    await card.flush();
    expect((await service.start(orm.em.fork(), account, moved.csvImport.id, admin, 0)).status).toBe(
      'checking',
    );

    // In a large account people join and change all day: those the file does not name leave it as it is.
    const quiet = await preview(account, 'email,first_name\nuli@acme.test,Uli\n', 'uli.csv');
    const em = orm.em.fork();
    em.create(User, { account, email: 'new.joiner@acme.test', role: 'employee', status: 'active' });
    await em.flush();
    await people.editDetails(orm.em.fork(), account, admin, ivy.id, { firstName: 'Ivy', title: 'Chef' });
    expect((await service.start(orm.em.fork(), account, quiet.csvImport.id, admin, 0)).status).toBe(
      'started',
    );
  });

  it('stops saying a preview is being checked once its check is given up, and Import tries again', async () => {
    const account = await freshAccount();
    await importNow(account, await preview(account, 'email,first_name\nkim@acme.test,Kim\n', 'kim.csv'));
    const later = await preview(account, 'email,first_name\nkim@acme.test,Kimberly\n', 'kim-2.csv');
    const id = later.csvImport.id;
    await orm.em
      .fork()
      .getConnection()
      .execute(`update app_user set first_name = 'K.' where email = 'kim@acme.test'`);
    expect((await service.start(orm.em.fork(), account, id, admin, 0)).status).toBe('checking');
    await service.checkGivenUp(id, 1);
    expect(await service.start(orm.em.fork(), account, id, admin, 0)).toMatchObject({
      status: 'outdated',
      checking: false,
    });
    // The preview shown again as it was carries revision 1: Import on it has it checked once more.
    expect((await service.start(orm.em.fork(), account, id, admin, 1)).status).toBe('checking');
  });

  it('starts a preview made after the last import without checking it again', async () => {
    const account = await freshAccount();
    await importNow(account, await preview(account, 'email,first_name\ndee@acme.test,Dee\n', 'a.csv'));
    const later = await preview(account, 'email,first_name\ndee@acme.test,Deedee\n', 'b.csv');
    expect((await service.start(orm.em.fork(), account, later.csvImport.id, admin, 0)).status).toBe(
      'started',
    );
  });

  it('finishes an import killed or stopped half way, with no duplicate and no lost row', async () => {
    const account = await freshAccount();
    const small = new CsvImportService({ orm, jobs, seats, batchSize: 10 });
    const lines = ['type,first_name,last_name,email,company'];
    for (let i = 0; i < 25; i++) lines.push(`user,User,${i},user${i}@acme.test,`);
    for (let i = 0; i < 20; i++) lines.push(`contact,Contact,${i},,Co ${i % 3}`);
    const summary = await preview(account, lines.join('\n'), 'big.csv', small);
    const id = summary.csvImport.id;
    expect((await small.start(orm.em.fork(), account, id, admin)).status).toBe('started');

    // The process dies after two batches...
    expect(await small.run(id, { maxBatches: 2 })).toBeNull();
    expect(await small.progress(id)).toEqual({ done: 20, total: 45 });
    // ...and the run that picks it up dies in the middle of its second batch, which is rolled back.
    const failing = small.run(id, {
      beforeCommit: (batch) => {
        if (batch === 1) throw new Error('killed');
      },
    });
    await expect(failing).rejects.toThrow('killed');
    expect(await small.progress(id)).toEqual({ done: 30, total: 45 });
    expect((await orm.em.fork().findOneOrFail(CsvImport, id)).status).toBe('importing');
    expect(await small.unfinished()).toContain(id);
    // ...and the next is handed back by a stop after one batch: it ends before the batch that follows.
    const stop = new AbortController();
    let reports = 0;
    const stopped = small.run(id, { signal: stop.signal, onProgress: () => ++reports === 2 && stop.abort() });
    await expect(stopped).rejects.toBeInstanceOf(HandedBack);
    expect(await small.progress(id)).toEqual({ done: 40, total: 45 });

    const progress: number[] = [];
    const done = await small.run(id, { onProgress: (d) => progress.push(d) });
    expect(progress).toEqual([40, 45]);
    expect(done?.counts).toMatchObject({ created: 45, failed: 0 });
    expect(await users(account)).toHaveLength(25);
    expect(await contacts(account)).toHaveLength(20);
    expect(await small.progress(id)).toEqual({ done: 45, total: 45 });
    expect((await rowsOf(id)).filter((r) => r.result !== null)).toEqual([]); // all as previewed
    expect(
      await orm.em.fork().count(AuditEvent, { account, action: 'csv_import.completed', subjectId: id }),
    ).toBe(1);
    // Running it yet again does nothing.
    expect(await small.run(id)).toBeNull();
    expect(await users(account)).toHaveLength(25);
  });

  it('reads the same Slack file once', async () => {
    const account = await freshAccount();
    const input = { uploadedBy: 'UADMIN', fileName: 'a.csv', fileId: 'FSAME' };
    const first = await service.begin(orm.em.fork(), account, input);
    const second = await service.begin(orm.em.fork(), account, input);
    expect([first.duplicate, second.duplicate]).toEqual([false, true]);
    expect(second.csvImport.id).toBe(first.csvImport.id);
  });
});

describe('an import batch, and a contact of its file converted, invited or approved by hand at the same moment', () => {
  /** Waits until `n` sessions of this database wait on a lock. */
  async function waiting(c: pg.Client, n: number) {
    await eventually(async () => {
      await c.query('select pg_stat_clear_snapshot()');
      const { rows } = await c.query(
        `select count(*)::int as n from pg_stat_activity where datname = current_database() and wait_event_type = 'Lock'`,
      );
      return rows[0].n >= n;
    });
  }

  it.each(['converted', 'invited', 'approved'] as const)(
    'both finish when the contact is %s: the batch takes the contact before the seats, the other the other way round',
    async (how) => {
      const account = await freshAccount(100);
      const em = orm.em.fork();
      const contact = em.create(Contact, { account, name: 'Old Name', email: 'cleo@partner.test' });
      await em.flush();
      const summary = await preview(
        account,
        'type,first_name,last_name,email,role,permission_set,title,company,phone,notes,send_invitation\n' +
          'contact,New,Name,cleo@partner.test,,,,,,,\n' +
          'user,Ivy,Newcomer,ivy@acme.test,employee,,,,,,yes\n',
      );
      expect((await service.start(orm.em.fork(), account, summary.csvImport.id, admin)).status).toBe(
        'started',
      );
      const contactService = new ContactService(seats, jobs);
      const inviteService = new InviteService(seats, jobs);
      const employee = { role: 'employee' as const, sendNow: false };
      // A manager's invitation of the contact's address, waiting for an admin's approval.
      let requested: string | undefined;
      if (how === 'approved') {
        seats.register('invite', inviteService.seatFlow());
        for (const name of [SEAT_JOBS.postRequest, SEAT_JOBS.requestDecided]) {
          if (!jobs.has(name)) await jobs.define(name, async () => {});
        }
        const [asked] = await inviteService.invite(orm.em.fork(), account, member, {
          emails: ['cleo@partner.test'],
          ...employee,
        });
        expect(asked?.result).toBe('requested');
        requested = (await orm.em.fork().findOneOrFail(SeatRequest, { account, email: 'cleo@partner.test' }))
          .id;
      }
      // Another admin's /seats holds the account's seats a moment: the other queues for them first, and
      // the batch reaches them holding the contact.
      const gate = new pg.Client({ connectionString: bed.db.url });
      await gate.connect();
      try {
        await gate.query('begin');
        await gate.query('select id from account where id = $1 for no key update', [account.id]);
        const outcome = (p: Promise<unknown>) =>
          p.then(
            () => 'done',
            (err: Error) => err.message.split('\n')[0],
          );
        const converting = outcome(
          how === 'converted'
            ? contactService.convert(orm.em.fork(), account, admin, contact.id, employee)
            : how === 'invited'
              ? inviteService.invite(orm.em.fork(), account, admin, {
                  emails: ['cleo@partner.test'],
                  ...employee,
                })
              : seats.decide(orm.em.fork(), account, {
                  requestId: requested!,
                  actor: admin,
                  decision: 'approve',
                }),
        );
        await waiting(gate, 1);
        const importing = outcome(service.run(summary.csvImport.id));
        await waiting(gate, 2);
        await gate.query('commit');
        expect(await Promise.all([converting, importing])).toEqual(['done', 'done']);
      } finally {
        await gate.end();
      }
      const users = await orm.em
        .fork()
        .find(User, { account, email: { $in: ['cleo@partner.test', 'ivy@acme.test'] } });
      expect(users.map((u) => u.email).sort()).toEqual(['cleo@partner.test', 'ivy@acme.test']);
    },
    30_000,
  );
});
