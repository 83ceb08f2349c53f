import pg from 'pg';
import { CsvImport } from '../../../src/features/csv-import/csv-import.entity.ts';
import { User } from '../../../src/features/people/user.entity.ts';
import { eventually, jobsDrained, startTestApp, type TestApp } from '../../support/app.ts';
import type { PostedMessage } from '../../support/slack-standin.ts';
import { textOf } from '../../support/views.ts';

// An app of its own: the previews redrawn here would otherwise spend other files' share of chat.update.
let t: TestApp;
beforeAll(async () => {
  t = await startTestApp({ seatLimit: 10 });
});
afterAll(() => t.stop());

let fileNo = 0;

/** The message as it stands now: the last post or update with that channel and ts. */
function current(channel: string, ts: string): PostedMessage {
  const last = t.standin.messages.filter((m) => m.channel === channel && m.ts === ts).at(-1);
  if (!last) throw new Error(`no message ${ts} in ${channel}`);
  return last;
}

/** Drops `content` as `name` in the admin's DM and waits for its preview. */
async function previewOf(name: string, content: string) {
  const file = t.standin.addFile({ id: `FS${String(++fileNo).padStart(5, '0')}`, name, content });
  await t.slack.fileShare('UADMIN', file);
  const reading = await eventually(() =>
    t.standin.messages.find(
      (m) =>
        m.method === 'chat.postMessage' && m.channel === 'DUADMIN' && m.text?.includes(`Reading ${name}`),
    ),
  );
  return eventually(() => {
    const now = current('DUADMIN', reading.ts);
    return textOf(now).includes(`Preview of ${name}`) ? now : undefined;
  }, 10_000);
}

const summaryOf = (name: string) =>
  eventually(() =>
    t.standin.messages.find((m) => m.method === 'chat.update' && m.text?.startsWith(`Imported ${name}`)),
  );

describe('a preview made before people changed by hand', () => {
  it('is checked again, and says so, before anything is imported', async () => {
    const first = await previewOf('deb.csv', 'email,first_name,title\ndeb@acme.test,Deb,Chef\n');
    await t.slack.clickButton(first, 'Import 1 row', { user: 'UADMIN' });
    await summaryOf('deb.csv');
    const stale = await previewOf('deb-2.csv', 'email,first_name,title\ndeb@acme.test,Deb,Cook\n');
    // Someone edits Deb's title after that preview, as the card does.
    await t.em().getConnection().execute(`update app_user set title = 'Baker' where email = 'deb@acme.test'`);

    await t.slack.clickButton(stale, 'Import 1 row', { user: 'UADMIN' });
    const refreshed = await eventually(() => {
      const now = textOf(current('DUADMIN', stale.ts));
      return now.includes('Checked again, nothing imported') ? now : undefined;
    });
    expect(refreshed).toContain('people or contacts in this file changed in Roster');
    expect(refreshed).toContain('Import 1 row');
    await jobsDrained(t.em());
    expect((await t.em().findOneOrFail(User, { email: 'deb@acme.test' })).title).toBe('Baker');
    expect((await t.em().findOneOrFail(CsvImport, { fileName: 'deb-2.csv' })).startedAt).toBeNull();
  });

  it('is checked again when people changed by hand after it, saying so to an older click while it is checked', async () => {
    const older = await previewOf('hand.csv', 'email,first_name,title\nabe@acme.test,Abe,Chef\n');
    await t.slack.clickButton(older, 'Import 1 row', { user: 'UADMIN' });
    await summaryOf('hand.csv');
    const stale = await previewOf('hand-2.csv', 'email,first_name,title\nabe@acme.test,Abe,Cook\n');
    // An admin changes Abe's title on his card after that preview.
    await t.em().getConnection().execute(`update app_user set title = 'Baker' where email = 'abe@acme.test'`);

    // Staged rows held still: the check waits, as a large file's check takes its time.
    const hold = new pg.Client({ connectionString: t.db.url });
    await hold.connect();
    await hold.query('begin');
    await hold.query('lock table csv_import_row in share mode');
    try {
      await t.slack.clickButton(stale, 'Import 1 row', { user: 'UADMIN' });
      const checking = await eventually(() => {
        const now = current('DUADMIN', stale.ts);
        return textOf(now).includes('Checking again, nothing imported') ? now : undefined;
      });
      expect(textOf(checking)).toContain('people or contacts in this file changed in Roster');
      expect(textOf(checking)).not.toContain('Import 1 row');
      // An older click while the check runs says it is being checked, not that it was.
      const since = t.standin.responses.length;
      await t.slack.clickButton(stale, 'Import 1 row', { user: 'UADMIN' });
      const answer = await t.standin.waitForResponse((r) => t.standin.responses.indexOf(r) >= since);
      expect(textOf(answer.body)).toContain('hand-2.csv is being checked again');

      // Cancel, offered while it is checked, wins over the check finishing.
      const cancelled = t.slack.clickButton(checking, 'Cancel', { user: 'UADMIN' });
      await new Promise((ok) => setTimeout(ok, 300));
      await hold.query('commit');
      await cancelled;
    } finally {
      await hold.end();
    }
    await jobsDrained(t.em());
    await eventually(() => /Cancelled by <@UADMIN>/.test(textOf(current('DUADMIN', stale.ts))));
    const shown = textOf(current('DUADMIN', stale.ts));
    expect(shown).not.toContain('Import 1 row');
    const row = await t.em().findOneOrFail(CsvImport, { fileName: 'hand-2.csv' });
    expect(row.status).toBe('cancelled');
    expect(row.startedAt).toBeNull();
    expect((await t.em().findOneOrFail(User, { email: 'abe@acme.test' })).title).toBe('Baker');
  });

  it('stays cancelled when Cancel is clicked as the check finishes, whichever redraw reaches Slack last', async () => {
    const first = await previewOf('gus.csv', 'email,first_name,title\ngus@acme.test,Gus,Chef\n');
    await t.slack.clickButton(first, 'Import 1 row', { user: 'UADMIN' });
    await summaryOf('gus.csv');
    const stale = await previewOf('gus-2.csv', 'email,first_name,title\ngus@acme.test,Gus,Cook\n');
    await t.em().getConnection().execute(`update app_user set title = 'Baker' where email = 'gus@acme.test'`);

    // The admin clicks Cancel on the "Checking again" message just as the checked preview is on its way to
    // Slack: the cancel is done and drawn before that redraw lands.
    let cancelling: Promise<unknown> | undefined;
    t.standin.whileAnswering('chat.update', async (args) => {
      if (cancelling || !String(args.text ?? '').startsWith('Preview of gus-2.csv')) return;
      if (!JSON.stringify(args.blocks ?? '').includes('Checked again')) return;
      cancelling = t.slack.clickButton(current('DUADMIN', stale.ts), 'Cancel', { user: 'UADMIN' });
      await cancelling;
    });
    try {
      await t.slack.clickButton(stale, 'Import 1 row', { user: 'UADMIN' });
      await eventually(() => cancelling);
      await cancelling;
      await jobsDrained(t.em());
    } finally {
      t.standin.whileAnswering('chat.update', null);
    }
    await eventually(() => {
      const now = textOf(current('DUADMIN', stale.ts));
      return /Cancelled by <@UADMIN>/.test(now) && !now.includes('Import 1 row');
    });
    expect((await t.em().findOneOrFail(CsvImport, { fileName: 'gus-2.csv' })).status).toBe('cancelled');
  });
});
