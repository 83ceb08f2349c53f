import { createServer } from 'node:net';
import pg from 'pg';
import { CSV_JOBS } from '../src/features/csv-import/import-types.ts';
import { INVITE_JOBS } from '../src/features/invites/invitation.service.ts';
import { User } from '../src/features/people/user.entity.ts';
import { eventually, startTestApp, type TestApp } from './support/app.ts';
import { textOf } from './support/views.ts';

// As in production (BULK_JOBS=thread, the default): imports and invitation deliveries are worked by a
// thread of their own, so their work never holds up the event loop that acknowledges Slack.

/** A port free on 127.0.0.1 now: the links the thread writes into emails must name the app's address. */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  const address = server.address();
  await new Promise((ok) => server.close(ok));
  if (!address || typeof address === 'string') throw new Error('no port');
  return address.port;
}

let t: TestApp;
let port: number;
beforeAll(async () => {
  port = await freePort();
  t = await startTestApp({
    seatLimit: 10,
    env: { BULK_JOBS: 'thread', PORT: String(port), PUBLIC_URL: `http://127.0.0.1:${port}` },
  });
});
afterAll(() => t.stop());

describe('the bulk jobs thread', () => {
  it('is reported ready, and the thread that answers Slack works none of the bulk queues', async () => {
    const res = await fetch(`${t.url}/readyz`);
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ status: 'ready', checks: { bulkJobs: 'own thread' } });
    for (const queue of [CSV_JOBS.preview, CSV_JOBS.run, INVITE_JOBS.deliver, INVITE_JOBS.deliverBatch]) {
      expect(t.roster.jobs.has(queue)).toBe(true);
      expect(t.roster.jobs.worksOn(queue)).toBe(false);
    }
  });

  it('previews and imports a CSV file and delivers its invitation by email with a working link', async () => {
    const csv = [
      'first_name,last_name,email,role,send_invitation',
      'Tara,Thread,tara.thread@acme.test,employee,yes',
      'Lou,Locked,lou.locked@acme.test,employee,no',
    ].join('\n');
    const file = t.standin.addFile({ id: 'FTHREAD001', name: 'thread.csv', content: csv, user: 'UADMIN' });
    await t.slack.fileShare('UADMIN', file);
    const preview = await eventually(
      () =>
        t.standin.messages.findLast(
          (m) => m.channel === 'DUADMIN' && /Preview of thread\.csv/.test(textOf(m)),
        ),
      20_000,
    );
    expect(textOf(preview)).toContain('*2* to create');
    await t.slack.clickButton(preview, 'Import 2 rows', { user: 'UADMIN' });
    const summary = await eventually(
      () =>
        t.standin.messages.find(
          (m) => m.method === 'chat.update' && m.text?.startsWith('Imported thread.csv'),
        ),
      20_000,
    );
    expect(textOf(summary)).toContain('1 invitation on the way');
    const users = await t
      .em()
      .find(User, { email: { $like: '%@acme.test' }, lastName: { $in: ['Thread', 'Locked'] } });
    expect(Object.fromEntries(users.map((u) => [u.email, u.status]))).toEqual({
      'tara.thread@acme.test': 'invited',
      'lou.locked@acme.test': 'locked',
    });
    // Tara is not in the workspace: the thread mails her, and the link opens on this app.
    const mail = await t.smtp.waitForMail((m) => m.toText.includes('tara.thread@acme.test'), 20_000);
    const link = (mail.text ?? '').match(/http:\/\/127\.0\.0\.1:\d+\/\S+/)?.[0];
    expect(link).toBeDefined();
    expect(new URL(link as string).port).toBe(String(port));
    const page = await fetch(link as string);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('Tara');
  });

  it('is started again after it fails, and /readyz says so meanwhile without taking the instance out', async () => {
    const first = t.roster.bulkThread?.current();
    expect(first).toBeDefined();
    await first?.terminate();
    // Still ready: this instance answers Slack, and the bulk jobs wait in the queue meanwhile.
    const down = await fetch(`${t.url}/readyz`);
    expect(down.status).toBe(200);
    expect(await down.json()).toMatchObject({
      checks: { bulkJobs: expect.stringMatching(/^own thread, restarting since /) },
    });
    await eventually(async () => {
      const res = await fetch(`${t.url}/readyz`);
      return ((await res.json()) as { checks: { bulkJobs: string } }).checks.bulkJobs === 'own thread';
    }, 20_000);
    expect(t.roster.bulkThread?.current()).not.toBe(first);
    // The new thread works the queues: a file shared now is previewed.
    const csv = 'first_name,last_name,email\nRita,Restart,rita.restart@acme.test\n';
    const file = t.standin.addFile({ id: 'FTHREAD002', name: 'again.csv', content: csv, user: 'UADMIN' });
    await t.slack.fileShare('UADMIN', file);
    await eventually(
      () =>
        t.standin.messages.findLast(
          (m) => m.channel === 'DUADMIN' && /Preview of again\.csv/.test(textOf(m)),
        ),
      20_000,
    );
  });

  it('stops with the app, its connections closed', async () => {
    const other = await startTestApp({ env: { BULK_JOBS: 'thread' } });
    const connections = async () => {
      const client = new pg.Client({ connectionString: other.db.url });
      await client.connect();
      try {
        const { rows } = await client.query<{ n: number }>(
          'select count(*)::int as n from pg_stat_activity where datname = current_database() and pid <> pg_backend_pid()',
        );
        return rows[0]?.n ?? 0;
      } finally {
        await client.end();
      }
    };
    try {
      expect(await connections()).toBeGreaterThan(0);
      const started = Date.now();
      await other.roster.stop();
      expect(Date.now() - started).toBeLessThan(5_000);
      // The thread's pool and job queue are closed with the app's own: no connection is left behind.
      expect(await connections()).toBe(0);
    } finally {
      await other.stop();
    }
  });
});
