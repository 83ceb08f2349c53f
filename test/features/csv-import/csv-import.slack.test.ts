import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { query, sql } from '../../../src/db/sql.ts';
import { AuditEvent } from '../../../src/features/audit/audit-event.entity.ts';
import { Contact } from '../../../src/features/contacts/contact.entity.ts';
import { CsvImport } from '../../../src/features/csv-import/csv-import.entity.ts';
import { BATCH_SIZE } from '../../../src/features/csv-import/csv-import.service.ts';
import { csvImports } from '../../../src/features/csv-import/index.ts';
import { downloadSlackFile } from '../../../src/features/csv-import/slack/download.ts';
import { Invitation } from '../../../src/features/invites/invitation.entity.ts';
import { User } from '../../../src/features/people/user.entity.ts';
import { eventually, jobsDrained, startTestApp, type TestApp } from '../../support/app.ts';
import type { PostedMessage } from '../../support/slack-standin.ts';
import { textOf } from '../../support/views.ts';

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp({ seatLimit: 10 });
});
afterAll(() => t.stop());

const fixture = (name: string) => readFileSync(new URL(`../../fixtures/csv/${name}`, import.meta.url));

let fileNo = 0;
function addFile(
  name: string,
  content: Buffer | string,
  opts: { size?: number; user?: string; external?: string } = {},
) {
  return t.standin.addFile({ id: `F${String(++fileNo).padStart(6, '0')}`, name, content, ...opts });
}

/** Drops a file in the bot's DM, as Slack reports it: a message event with subtype file_share. */
function shareInDm(user: string, file: ReturnType<typeof addFile>) {
  return t.slack.fileShare(user, file);
}

/** The message as it stands now: the last post or update with that channel and ts. */
function current(channel: string, ts: string): PostedMessage {
  const versions = t.standin.messages.filter((m) => m.channel === channel && m.ts === ts);
  const last = versions.at(-1);
  if (!last) throw new Error(`no message ${ts} in ${channel}`);
  return last;
}

/** Waits until the message that said "Reading <file>…" turns into something matching `pattern`. */
async function readingOutcome(fileName: string, pattern: RegExp, channel = 'DUADMIN') {
  const reading = await eventually(() =>
    t.standin.messages.find(
      (m) =>
        m.method === 'chat.postMessage' && m.channel === channel && m.text?.includes(`Reading ${fileName}`),
    ),
  );
  return eventually(() => {
    const now = current(channel, reading.ts);
    return pattern.test(textOf(now)) ? now : undefined;
  }, 10_000);
}

/** The bytes of an uploaded file: the web client posts them as multipart form data to the upload URL. */
function contentOf(upload: { content: Buffer }): string {
  const raw = upload.content.toString('latin1');
  const boundary = raw.match(/^--([^\r\n]+)\r\n/)?.[1];
  if (!boundary) return upload.content.toString('utf8');
  const part = raw.split(`--${boundary}`).find((p) => /filename=/.test(p)) ?? '';
  const body = part.slice(part.indexOf('\r\n\r\n') + 4).replace(/\r\n$/, '');
  return Buffer.from(body, 'latin1').toString('utf8');
}

const importOf = async (fileId: string) => t.em().findOne(CsvImport, { fileId });
const paidSeatsUsed = async () => (await t.roster.deps.seats.usage(t.em(), await t.account())).used;

const usersNamed = async (...emails: string[]) =>
  t.em().find(User, { email: { $in: emails } }, { orderBy: { email: 'asc' } });

describe('uploading a CSV file in the bot DM', () => {
  it('previews every row, imports on Import with progress, and a second upload changes nothing', async () => {
    const file = addFile('people.csv', fixture('people.csv'));
    const res = await shareInDm('UADMIN', file);
    expect(res.status).toBe(200);
    // Slack retries an event it thinks was lost: the same file must not be read twice.
    await res.resend();

    const preview = await readingOutcome('people.csv', /Preview of people\.csv/);
    expect(textOf(preview)).toContain('*5* to create');
    expect(textOf(preview)).toContain('*0* in error');
    expect(textOf(preview)).toContain('the file needs 0 seats; 10 free (0 of 10 used)');
    expect(await t.em().count(CsvImport, { fileId: file.id })).toBe(1);
    expect(
      t.standin.messages.filter(
        (m) => m.method === 'chat.postMessage' && m.text?.includes('Reading people.csv'),
      ),
    ).toHaveLength(1);
    // Nothing is written before Import.
    expect(await usersNamed('ada@acme.test', 'grace@acme.test')).toHaveLength(0);
    expect(t.standin.lastCall('files.info')?.args.file).toBe(file.id);

    await t.slack.clickButton(preview, 'Import 5 rows', { user: 'UADMIN' });
    expect(textOf(current('DUADMIN', preview.ts))).toContain('Import started by <@UADMIN>');
    // A double click finds the import already under way.
    await t.slack.clickButton(preview, 'Import 5 rows', { user: 'UADMIN' });
    await t.standin.waitForResponse((r) =>
      /people\.csv (is already being imported|was already imported)/.test(r.body.text),
    );

    const summary = await eventually(() =>
      t.standin.messages.find((m) => m.method === 'chat.update' && m.text?.startsWith('Imported people.csv')),
    );
    expect(summary.text).toBe('Imported people.csv: 5 created, 0 updated, 0 unchanged, 0 in error.');
    const progress = t.standin.messages.find(
      (m) => m.method === 'chat.postMessage' && m.text?.startsWith('Importing people.csv'),
    );
    expect(progress?.ts).toBe(summary.ts);
    expect(textOf(progress)).toMatch(/[▓░]{20} \d+%/);
    const users = await usersNamed('ada@acme.test', 'grace@acme.test', 'katherine@acme.test');
    expect(users.map((u) => [u.email, u.status])).toEqual([
      ['ada@acme.test', 'locked'],
      ['grace@acme.test', 'locked'],
      ['katherine@acme.test', 'locked'],
    ]);
    expect(await t.em().count(Contact, { name: { $in: ['Alan Turing', 'Joan Clarke'] } })).toBe(2);
    const csvImport = await importOf(file.id);
    expect(csvImport?.status).toBe('completed');
    expect(await t.em().count(AuditEvent, { action: 'csv_import.started', subjectId: csvImport?.id })).toBe(
      1,
    );
    expect(await t.em().count(AuditEvent, { action: 'csv_import.completed', subjectId: csvImport?.id })).toBe(
      1,
    );

    // The same file uploaded again: every row unchanged, nothing to import.
    const again = addFile('people.csv', fixture('people.csv'));
    await shareInDm('UADMIN', again);
    const second = await eventually(() =>
      t.standin.messages.find(
        (m) =>
          m.method === 'chat.update' &&
          m.text === 'Preview of people.csv: 0 to create, 0 to update, 5 unchanged, 0 in error.',
      ),
    );
    expect(textOf(second)).toContain('Nothing to import: no row would change anything in Roster.');
    expect(() => t.slack.clickButton(second, { actionId: 'csv_import_start' }, { user: 'UADMIN' })).toThrow(
      /no button/,
    );
    expect((await importOf(again.id))?.status).toBe('completed');
    expect(await t.em().count(User, { email: { $like: '%@acme.test' }, status: 'locked' })).toBe(3);
  });

  it('queues the summary with the completion itself, so a process killed after completing still sends it, once', async () => {
    const file = addFile('backstop.csv', 'type,name,email\ncontact,Bea Backstop,bea@backstop.test\n');
    await shareInDm('UADMIN', file);
    const preview = await readingOutcome('backstop.csv', /Preview of backstop\.csv/);
    await t.slack.clickButton(preview, 'Import 1 row', { user: 'UADMIN' });
    const summaries = () => t.standin.messages.filter((m) => m.text?.startsWith('Imported backstop.csv'));
    await eventually(() => summaries().length === 1 || null);
    const csvImport = (await importOf(file.id))!;
    // A finish job written in the transaction that completed the import (same clock reading), due five minutes
    // later: the one the run job queues afterwards would be lost with a process killed in between.
    const [backstop] = await t
      .em()
      .getConnection()
      .execute<{ id: string; same_transaction: boolean }[]>(
        `select j.id, j.created_on = i.finished_at as same_transaction
           from pgboss.job j join csv_import i on i.id::text = j.data->>'importId'
          where j.name = 'csv-import.finish' and i.id = ? and j.start_after > j.created_on + interval '30 seconds'`,
        [csvImport.id],
      );
    expect(backstop?.same_transaction).toBe(true);
    // Run now, it finds the summary made and makes nothing twice.
    await t
      .em()
      .getConnection()
      .execute(`update pgboss.job set start_after = now() where id = ?`, [backstop!.id]);
    await eventually(async () => {
      const [job] = await t
        .em()
        .getConnection()
        .execute<{ state: string }[]>(`select state from pgboss.job where id = ?`, [backstop!.id]);
      return job?.state === 'completed' || null;
    });
    expect(summaries()).toHaveLength(1);
  });

  it('tells a non-admin who can import and reads nothing', async () => {
    const file = addFile('team.csv', fixture('people.csv'), { user: 'UMEMBER' });
    const infoCalls = t.standin.callsTo('files.info').length;
    await shareInDm('UMEMBER', file);
    const reply = await eventually(() => t.standin.messagesTo('DUMEMBER').at(-1));
    expect(reply.text).toBe(
      ':lock: Only admins can import people from a CSV file. Ask a workspace admin or owner to upload it.',
    );
    expect(t.standin.callsTo('files.info')).toHaveLength(infoCalls);
    expect(await importOf(file.id)).toBeNull();
  });

  it('refuses a file over 1 GB before reading it, and one that grows past the limit while downloading', async () => {
    const big = addFile('huge.csv', 'type,email\n', { size: 1.5 * 1024 * 1024 * 1024 });
    await shareInDm('UADMIN', big);
    const reply = await eventually(() =>
      t.standin.messagesTo('DUADMIN').find((m) => m.text?.includes('huge.csv is 1.5 GB')),
    );
    expect(reply.text).toBe(
      ':x: Roster could not read huge.csv: huge.csv is 1.5 GB; the limit is 1.0 GB. Split it into smaller files and upload them one by one.',
    );
    expect(await importOf(big.id)).toBeNull();

    // Slack announced a small size, but the bytes keep coming: the download stops at the limit (a
    // 1 MB limit here, to keep the test small; the job uses the 1 GB one).
    const lying = addFile('lying.csv', Buffer.alloc(1024 * 1024 + 10, 'a'), { size: 1000 });
    const chunks = await downloadSlackFile(
      lying,
      { botToken: t.standin.botToken, apiUrl: t.standin.apiUrl },
      1024 * 1024,
    );
    let received = 0;
    const read = (async () => {
      for await (const chunk of chunks) received += chunk.byteLength;
    })();
    await expect(read).rejects.toThrow('lying.csv is over the 1.0 MB limit');
    expect(received).toBeLessThanOrEqual(1024 * 1024);
  });

  it('refuses a file kept by another service, and never sends the bot token to its host', async () => {
    // Another app linked a spreadsheet in Slack (files.remote.add): its URL is that app's server.
    const seen: (string | undefined)[] = [];
    const elsewhere = createServer((req, res) => {
      seen.push(req.headers.authorization);
      res.writeHead(200, { 'content-type': 'text/csv' }).end('type,email\nuser,zed@example.com\n');
    });
    await new Promise<void>((ok) => elsewhere.listen(0, '127.0.0.2', ok));
    try {
      const url = `http://127.0.0.2:${(elsewhere.address() as AddressInfo).port}/sheet/people.csv`;
      const remote = addFile('remote-people.csv', 'x', { external: url });
      await shareInDm('UADMIN', remote);
      const reply = await eventually(() =>
        t.standin.messagesTo('DUADMIN').find((m) => m.text?.includes('remote-people.csv is kept by another')),
      );
      expect(reply.text).toContain('Download it as a .csv file and upload that file here.');

      // Described as an ordinary file, but at another host: refused before a request is made.
      const moved = addFile('moved.csv', 'x');
      await expect(
        downloadSlackFile(
          { ...moved, url_private_download: url },
          { botToken: t.standin.botToken, apiUrl: t.standin.apiUrl },
        ),
      ).rejects.toThrow('moved.csv is not stored in Slack');
      expect(seen).toEqual([]);
    } finally {
      await new Promise((r) => elsewhere.close(r));
    }
  });

  it('refuses a file that is not CSV, by its name and by its content', async () => {
    const pdf = addFile('report.pdf', '%PDF-1.7', { user: 'UADMIN' });
    await shareInDm('UADMIN', pdf);
    await eventually(() =>
      t.standin.messagesTo('DUADMIN').find((m) => m.text?.includes('report.pdf is not a CSV file.')),
    );
    expect(await importOf(pdf.id)).toBeNull();

    const workbook = addFile('workbook.csv', Buffer.from([0x50, 0x4b, 0x03, 0x04, 0x00, 0x00, 0x08, 0x00]));
    await shareInDm('UADMIN', workbook);
    const refused = await readingOutcome('workbook.csv', /was not imported/);
    expect(textOf(refused)).toContain('workbook.csv is not a CSV file: it holds binary data');
    expect(textOf(refused)).toContain('Download users template');
  });

  it('names a file-level problem: an unclosed quote, a missing column, an empty file', async () => {
    for (const [name, expected] of [
      ['unclosed-quote.csv', 'Line 3 opens a quoted cell (") that is never closed'],
      ['missing-email.csv', 'The file has no email column.'],
      ['empty.csv', 'empty.csv is empty.'],
      ['header-only.csv', 'header-only.csv has a header but no rows'],
    ] as const) {
      await shareInDm('UADMIN', addFile(name, fixture(name)));
      const refused = await readingOutcome(name, /was not imported/);
      expect(textOf(refused)).toContain(expected);
    }
  });

  it('uploads an error file with the rows in error and their reasons, formulas defused', async () => {
    await shareInDm('UADMIN', addFile('formula.csv', fixture('formula.csv')));
    const preview = await readingOutcome('formula.csv', /Preview of formula\.csv/);
    expect(textOf(preview)).toContain('• Line 2: email "not an email" is not a valid email address');
    const upload = await eventually(() =>
      t.standin.uploadedFiles.find((f) => f.filename === 'formula-errors.csv'),
    );
    expect(upload.channelId).toBe('DUADMIN');
    const content = contentOf(upload);
    expect(content).toContain(`"'=HYPERLINK(""http://evil.test"",""click"")"`);
    expect(content).toContain("'@SUM(A1)");
    expect(content).not.toMatch(/(^|,)"?[=+@\t-]/m);
    // Nothing to import: every row is in error, which the preview says, pointing to the error file.
    expect(textOf(preview)).not.toContain('Import 0 rows');
    expect(textOf(preview)).toContain(
      ':x: *Nothing to import:* every row is in error (3 rows). Roster posts the error file below',
    );
    expect(textOf(preview)).not.toContain(':white_check_mark:');
    expect(textOf(preview)).not.toContain('no row would change anything');
    const csvImport = await t.em().findOneOrFail(CsvImport, { fileName: 'formula.csv' });
    const audited = await t.em().find(AuditEvent, { subjectId: csvImport.id });
    expect(audited.map((e) => [e.action, e.data.reason])).toEqual([
      ['csv_import.not_imported', 'every row in error'],
    ]);
  });

  it('previews a file whose event carries its id alone, asking Slack what it is', async () => {
    const file = addFile('id-only.csv', 'email,first_name\nida@acme.test,Ida\n');
    // As Slack sends files from Slack Connect channels: the id, and to ask files.info for the rest.
    await t.slack.fileShare('UADMIN', { id: file.id, file_access: 'check_file_info' });
    const preview = await readingOutcome('id-only.csv', /Preview of id-only\.csv/);
    expect(textOf(preview)).toContain('*1* to create');
  });

  it('cancels a preview, and refuses Import from a non-admin', async () => {
    await shareInDm('UADMIN', addFile('crlf.csv', fixture('crlf.csv')));
    const preview = await readingOutcome('crlf.csv', /Preview of crlf\.csv/);
    await t.slack.clickButton(preview, 'Import 2 rows', { user: 'UMEMBER' });
    await t.standin.waitForResponse((r) => r.body.text?.startsWith(':lock: Only admins can import'));
    await t.slack.clickButton(preview, 'Cancel', { user: 'UADMIN' });
    expect(textOf(current('DUADMIN', preview.ts))).toContain('Cancelled by <@UADMIN>. Nothing was imported.');
    await t.slack.clickButton(preview, 'Import 2 rows', { user: 'UADMIN' });
    await t.standin.waitForResponse((r) => r.body.text?.startsWith('crlf.csv was cancelled'));
    expect(await usersNamed('carl@acme.test', 'cora@acme.test')).toHaveLength(0);
  });

  it("redraws only the clicked import's own preview, whatever message a forged click names", async () => {
    await shareInDm('UOWNER', addFile('owner-kept.csv', fixture('crlf.csv'), { user: 'UOWNER' }));
    const ownerPreview = await readingOutcome('owner-kept.csv', /Preview of owner-kept\.csv/, 'DUOWNER');
    await shareInDm('UADMIN', addFile('admin-own.csv', 'email,first_name\nao@acme.test,Ao\n'));
    const adminPreview = await readingOutcome('admin-own.csv', /Preview of admin-own\.csv/);
    const cancel = (adminPreview.blocks ?? [])
      .flatMap((b: any) => b.elements ?? [])
      .find((e: any) => e.action_id === 'csv_import_cancel');
    // The admin's own Cancel, in a payload naming the owner's preview message.
    await t.slack.blockAction({
      user: 'UADMIN',
      actions: [{ type: 'button', action_id: 'csv_import_cancel', block_id: 'x', value: cancel.value }],
      message: { ...ownerPreview },
      channel: 'DUOWNER',
    });
    await eventually(() =>
      /Cancelled by <@UADMIN>/.test(textOf(current('DUADMIN', adminPreview.ts))) ? true : null,
    );
    expect(textOf(current('DUOWNER', ownerPreview.ts))).toContain('Preview of owner-kept.csv');
    expect(textOf(current('DUOWNER', ownerPreview.ts))).not.toContain('admin-own.csv');
    expect((await t.em().findOneOrFail(CsvImport, { fileName: 'owner-kept.csv' })).status).toBe('previewed');
  });

  it('cancels a preview while Slack refuses updates for a while: the preview says so once Slack allows, once', async () => {
    const csv = 'type,first_name,last_name,email,role\nuser,Slow,Lane,slow.lane@acme.test,client\n';
    await shareInDm('UADMIN', addFile('slow.csv', csv));
    const preview = await readingOutcome('slow.csv', /Preview of slow\.csv/);
    const cancelled = () =>
      t.standin.messages.filter(
        (m) => m.method === 'chat.update' && m.ts === preview.ts && /Cancelled by <@UADMIN>/.test(textOf(m)),
      );
    const limitedBefore = t.standin.rateLimited.length;
    const answered = t.standin.responses.length;
    t.standin.limitRate('chat.update', { max: 0, windowMs: 60_000, retryAfter: 3 });
    await t.slack.clickButton(preview, 'Cancel', { user: 'UADMIN' });
    expect((await t.em().findOneOrFail(CsvImport, { fileName: 'slow.csv' })).status).toBe('cancelled');
    expect(t.standin.rateLimited.slice(limitedBefore).some((c) => c.method === 'chat.update')).toBe(true);
    t.standin.clearRateLimit('chat.update');
    await eventually(() => cancelled().length > 0, 20_000);
    await jobsDrained(t.em(), { timeoutMs: 30_000 });
    expect(cancelled()).toHaveLength(1);
    // The cancellation was made: the admin is not asked to try again.
    expect(t.standin.responses.slice(answered).map((r) => String(r.body.text))).toEqual([]);
  }, 60_000);

  it('sends the templates on request', async () => {
    await shareInDm('UADMIN', addFile('bom.csv', fixture('bom.csv')));
    const preview = await readingOutcome('bom.csv', /Preview of bom\.csv/);
    await t.slack.clickButton(preview, 'Download users template', { user: 'UADMIN' });
    await t.slack.clickButton(preview, 'Download contacts template', { user: 'UADMIN' });
    const users = await eventually(() =>
      t.standin.uploadedFiles.find((f) => f.filename === 'roster-users-template.csv'),
    );
    expect(users.channelId).toBe('DUADMIN');
    expect(contentOf(users)).toMatch(
      /^\ufefftype,first_name,last_name,email,role,permission_set,title,phone,send_invitation\r\n/,
    );
    const contacts = await eventually(() =>
      t.standin.uploadedFiles.find((f) => f.filename === 'roster-contacts-template.csv'),
    );
    expect(contentOf(contacts)).toContain('type,first_name,last_name,email,phone,company,title,notes');
    // A click forged to come from a channel still gets the template in the clicker's DM, never in the channel.
    const uploads = t.standin.uploadedFiles.length;
    await t.slack.clickButton({ ...preview, channel: 'C0GENERAL' }, 'Download users template', {
      user: 'UMEMBER',
    });
    const forged = await eventually(() => t.standin.uploadedFiles.slice(uploads)[0]);
    expect(forged.channelId).toBe('DUMEMBER');
  });

  it('imports invitations through the seat rules and reports rows that found no free seat', async () => {
    await t.setSeatLimit(1);
    const csv = [
      'first_name,last_name,email,role,send_invitation',
      'Ivy,Invited,ivy.slack@acme.test,employee,yes',
      'Noel,NoSeat,noel.slack@acme.test,contractor,yes',
    ].join('\n');
    await shareInDm('UADMIN', addFile('invites.csv', csv));
    const preview = await readingOutcome('invites.csv', /Preview of invites\.csv/);
    expect(textOf(preview)).toContain('the file needs 2 seats; 1 free (0 of 1 used)');
    expect(textOf(preview)).toContain('1 row asking for an invitation will end in error');
    await t.slack.clickButton(preview, 'Import 2 rows', { user: 'UADMIN' });
    const summary = await eventually(() =>
      t.standin.messages.find(
        (m) => m.method === 'chat.update' && m.text?.startsWith('Imported invites.csv'),
      ),
    );
    expect(textOf(summary)).toContain('(1 because no paid seat was free)');
    expect(textOf(summary)).toContain('1 invitation on the way');
    const [ivy] = await usersNamed('ivy.slack@acme.test');
    expect(ivy?.status).toBe('invited');
    expect(await usersNamed('noel.slack@acme.test')).toHaveLength(0);
    expect(await t.em().count(Invitation, { user: ivy?.id })).toBe(1);
    // Ivy is not in the workspace, so the invitation goes out by email.
    await t.smtp.waitForMail((m) => m.toText.includes('ivy.slack@acme.test'));
    expect(t.smtp.messagesTo('noel.slack@acme.test')).toHaveLength(0);
    const errors = await eventually(() =>
      t.standin.uploadedFiles.find((f) => f.filename === 'invites-errors.csv'),
    );
    expect(contentOf(errors)).toContain('no paid seat free (1 of 1 used), so noel.slack@acme.test');
    await t.setSeatLimit(10);
  });
});

describe('the error file after an import', () => {
  it('lists a row the database refused while it was written, in plain words', async () => {
    const csv = [
      'type,first_name,last_name,email',
      'contact,Wes,Written,wes.written@acme.test',
      'contact,Rae,Refused,rae.refused@acme.test',
    ].join('\n');
    await shareInDm('UADMIN', addFile('refused-row.csv', csv));
    const preview = await readingOutcome('refused-row.csv', /Preview of refused-row\.csv/);
    expect(textOf(preview)).toContain('*0* in error');
    // Something the preview could not know: the database refuses one of the rows when it is written.
    const conn = t.em().getConnection();
    await conn.execute(`create function refuse_rae() returns trigger language plpgsql as $$
      begin
        if new.email = 'rae.refused@acme.test' then
          raise exception 'new row for relation "contact" violates check constraint "contact_rae_check"';
        end if;
        return new;
      end $$`);
    await conn.execute(
      'create trigger refuse_rae before insert on contact for each row execute function refuse_rae()',
    );
    try {
      await t.slack.clickButton(preview, 'Import 2 rows', { user: 'UADMIN' });
      const summary = await eventually(() =>
        t.standin.messages.find(
          (m) => m.method === 'chat.update' && m.text?.startsWith('Imported refused-row.csv'),
        ),
      );
      expect(summary.text).toBe('Imported refused-row.csv: 1 created, 0 updated, 0 unchanged, 1 in error.');
      expect(textOf(summary)).toContain('Fix the rows in the error file');
      const errors = await eventually(() =>
        t.standin.uploadedFiles.find((f) => f.filename === 'refused-row-errors.csv'),
      );
      expect(errors.channelId).toBe('DUADMIN');
      const content = contentOf(errors);
      expect(content).toContain('rae.refused@acme.test');
      expect(content).toContain('could not be written: Roster refused one of its values (reference ');
      expect(content).not.toContain('wes.written@acme.test');
      // The database's own words (its constraint, its relation) are for the log, not for the admin.
      expect(content).not.toMatch(/constraint|relation|contact_rae_check/);
      expect(textOf(summary)).not.toMatch(/constraint|relation|contact_rae_check/);
    } finally {
      await conn.execute('drop trigger refuse_rae on contact');
      await conn.execute('drop function refuse_rae()');
    }
    await jobsDrained(t.em());
    expect(t.standin.uploadedFiles.filter((f) => f.filename === 'refused-row-errors.csv')).toHaveLength(1);
  });
});

describe('the error file of an import while Slack is busy', () => {
  it('is uploaded once Slack allows, exactly once, after the import completed', async () => {
    await t.setSeatLimit(await paidSeatsUsed());
    const csv = [
      'first_name,last_name,email,role,send_invitation',
      'Bea,Busy,bea.busy@acme.test,employee,yes',
    ].join('\n');
    await shareInDm('UADMIN', addFile('busy.csv', csv));
    const preview = await readingOutcome('busy.csv', /Preview of busy\.csv/);
    // Slack refuses to complete uploads for longer than a job waits: the upload has to come back later.
    t.standin.limitRate('files.completeUploadExternal', { max: 0, windowMs: 60_000, retryAfter: 11 });
    await t.slack.clickButton(preview, 'Import 1 row', { user: 'UADMIN' });
    await eventually(
      () => t.standin.rateLimited.some((c) => c.method === 'files.completeUploadExternal'),
      15_000,
    );
    t.standin.clearRateLimit('files.completeUploadExternal');
    const summary = await eventually(() =>
      t.standin.messages.find((m) => m.method === 'chat.update' && m.text?.startsWith('Imported busy.csv')),
    );
    expect(textOf(summary)).toContain('(1 because no paid seat was free)');
    const errors = await eventually(
      () => t.standin.uploadedFiles.find((f) => f.filename === 'busy-errors.csv'),
      30_000,
    );
    expect(contentOf(errors)).toContain('bea.busy@acme.test');
    await jobsDrained(t.em());
    expect(t.standin.uploadedFiles.filter((f) => f.filename === 'busy-errors.csv')).toHaveLength(1);
    expect(
      t.standin.messages.filter((m) => m.method === 'chat.update' && m.text?.startsWith('Imported busy.csv')),
    ).toHaveLength(1);
    await t.setSeatLimit(10);
  }, 60_000);
});

describe("Slack's retry of an upload whose first delivery failed", () => {
  /**
   * Shares `file` in `user`'s DM as Slack's first try, while Roster's database cannot record the event (a
   * blip): that try fails and nothing of it runs. Returns Slack's retry of it, sent once the database is
   * back: the same event id, with `x-slack-retry-num: 1`.
   */
  async function shareWhileDatabaseBlips(user: string, file: ReturnType<typeof addFile>, eventId: string) {
    const conn = t.em().getConnection();
    await conn.execute('alter table slack_receipt rename to slack_receipt_away');
    try {
      expect((await t.slack.fileShare(user, file, { eventId })).status).toBe(500);
    } finally {
      await conn.execute('alter table slack_receipt_away rename to slack_receipt');
    }
    const retry = await t.slack.fileShare(user, file, { eventId, retryNum: 1 });
    expect(retry.status).toBe(200);
    return retry;
  }

  /** Slack retries once more although Roster answered: Roster records that it refused the same event. */
  async function retryRefused(retry: { resend(): Promise<unknown> }, eventId: string) {
    await retry.resend();
    await eventually(
      async () =>
        (await t
          .em()
          .count(AuditEvent, { action: 'slack.replay_refused', data: { key: `event:${eventId}` } })) === 1,
    );
  }

  const postsTo = (channel: string, text: string) =>
    t.standin.messages.filter(
      (m) => m.method === 'chat.postMessage' && m.channel === channel && textOf(m).includes(text),
    );

  it('tells a non-admin who can import, once', async () => {
    const told = () => postsTo('DUMEMBER', 'Only admins can import').length;
    const before = told();
    const file = addFile('retried-member.csv', fixture('people.csv'), { user: 'UMEMBER' });
    const retry = await shareWhileDatabaseBlips('UMEMBER', file, `Ev${file.id}`);
    expect(told()).toBe(before + 1);
    await retryRefused(retry, `Ev${file.id}`);
    expect(told()).toBe(before + 1);
    expect(await importOf(file.id)).toBeNull();
  });

  it('tells an admin that a file is not CSV, once', async () => {
    const file = addFile('retried.pdf', '%PDF-1.7', { user: 'UADMIN' });
    const retry = await shareWhileDatabaseBlips('UADMIN', file, `Ev${file.id}`);
    expect(postsTo('DUADMIN', 'retried.pdf is not a CSV file.')).toHaveLength(1);
    await retryRefused(retry, `Ev${file.id}`);
    expect(postsTo('DUADMIN', 'retried.pdf is not a CSV file.')).toHaveLength(1);
    expect(await importOf(file.id)).toBeNull();
  });

  it('tells an admin who shares a file again that it was read already, once', async () => {
    const file = addFile('retried-again.csv', fixture('people.csv'));
    await shareInDm('UADMIN', file);
    await readingOutcome('retried-again.csv', /Preview of retried-again\.csv/);
    // The same Slack file shared again, in a new message: a new event, whose first delivery fails.
    const retry = await shareWhileDatabaseBlips('UADMIN', file, `EvAgain${file.id}`);
    expect(postsTo('DUADMIN', 'retried-again.csv was already uploaded')).toHaveLength(1);
    await retryRefused(retry, `EvAgain${file.id}`);
    expect(postsTo('DUADMIN', 'retried-again.csv was already uploaded')).toHaveLength(1);
    expect(postsTo('DUADMIN', 'Reading retried-again.csv')).toHaveLength(1);
    expect(await t.em().count(CsvImport, { fileId: file.id })).toBe(1);
  });
});

describe('the error file of a preview while Slack is busy', () => {
  it('is uploaded once Slack allows, exactly once', async () => {
    const csv = ['email,first_name', 'not-an-email,Nina', 'ok.busy@acme.test,Otto'].join('\n');
    const refused = () => t.standin.rateLimited.filter((c) => c.method === 'files.completeUploadExternal');
    const before = refused().length;
    t.standin.limitRate('files.completeUploadExternal', { max: 0, windowMs: 60_000, retryAfter: 11 });
    await shareInDm('UADMIN', addFile('busy-preview.csv', csv));
    await readingOutcome('busy-preview.csv', /Preview of busy-preview\.csv/);
    await eventually(() => refused().length > before, 15_000);
    t.standin.clearRateLimit('files.completeUploadExternal');
    const errors = await eventually(
      () => t.standin.uploadedFiles.find((f) => f.filename === 'busy-preview-errors.csv'),
      30_000,
    );
    expect(contentOf(errors)).toContain('not-an-email');
    await jobsDrained(t.em());
    expect(t.standin.uploadedFiles.filter((f) => f.filename === 'busy-preview-errors.csv')).toHaveLength(1);
  }, 60_000);
});

describe('the Import from CSV shortcut', () => {
  it('opens a modal with a file input and previews the chosen file in the DM', async () => {
    await t.slack.shortcut({ user: 'UOWNER', callbackId: 'import_csv' });
    const view = t.standin.lastOpenedView();
    expect(view.callback_id).toBe('csv_import_modal');
    // The limits the modal states are the ones the reader enforces.
    expect(textOf(view)).toContain('(up to 1 GB and 1,000,000 rows)');
    const input = view.blocks.find((b: any) => b.type === 'input');
    expect(input.element).toMatchObject({ type: 'file_input', filetypes: ['csv'], max_files: 1 });

    const file = addFile('quoted-newlines.csv', fixture('quoted-newlines.csv'), { user: 'UOWNER' });
    const res = await t.slack.submitView(view, { file: { files: [{ id: file.id }] } }, { user: 'UOWNER' });
    expect(res.status).toBe(200);
    expect(res.body).toBe('');
    const preview = await readingOutcome('quoted-newlines.csv', /Preview of quoted-newlines\.csv/, 'DUOWNER');
    expect(textOf(preview)).toContain('*2* to create');
    expect(textOf(preview)).toContain('• Line 6: email "not-an-email" is not a valid email address');
  });

  it('previews a file chosen in the modal even when Slack refused the "Reading…" message', async () => {
    await t.slack.shortcut({ user: 'UOWNER', callbackId: 'import_csv' });
    const view = t.standin.lastOpenedView();
    const file = addFile(
      'refused-reading.csv',
      'first_name,last_name,email\nRay,Refused,ray.refused@acme.test\n',
      {
        user: 'UOWNER',
      },
    );
    t.standin.failNext('chat.postMessage', 'internal_error', 1, (args) =>
      String(args.text).includes('Reading'),
    );
    const res = await t.slack.submitView(view, { file: { files: [{ id: file.id }] } }, { user: 'UOWNER' });
    expect(res.status).toBe(200);
    const preview = await t.standin.waitForMessage(
      (m) => m.channel === 'DUOWNER' && /Preview of refused-reading\.csv/.test(textOf(m)),
    );
    expect(textOf(preview)).toContain('*1* to create');
    // The preview became the import's message, in the DM: Import works from it.
    await eventually(async () => (await importOf(file.id))?.messageTs === preview.ts);
    expect((await importOf(file.id))?.channelId).toBe('DUOWNER');
    await t.slack.clickButton(preview, 'Import 1 row', { user: 'UOWNER' });
    await eventually(async () => (await importOf(file.id))?.status === 'completed');
  });

  it('keeps the modal open with the reason for a file that is too big or not CSV', async () => {
    await t.slack.shortcut({ user: 'UADMIN', callbackId: 'import_csv' });
    const view = t.standin.lastOpenedView();
    const big = addFile('big.csv', 'email\n', { size: 2 * 1024 * 1024 * 1024 });
    const res = await t.slack.submitView(view, { file: { files: [{ id: big.id }] } }, { user: 'UADMIN' });
    expect(res.json).toEqual({
      response_action: 'errors',
      errors: {
        file: 'big.csv is 2.0 GB; the limit is 1.0 GB. Split it into smaller files and upload them one by one.',
      },
    });
    const txt = addFile('notes.txt', 'email\n');
    const res2 = await t.slack.submitView(view, { file: { files: [{ id: txt.id }] } }, { user: 'UADMIN' });
    expect(res2.json?.errors?.file).toMatch(/^notes\.txt is not a CSV file/);
    expect(await importOf(big.id)).toBeNull();
    expect(await importOf(txt.id)).toBeNull();
  });

  it('refuses on the form a file someone else uploaded, which a forged submission could name', async () => {
    const theirs = addFile('hr-private.csv', 'email,first_name\nhr@acme.test,Hr\n', { user: 'UMEMBER' });
    await t.slack.shortcut({ user: 'UADMIN', callbackId: 'import_csv' });
    const res = await t.slack.submitView(
      t.standin.lastOpenedView(),
      { file: { files: [{ id: theirs.id }] } },
      { user: 'UADMIN' },
    );
    expect(res.json).toEqual({
      response_action: 'errors',
      errors: { file: 'Choose a file you upload here: that one is someone else’s.' },
    });
    expect(await importOf(theirs.id)).toBeNull();
  });

  it('closes the form in time when Slack is slow to describe the file, and reads or refuses it after', async () => {
    await t.slack.shortcut({ user: 'UOWNER', callbackId: 'import_csv' });
    const view = t.standin.lastOpenedView();
    const file = addFile('slow-info.csv', fixture('quoted-newlines.csv'), { user: 'UOWNER' });
    t.standin.delayNext('files.info', 3500);
    const res = await t.slack.submitView(view, { file: { files: [{ id: file.id }] } }, { user: 'UOWNER' });
    expect(res.status).toBe(200);
    expect(res.body).toBe('');
    await readingOutcome('slow-info.csv', /Preview of slow-info\.csv/, 'DUOWNER');

    await t.slack.shortcut({ user: 'UOWNER', callbackId: 'import_csv' });
    const txt = addFile('slow-notes.txt', 'email\n', { user: 'UOWNER' });
    t.standin.delayNext('files.info', 3500);
    const refused = await t.slack.submitView(
      t.standin.lastOpenedView(),
      { file: { files: [{ id: txt.id }] } },
      { user: 'UOWNER' },
    );
    expect(refused.status).toBe(200);
    const told = await t.standin.waitForMessage(
      (m) => m.channel === 'DUOWNER' && textOf(m).includes('slow-notes.txt is not a CSV file'),
    );
    expect(textOf(told)).toContain('Nothing was imported.');
    expect(await importOf(txt.id)).toBeNull();
  });

  it('tells a non-admin that only admins import, without opening the modal', async () => {
    const opened = t.standin.callsTo('views.open').length;
    await t.slack.shortcut({ user: 'UMANAGER', callbackId: 'import_csv' });
    const reply = await eventually(() => t.standin.messagesTo('UMANAGER').at(-1));
    expect(reply.text).toContain('Only admins can import people from a CSV file.');
    expect(t.standin.callsTo('views.open')).toHaveLength(opened);
  });
});

describe('an import that stopped half way', () => {
  it('is finished by Resume with no duplicate and no lost row', async () => {
    const service = csvImports(t.roster.deps);
    const account = await t.account();
    const lines = ['type,first_name,last_name,email,company'];
    // One batch and a tenth: three quarters users, the rest contacts.
    const users = (BATCH_SIZE * 3) / 4;
    const contacts = (BATCH_SIZE * 11) / 10 - users;
    for (let i = 0; i < users; i++) lines.push(`user,Res,${i},resume${i}@acme.test,`);
    for (let i = 0; i < contacts; i++) lines.push(`contact,Con,${i},,Resume Co`);
    const { csvImport } = await service.begin(t.em(), account, {
      uploadedBy: 'UADMIN',
      fileName: 'resume.csv',
      fileId: 'FRESUME',
      channelId: 'DUADMIN',
    });
    await service.preview(csvImport.id, Buffer.from(lines.join('\n')));
    // Started, but the process died after one batch: no run job is left to finish it.
    await t
      .em()
      .getConnection()
      .execute(`update csv_import set status = 'importing', imported_by = 'UADMIN' where id = ?`, [
        csvImport.id,
      ]);
    await service.run(csvImport.id, { maxBatches: 1 });
    expect(await service.progress(csvImport.id)).toEqual({ done: BATCH_SIZE, total: users + contacts });

    await t.slack.blockAction({
      user: 'UADMIN',
      channel: 'DUADMIN',
      message: { ts: '1.1', text: 'stopped', blocks: [] },
      actions: [{ type: 'button', action_id: 'csv_import_resume', value: csvImport.id }],
    });
    await t.standin.waitForResponse((r) => r.body.text?.startsWith('Resuming the import of resume.csv'));
    const summary = await eventually(
      () =>
        t.standin.messages.find(
          (m) => m.method === 'chat.update' && m.text?.startsWith('Imported resume.csv'),
        ),
      15_000,
    );
    expect(summary.text).toBe(
      `Imported resume.csv: ${(users + contacts).toLocaleString('en-US')} created, 0 updated, 0 unchanged, 0 in error.`,
    );
    expect(await t.em().count(User, { email: { $like: 'resume%@acme.test' } })).toBe(users);
    expect(await t.em().count(Contact, { company: 'Resume Co' })).toBe(contacts);
  });
});

describe('a Resume for an import Roster does not have', () => {
  it('says the import no longer exists, and runs nothing', async () => {
    const since = t.standin.responses.length;
    const jobs = async () =>
      Number(
        (
          await t
            .em()
            .getConnection()
            .execute<{ n: string }[]>(`select count(*) as n from pgboss.job where name = 'csv-import.run'`)
        )[0]!.n,
      );
    const before = await jobs();
    await t.slack.blockAction({
      user: 'UADMIN',
      channel: 'DUADMIN',
      message: { ts: '1.2', text: 'stopped', blocks: [] },
      actions: [
        { type: 'button', action_id: 'csv_import_resume', value: '00000000-0000-4000-8000-000000000000' },
      ],
    });
    const answer = await t.standin.waitForResponse((r) => t.standin.responses.indexOf(r) >= since);
    expect(textOf(answer.body)).toContain('That import no longer exists.');
    expect(await jobs()).toBe(before);
  });
});

describe('unlocking what an import left locked', () => {
  it('offers Unlock and invite all with the seats it needs, stops at the limit, and finishes once seats are added', async () => {
    const used = (await t.roster.deps.seats.usage(t.em(), await t.account())).used;
    await t.setSeatLimit(used + 1);
    const file = addFile(
      'locked.csv',
      [
        'type,first_name,last_name,email,role,send_invitation',
        'user,Lou,One,lou1@acme.test,employee,no',
        'user,Lou,Two,lou2@acme.test,contractor,no',
        'user,Lou,Three,lou3@acme.test,client,no',
      ].join('\n'),
    );
    await shareInDm('UADMIN', file);
    const preview = await readingOutcome('locked.csv', /Preview of locked\.csv/);
    await t.slack.clickButton(preview, 'Import 3 rows', { user: 'UADMIN' });
    const summary = await eventually(() =>
      t.standin.messages.find((m) => m.method === 'chat.update' && m.text?.startsWith('Imported locked.csv')),
    );
    const shown = textOf(current('DUADMIN', summary.ts));
    expect(shown).toContain('3 people are imported locked.');
    expect(shown).toContain('2 of them need a paid seat; 1 seat is free. The first 1 get one');

    // Only an admin may press it.
    await t.slack.clickButton(current('DUADMIN', summary.ts), 'Unlock and invite all', { user: 'UMEMBER' });
    await t.standin.waitForResponse((r) => /Only admins/.test(textOf(r.body)));
    expect(await t.em().count(User, { email: { $like: 'lou%' }, status: 'locked' })).toBe(3);

    // Answered at once; a job does the work, and the admin's DM says how it went.
    const dmSaid = (text: string) =>
      eventually(() =>
        t.standin
          .messagesTo('DUADMIN')
          .find((m) => m.method === 'chat.postMessage' && textOf(m).includes(text)),
      );
    await t.slack.clickButton(current('DUADMIN', summary.ts), 'Unlock and invite all', { user: 'UADMIN' });
    await t.standin.waitForResponse((r) =>
      textOf(r.body).includes(
        'Unlocking and inviting the people of locked.csv who are still locked. A DM says how it goes',
      ),
    );
    const first = await dmSaid('Unlocked and invited 2 people');
    expect(textOf(first)).toContain('1 still locked: no paid seat was free');
    // The progress message, redrawn with the outcome.
    const progress = await dmSaid(
      'Unlocking and inviting the people of locked.csv who are still locked, a hundred at a time',
    );
    expect(textOf(current('DUADMIN', progress.ts))).toContain('Unlocked and invited 2 people');
    const statusOf = async (email: string) => (await t.em().findOneOrFail(User, { email })).status;
    expect(await statusOf('lou1@acme.test')).toBe('invited');
    expect(await statusOf('lou2@acme.test')).toBe('locked');
    expect(await statusOf('lou3@acme.test')).toBe('invited');
    const usage = await t.roster.deps.seats.usage(t.em(), await t.account());
    expect(usage.used).toBe(usage.limit);
    // Each unlocked person has their invitation delivered, and the audit log says what was done to each,
    // as an unlock from their card would: unlocked, invited, and a seat taken for the paid one.
    await jobsDrained(t.em());
    for (const email of ['lou1@acme.test', 'lou3@acme.test']) {
      const user = await t.em().findOneOrFail(User, { email });
      const invitations = await t.em().find(Invitation, { user });
      expect(invitations.map((i) => [i.status, i.deliveredAt !== null])).toEqual([['pending', true]]);
      const logged = await t
        .em()
        .find(AuditEvent, { subjectId: { $in: [user.id, invitations[0]!.id] } }, { orderBy: { id: 'asc' } });
      expect(logged.map((e) => e.action)).toEqual([
        'user.imported',
        'user.unlocked',
        'invitation.created',
        'invitation.delivered',
      ]);
      expect(logged[1]?.data).toMatchObject({ email, before: { status: 'locked' } });
      expect(logged.slice(1, 3).map((e) => e.actor)).toEqual(['UADMIN', 'UADMIN']);
    }
    const seatTaken = await t
      .em()
      .find(AuditEvent, { action: 'seat.taken', data: { for: 'lou1@acme.test' } });
    expect(seatTaken.map((e) => e.data)).toEqual([
      { for: 'lou1@acme.test', used: usage.used, limit: usage.limit, seatAdded: false },
    ]);

    await t.setSeatLimit(usage.limit + 1);
    // Pressed twice while the first run waits for the seats (held here a moment): one run, one answer each.
    const since = t.standin.responses.length;
    await t
      .em()
      .fork()
      .transactional(async (tx) => {
        await query(tx, sql`select id from account where id = ${(await t.account()).id} for update`);
        await t.slack.clickButton(current('DUADMIN', summary.ts), 'Unlock and invite all', {
          user: 'UADMIN',
        });
        await t.slack.clickButton(current('DUADMIN', summary.ts), 'Unlock and invite all', {
          user: 'UADMIN',
        });
        await eventually(() => t.standin.responses.length >= since + 2);
      });
    expect(t.standin.responses.slice(since).map((r) => textOf(r.body))).toEqual([
      expect.stringContaining('Unlocking and inviting the people of locked.csv who are still locked.'),
      'The people of locked.csv are being unlocked already: a DM says what was done when it ends.',
    ]);
    await dmSaid('Unlocked and invited 1 person');
    await jobsDrained(t.em());
    expect(
      t.standin
        .messagesTo('DUADMIN')
        .filter((m) => m.method === 'chat.postMessage' && /left to unlock/.test(textOf(m))),
    ).toHaveLength(0);
    expect(await statusOf('lou2@acme.test')).toBe('invited');
    await t.setSeatLimit(50);
  });
});

describe('a preview made before another import of the account', () => {
  /** Drops `content` as `name` and waits for its preview. */
  async function previewOf(name: string, content: string) {
    await shareInDm('UADMIN', addFile(name, content));
    return readingOutcome(name, new RegExp(`Preview of ${name.replace('.', '\\.')}`));
  }
  const titleOf = async (email: string) => (await t.em().findOneOrFail(User, { email })).title;
  const summaryOf = (name: string) =>
    eventually(() =>
      t.standin.messages.find((m) => m.method === 'chat.update' && m.text?.startsWith(`Imported ${name}`)),
    );

  it('is checked again against Roster as it is now instead of undoing the newer import', async () => {
    const older = await previewOf('typo.csv', 'email,first_name,title\nxena@acme.test,Xena,Enginer\n');
    const newer = await previewOf('fixed.csv', 'email,first_name,title\nxena@acme.test,Xena,Engineer\n');
    await t.slack.clickButton(newer, 'Import 1 row', { user: 'UADMIN' });
    await summaryOf('fixed.csv');
    expect(await titleOf('xena@acme.test')).toBe('Engineer');

    // Import on the older preview, clicked twice as an impatient admin (or Slack's retry) would.
    await t.slack.clickButton(older, 'Import 1 row', { user: 'UADMIN' });
    await t.slack.clickButton(older, 'Import 1 row', { user: 'UADMIN' });
    const refreshed = await eventually(() => {
      // First said to be checking again, then redrawn by the job that checked it.
      const shown = textOf(current('DUADMIN', older.ts));
      return shown.includes('Checked again, nothing imported') ? shown : undefined;
    });
    expect(refreshed).toContain('fixed.csv');
    expect(refreshed).toContain('check it and click Import again');
    // Rechecked against Xena as the newer import left her: her title would change back.
    expect(refreshed).toContain('*1* to update');
    expect(refreshed).toContain('*0* to create');
    // The second click is answered while the check runs or after it: either way nothing is imported.
    await t.standin.waitForResponse((r) =>
      /typo\.csv (is being checked again|was checked again)/.test(textOf(r.body)),
    );
    await jobsDrained(t.em());
    const typo = await t.em().findOneOrFail(CsvImport, { fileName: 'typo.csv' });
    expect(typo.status).toBe('previewed');
    expect(typo.startedAt).toBeNull();
    expect(await titleOf('xena@acme.test')).toBe('Engineer');
    expect(await t.em().count(AuditEvent, { action: 'csv_import.started', subjectId: typo.id })).toBe(0);
  });

  it('says at once that it is being checked again, then shows the preview as checked again', async () => {
    const older = await previewOf('chef.csv', 'email,first_name,title\numa@acme.test,Uma,Chef\n');
    const newer = await previewOf('cook.csv', 'email,first_name,title\numa@acme.test,Uma,Cook\n');
    await t.slack.clickButton(newer, 'Import 1 row', { user: 'UADMIN' });
    await summaryOf('cook.csv');

    await t.slack.clickButton(older, 'Import 1 row', { user: 'UADMIN' });
    await eventually(() => textOf(current('DUADMIN', older.ts)).includes('Checked again, nothing imported'));
    const versions = t.standin.messages
      .filter((m) => m.channel === 'DUADMIN' && m.ts === older.ts)
      .map((m) => textOf(m));
    const checking = versions.findIndex((v) => v.includes('Checking again, nothing imported'));
    const checked = versions.findIndex((v) => v.includes('Checked again, nothing imported'));
    expect(checking).toBeGreaterThan(0);
    expect(checked).toBeGreaterThan(checking);
    const saidAtOnce = versions[checking] ?? '';
    expect(saidAtOnce).toContain('cook.csv');
    expect(saidAtOnce).toContain('comparing the file with Roster as it is now');
    expect(saidAtOnce).not.toContain('Import 1 row');
    expect(saidAtOnce).toContain('Cancel');
    // The refreshed preview offers Import again, and nothing was imported meanwhile.
    expect(versions[checked]).toContain('*1* to update');
    expect(versions[checked]).toContain('Import 1 row');
    expect(await titleOf('uma@acme.test')).toBe('Cook');
  });

  it('posts a new error file when checking it again finds rows in error that the first one did not list', async () => {
    const older = await previewOf('crew-old.csv', 'email,first_name,role\nquin@acme.test,Quin,employee\n');
    const newer = await previewOf('crew-new.csv', 'email,first_name,role\nquin@acme.test,Quin,contractor\n');
    await t.slack.clickButton(newer, 'Import 1 row', { user: 'UADMIN' });
    await summaryOf('crew-new.csv');

    await t.slack.clickButton(older, 'Import 1 row', { user: 'UADMIN' });
    const upload = await eventually(() =>
      t.standin.uploadedFiles.find((f) => f.filename === 'crew-old-errors.csv'),
    );
    expect(contentOf(upload)).toContain('is already a contractor in Roster');
    const shown = await eventually(() => {
      const now = textOf(current('DUADMIN', older.ts));
      return now.includes('Checked again, nothing imported') ? now : undefined;
    });
    expect(shown).toContain('Nothing to import');
    expect((await t.em().findOneOrFail(User, { email: 'quin@acme.test' })).role).toBe('contractor');
  });

  it('fails, saying to upload the file again, when its staged rows were lost before it is checked again', async () => {
    const older = await previewOf('lost.csv', 'email,first_name\nwade@acme.test,Wade\n');
    const newer = await previewOf('kept.csv', 'email,first_name\nvera@acme.test,Vera\n');
    await t.slack.clickButton(newer, 'Import 1 row', { user: 'UADMIN' });
    await summaryOf('kept.csv');
    // A database crash empties the unlogged table of staged rows.
    const lost = await t.em().findOneOrFail(CsvImport, { fileName: 'lost.csv' });
    await t.em().getConnection().execute('delete from csv_import_row where csv_import_id = ?', [lost.id]);

    await t.slack.clickButton(older, 'Import 1 row', { user: 'UADMIN' });
    const shown = await eventually(() => {
      const now = textOf(current('DUADMIN', older.ts));
      return now.includes('was not imported') ? now : undefined;
    });
    expect(shown).toContain('were lost when the database restarted. Upload the file again');
    expect(shown).not.toContain('Import 1 row');
    await jobsDrained(t.em());
    const after = await t.em().findOneOrFail(CsvImport, lost.id, { refresh: true });
    expect(after.status).toBe('failed');
    expect(after.error).toContain('Upload the file again');
    expect(await t.em().count(AuditEvent, { action: 'csv_import.completed', subjectId: lost.id })).toBe(0);
    expect(await usersNamed('wade@acme.test')).toEqual([]);
    // A later click on the message (an older copy of it) says why, not that the file could not be read.
    const since = t.standin.responses.length;
    await t.slack.clickButton(older, 'Import 1 row', { user: 'UADMIN' });
    const answer = await t.standin.waitForResponse((r) => t.standin.responses.indexOf(r) >= since);
    expect(textOf(answer.body)).toBe(
      'lost.csv was not imported: The rows read from the file were lost when the database restarted. Upload the file again to import it.',
    );
  });

  it('posts a new error file when other rows are in error once checked again, even as many', async () => {
    const pat = await previewOf('pat.csv', 'email,first_name,role\npat@acme.test,Pat,contractor\n');
    await t.slack.clickButton(pat, 'Import 1 row', { user: 'UADMIN' });
    await summaryOf('pat.csv');
    // Pat's row is in error (the import does not change roles), Quin's is one to create.
    const older = await previewOf(
      'mix-old.csv',
      'email,first_name,role\npat@acme.test,Pat,employee\nquin2@acme.test,Quin,employee\n',
    );
    const isErrors = (f: { filename?: string }) => f.filename === 'mix-old-errors.csv';
    const first = await eventually(() => t.standin.uploadedFiles.find(isErrors));
    expect(contentOf(first)).toContain('pat@acme.test');
    const newer = await previewOf('mix-new.csv', 'email,first_name,role\nquin2@acme.test,Quin,contractor\n');
    await t.slack.clickButton(newer, 'Import 1 row', { user: 'UADMIN' });
    await summaryOf('mix-new.csv');
    // An admin makes Pat an employee in Roster: Pat's row stops being in error, and Quin's starts.
    await t
      .em()
      .getConnection()
      .execute(`update app_user set role = 'employee' where email = 'pat@acme.test'`);

    await t.slack.clickButton(older, 'Import 1 row', { user: 'UADMIN' });
    const second = await eventually(() => t.standin.uploadedFiles.filter(isErrors)[1]);
    expect(contentOf(second)).toContain('quin2@acme.test');
    expect(contentOf(second)).not.toContain('pat@acme.test');
    expect(t.standin.uploadedFiles.filter(isErrors)).toHaveLength(2);
    const mix = await t.em().findOneOrFail(CsvImport, { fileName: 'mix-old.csv' });
    expect(mix.counts).toMatchObject({ error: 1, unchanged: 1 });
  });

  it('lets two files dropped together both be imported, the second after it is checked again', async () => {
    const first = await previewOf('team-a.csv', 'email,first_name\nyara@acme.test,Yara\n');
    const second = await previewOf('team-b.csv', 'email,first_name\nzeno@acme.test,Zeno\n');
    await t.slack.clickButton(first, 'Import 1 row', { user: 'UADMIN' });
    await summaryOf('team-a.csv');

    await t.slack.clickButton(second, 'Import 1 row', { user: 'UADMIN' });
    const refreshed = await eventually(() => {
      const now = current('DUADMIN', second.ts);
      return textOf(now).includes('Checked again, nothing imported') ? now : undefined;
    });
    // Unrelated to team-a.csv, its row is still one to create.
    expect(textOf(refreshed)).toContain('*1* to create');
    await t.slack.clickButton(refreshed, 'Import 1 row', { user: 'UADMIN' });
    await summaryOf('team-b.csv');
    expect((await usersNamed('yara@acme.test', 'zeno@acme.test')).map((u) => u.email)).toEqual([
      'yara@acme.test',
      'zeno@acme.test',
    ]);
  });
});
