import { Writable } from 'node:stream';
import pg from 'pg';
import { createLogger } from '../src/shared/logger.ts';
import { eventually, startTestApp, submitWhileWorked } from './support/app.ts';
import { findButton, textOf } from './support/views.ts';

// Slack's request is answered at the ack (as in production), and the click's listener goes on working after
// it: an admin presses Import on a CSV preview, and Roster is stopped right then. The stop must let the
// click finish (start the import, redraw the preview) before it closes the database.

function capture() {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk, _enc, done) {
      lines.push(...String(chunk).split('\n').filter(Boolean));
      done();
    },
  });
  return { logger: createLogger('info', stream), lines };
}

async function connect(url: string): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: url });
  client.on('error', () => {});
  await client.connect();
  return client;
}

describe.each(['http', 'socket'] as const)('a stop while a click is still being worked (%s)', (mode) => {
  it('lets the click finish before the database closes: the import starts, the preview says so, no error', async () => {
    const { logger, lines } = capture();
    const t = await startTestApp({
      seatLimit: 10,
      logger,
      processBeforeResponse: false,
      socketMode: mode === 'socket',
      env: { STOP_GRACE_SECONDS: '10' },
    });
    const holder = await connect(t.db.url);
    const watcher = await connect(t.db.url);
    try {
      const file = t.standin.addFile({
        id: 'F000001',
        name: 'people.csv',
        content: 'type,first_name,last_name,email,role\nuser,Ann,Lee,ann@acme.test,employee\n',
        user: 'UADMIN',
      });
      await t.slack.fileShare('UADMIN', file);
      const preview = await eventually(() =>
        t.standin.messages
          .filter((m) => m.channel === 'DUADMIN' && m.text?.startsWith('Preview of people.csv'))
          .at(-1),
      );
      const button = findButton(preview.blocks, { actionId: undefined }).action;
      expect(button.text.text).toBe('Import 1 row');

      // Another session holds the import's row, so the click's work is still under way after its ack.
      await holder.query('begin');
      await holder.query(`select 1 from csv_import where file_id = 'F000001' for update`);
      const clicked = await t.slack.clickButton(preview, button.text.text, { user: 'UADMIN' });
      expect(clicked.status).toBe(200);
      await eventually(async () => {
        const { rows } = await watcher.query(
          `select 1 from pg_stat_activity where datname = current_database() and wait_event_type = 'Lock'`,
        );
        return rows.length > 0;
      });

      const stopping = t.roster.stop();
      // The port closes at once (no drain set): nothing new comes in while the click is finished.
      await eventually(() =>
        fetch(`${t.url}/healthz`).then(
          () => false,
          () => true,
        ),
      );
      // Time for everything after the port to stop, were the stop not waiting for the click.
      await new Promise((r) => setTimeout(r, 2000));
      await holder.query('commit');
      await stopping;

      const { rows } = await watcher.query(`select status from csv_import where file_id = 'F000001'`);
      expect(['importing', 'completed']).toContain(rows[0]?.status);
      const now = t.standin.messages.filter((m) => m.channel === 'DUADMIN' && m.ts === preview.ts).at(-1);
      expect(textOf(now)).toContain('Import started by <@UADMIN>');
      const errors = lines.filter((l) => (JSON.parse(l) as { level: number }).level >= 50);
      expect(errors).toEqual([]);
    } finally {
      await holder.end().catch(() => {});
      await watcher.end().catch(() => {});
      await t.stop();
    }
  }, 60_000);

  it('acknowledges a form submission still being worked before its ack, and shows its field errors', async () => {
    const t = await startTestApp({
      seatLimit: 10,
      processBeforeResponse: false,
      socketMode: mode === 'socket',
      env: { STOP_GRACE_SECONDS: '10' },
    });
    try {
      const { answer } = await submitWhileWorked(t, () => t.roster.stop());
      expect(answer.status).toBe(200);
      expect(answer.json?.response_action).toBe('errors');
    } finally {
      await t.stop();
    }
  }, 60_000);
});
