import { query, sql } from '../../../src/db/sql.ts';
import { CsvImport } from '../../../src/features/csv-import/csv-import.entity.ts';
import { ERROR_FILE_JOB } from '../../../src/features/csv-import/csv-import.jobs.ts';
import { eventually, jobsDrained, startTestApp, type TestApp } from '../../support/app.ts';

// The error file of an import is uploaded to Slack, which can take seconds or wait for Slack's rate limits,
// with no database transaction held open meanwhile; and still once, whatever stops or repeats its job.

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp({ seatLimit: 10 });
});
afterAll(() => t.stop());

let fileNo = 0;
/** Drops a CSV file with one row in error (and one good row) in UADMIN's DM with the bot. */
async function dropFileWithAnError(name: string): Promise<string> {
  const csv = ['email,first_name', `not-an-email-${name},Nina`, `${name}@acme.test,Otto`].join('\n');
  const file = t.standin.addFile({ id: `FERR${String(++fileNo).padStart(4, '0')}`, name, content: csv });
  await t.slack.fileShare('UADMIN', file);
  const csvImport = await eventually(() => t.em().findOne(CsvImport, { fileName: name }));
  return csvImport.id;
}

const uploadsOf = (name: string) =>
  t.standin.uploadedFiles.filter((f) => f.filename === name.replace(/\.csv$/, '-errors.csv'));

/** Sessions on the app's database that sit in an open transaction begun before `since`. */
async function openTransactions(since: Date): Promise<string[]> {
  const rows = await query<{ query: string }>(
    t.em(),
    sql`select left(query, 120) as query from pg_stat_activity
        where datname = current_database() and state like 'idle in transaction%' and xact_start < ${since}`,
  );
  return rows.map((r) => r.query);
}

describe("an import's error file", () => {
  it('is uploaded with no database transaction open while Slack is called', async () => {
    const seen: { method: string; open: string[] }[] = [];
    const look = (method: string) => async () => {
      const since = new Date();
      // As when Slack is slow: a transaction held across the call sits idle meanwhile.
      await new Promise((r) => setTimeout(r, 300));
      seen.push({ method, open: await openTransactions(since) });
    };
    t.standin.whileAnswering('files.getUploadURLExternal', look('files.getUploadURLExternal'));
    t.standin.whileAnswering('files.completeUploadExternal', look('files.completeUploadExternal'));
    try {
      await dropFileWithAnError('quiet.csv');
      const upload = await eventually(() => uploadsOf('quiet.csv')[0]);
      expect(upload.content.toString('utf8')).toContain('not-an-email-quiet.csv');
    } finally {
      t.standin.whileAnswering('files.getUploadURLExternal', null);
      t.standin.whileAnswering('files.completeUploadExternal', null);
    }
    expect(seen).toEqual([
      { method: 'files.getUploadURLExternal', open: [] },
      { method: 'files.completeUploadExternal', open: [] },
    ]);
    await jobsDrained(t.em(), { queues: [ERROR_FILE_JOB] });
    expect(uploadsOf('quiet.csv')).toHaveLength(1);
  });

  it('is not uploaded again by a retry after a stop that came once Slack had completed it', async () => {
    const importId = await dropFileWithAnError('stopped-late.csv');
    await eventually(() => uploadsOf('stopped-late.csv').length === 1);
    await jobsDrained(t.em(), { queues: [ERROR_FILE_JOB] });
    // As a worker that stopped right after Slack completed the upload leaves it: not marked done.
    const key = `csv-import:${importId}:error-file:preview`;
    await query(t.em(), sql`update slack_once set done_at = null where key = ${key}`);
    const infos = t.standin.callsTo('files.info').length;
    await t.roster.deps.jobs.send(ERROR_FILE_JOB, { importId, after: 'preview', count: 1 });
    await jobsDrained(t.em(), { queues: [ERROR_FILE_JOB] });
    expect(uploadsOf('stopped-late.csv')).toHaveLength(1);
    // Slack was asked about the file the stopped try had begun, and that settled it.
    expect(t.standin.callsTo('files.info').length).toBe(infos + 1);
    const [row] = await query<{ done: boolean }>(
      t.em(),
      sql`select done_at is not null as done from slack_once where key = ${key}`,
    );
    expect(row?.done).toBe(true);
  });

  it('is uploaded by the retry when an upload failed before Slack completed it, once', async () => {
    t.standin.failNext('files.completeUploadExternal', 'internal_error');
    await dropFileWithAnError('failed-once.csv');
    const upload = await eventually(() => uploadsOf('failed-once.csv')[0], 30_000);
    expect(upload.content.toString('utf8')).toContain('not-an-email-failed-once.csv');
    await jobsDrained(t.em(), { queues: [ERROR_FILE_JOB] });
    expect(uploadsOf('failed-once.csv')).toHaveLength(1);
  }, 45_000);

  it('is uploaded once when two copies of its job run at the same moment', async () => {
    const importId = await dropFileWithAnError('twice.csv');
    await eventually(() => uploadsOf('twice.csv').length === 1);
    await jobsDrained(t.em(), { queues: [ERROR_FILE_JOB] });
    // Two copies of the job for the import's own error file, as a retried run could queue, with Slack slow.
    t.standin.delayNext('files.getUploadURLExternal', 1_000);
    await Promise.all([
      t.roster.deps.jobs.send(ERROR_FILE_JOB, { importId, after: 'import', count: 1 }),
      t.roster.deps.jobs.send(ERROR_FILE_JOB, { importId, after: 'import', count: 1 }),
    ]);
    await jobsDrained(t.em(), { queues: [ERROR_FILE_JOB], timeoutMs: 30_000 });
    const afterImport = uploadsOf('twice.csv').filter((f) => /^Every row/.test(String(f.initialComment)));
    expect(afterImport).toHaveLength(1);
    expect(uploadsOf('twice.csv')).toHaveLength(2);
  }, 45_000);
});
