import { type Roster, startRoster } from '../src/app.ts';
import { loadConfig } from '../src/config.ts';
import { query, sql } from '../src/db/sql.ts';
import { CsvImport } from '../src/features/csv-import/csv-import.entity.ts';
import { createLogger } from '../src/shared/logger.ts';
import { BOT_TOKEN, eventually, SIGNING_SECRET, startTestApp, type TestApp } from './support/app.ts';
import { textOf } from './support/views.ts';

// An instance with BULK_JOBS=false answers Slack but leaves imports and deliveries to the instances that
// work them: its event loop is never held up by a large file.

let front: TestApp;
let worker: Roster | undefined;

beforeAll(async () => {
  front = await startTestApp({ env: { BULK_JOBS: 'false' }, seatLimit: 10 });
});
afterAll(async () => {
  await worker?.stop();
  await front.stop();
});

describe('BULK_JOBS=false', () => {
  it('queues a CSV preview without reading the file, and a bulk-jobs instance on the same database reads it', async () => {
    const file = front.standin.addFile({
      id: 'FBULK00001',
      name: 'team.csv',
      content: 'type,first_name,last_name,email\nuser,Ann,Lee,ann.lee@acme.test\n',
      user: 'UADMIN',
    });
    await front.slack.fileShare('UADMIN', file);
    await front.standin.waitForMessage((m) => m.channel === 'DUADMIN' && /Reading team\.csv/.test(textOf(m)));
    const queued = async () => {
      const rows = await query<{ state: string }>(
        front.em(),
        sql`select state from pgboss.job where name = 'csv-import.preview'`,
      );
      return rows.map((r) => r.state);
    };
    expect(await queued()).toEqual(['created']);
    expect((await front.em().findOneOrFail(CsvImport, { fileId: 'FBULK00001' })).status).toBe('reading');

    const config = loadConfig({
      SLACK_SIGNING_SECRET: SIGNING_SECRET,
      SLACK_BOT_TOKEN: BOT_TOKEN,
      SLACK_API_URL: front.standin.apiUrl,
      DATABASE_URL: front.db.url,
      SMTP_URL: front.smtp.url,
      PORT: '0',
      PUBLIC_URL: 'http://localhost',
      LOG_LEVEL: 'silent',
    });
    worker = await startRoster({ config, logger: createLogger('silent'), host: '127.0.0.1' });
    const preview = await eventually(
      () =>
        front.standin.messages.findLast(
          (m) => m.channel === 'DUADMIN' && /Preview of team\.csv/.test(textOf(m)),
        ),
      20_000,
    );
    expect(textOf(preview)).toContain('*1* to create');
    // The preview is posted just before its job is marked done.
    await eventually(async () => (await queued()).join() === 'completed');
  });
});
