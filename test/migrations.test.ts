import { execFile } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { chmod, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Writable } from 'node:stream';
import { promisify } from 'node:util';
import pg from 'pg';
import { startRoster } from '../src/app.ts';
import { loadConfig } from '../src/config.ts';
import { initORM } from '../src/db/orm.ts';
import { schemaChanges } from '../src/db/schema-diff.ts';
import { auditedUrl } from '../src/features/audit/audit.service.ts';
import { createLogger } from '../src/shared/logger.ts';
import { redactedUrl } from '../src/shared/outbound.ts';
import { createTestDatabase, type TestDatabase, testDatabasePrefix } from './support/database.ts';
import { adminQuery, withDatabase } from './support/postgres.ts';

const root = resolve(import.meta.dirname, '..');
const run = promisify(execFile);

/** `npm run migration:<command>` as a developer runs it, with only these variables set. */
async function migration(command: string, env: Record<string, string>, ...args: string[]) {
  try {
    const { stdout, stderr } = await run('npm', ['run', '-s', `migration:${command}`, '--', ...args], {
      cwd: root,
      env: { PATH: `${join(root, 'node_modules/.bin')}:${process.env.PATH}`, HOME: process.env.HOME, ...env },
    });
    return { code: 0, output: stdout + stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, output: e.stdout + e.stderr };
  }
}

const migrationFiles = () => readdir(join(root, 'migrations'));

describe('the migrations', () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase();
  });
  afterAll(async () => {
    await db.drop();
  });

  it('build exactly the schema the entities describe: a forgotten migration fails here', async () => {
    const orm = await initORM(db.url);
    try {
      expect(await schemaChanges(orm)).toEqual({ up: [], down: [] });
      // The check sees a column the entities have and the database lacks.
      await orm.em.getConnection().execute('alter table contact drop column phone');
      expect((await schemaChanges(orm)).up).toEqual(['alter table "contact" add "phone" varchar(255) null;']);
    } finally {
      await orm.close(true);
    }
  });
});

describe('npm run migration:*', () => {
  const adminUrl = () => process.env.ROSTER_TEST_ADMIN_URL as string;
  let name: string;
  beforeAll(async () => {
    name = `${testDatabasePrefix()}migrate`;
    await adminQuery(adminUrl(), `create database "${name}"`);
  });
  afterAll(async () => {
    await adminQuery(adminUrl(), `drop database if exists "${name}" with (force)`);
  });

  it('applies, undoes and checks migrations on the database in DATABASE_URL', async () => {
    const env = { DATABASE_URL: withDatabase(adminUrl(), name) };
    const before = await migrationFiles();

    const refused = await migration('create', env, 'too_early');
    expect(refused.code).not.toBe(0);
    expect(refused.output).toMatch(/This database lacks \d+ migration\(s\).*run npm run migration:up first/);

    const up = await migration('up', env);
    expect(up.code).toBe(0);
    expect(up.output).toContain('Applied Migration20261123000000_initial');

    const latest = before
      .filter((f) => f.endsWith('.ts'))
      .sort()
      .at(-1)
      ?.replace(/\.ts$/, '');
    const down = await migration('down', env);
    expect(down.output).toContain(`Undid ${latest}`);
    expect((await migration('up', env)).output).toContain(`Applied ${latest}`);

    const create = await migration('create', env, 'nothing_new');
    const written = (await migrationFiles()).filter((f) => !before.includes(f));
    // A file written here would be picked up by every later start: never leave one behind.
    await Promise.all(written.map((f) => rm(join(root, 'migrations', f))));
    expect(create.code).toBe(0);
    expect(create.output).toContain('The database already matches the entities: no migration written');
    expect(written).toEqual([]);
  }, 60_000);

  it('without DATABASE_URL, uses the embedded database under DATA_DIR, as npm start does', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'roster-migrate-'));
    await chmod(dataDir, 0o755);
    try {
      const up = await migration('up', { DATA_DIR: dataDir });
      expect(up.output).toContain(`Database: the embedded one under ${dataDir}`);
      expect(up.output).toContain('Applied Migration20261123000000_initial');
      expect(up.code).toBe(0);
      const again = await migration('up', { DATA_DIR: dataDir });
      expect(again.output).toContain('No pending migrations.');
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  }, 90_000);
});

describe('instances that start together on a database with pending migrations', () => {
  const adminUrl = () => process.env.ROSTER_TEST_ADMIN_URL as string;
  const names: string[] = [];
  const freshDatabase = async (suffix: string) => {
    const name = `${testDatabasePrefix()}${suffix}`;
    names.push(name);
    await adminQuery(adminUrl(), `create database "${name}"`);
    return withDatabase(adminUrl(), name);
  };
  afterAll(async () => {
    for (const name of names) await adminQuery(adminUrl(), `drop database if exists "${name}" with (force)`);
  });

  /** Each migration file and how many times the database records it as applied. */
  const recorded = async (url: string) => {
    const { rows } = await adminQuery(
      url,
      'select name, count(*)::int as n from mikro_orm_migrations group by name order by name',
    );
    return rows.map((r) => `${r.name} ${r.n}`);
  };
  const everyMigrationOnce = async () =>
    (await migrationFiles())
      .filter((f) => f.endsWith('.ts'))
      .sort()
      .map((f) => `${f.replace(/\.ts$/, '')} 1`);

  it('three starts at once: all start, and every migration is applied once', async () => {
    const url = await freshDatabase('together');
    const starts = await Promise.allSettled([
      initORM(url, { migrate: true }),
      initORM(url, { migrate: true }),
      initORM(url, { migrate: true }),
    ]);
    await Promise.all(starts.map((s) => (s.status === 'fulfilled' ? s.value.close(true) : undefined)));
    expect(starts.map((s) => (s.status === 'fulfilled' ? 'started' : String(s.reason)))).toEqual([
      'started',
      'started',
      'started',
    ]);
    expect(await recorded(url)).toEqual(await everyMigrationOnce());
  }, 60_000);

  it('a migration that fails says which were pending, that none was applied, and what to do', async () => {
    const url = await freshDatabase('fails');
    const orm = await initORM(url, { migrate: true });
    await orm.migrator.down();
    await orm.close(true);
    const last = (await everyMigrationOnce()).at(-1)!.replace(/ 1$/, '');
    // The database refuses what applying it writes (as a column added by hand would make it refuse).
    await adminQuery(
      url,
      `create function refuse_migrations() returns trigger language plpgsql as $$
         begin raise exception 'refused by the test'; end $$;
       create trigger refuse_migrations before insert on mikro_orm_migrations
         for each row execute function refuse_migrations()`,
    );
    const before = await recorded(url);
    const failed = await initORM(url, { migrate: true }).then(
      (o) => o.close(true).then(() => 'started'),
      (err: Error) => err.message,
    );
    expect(failed).toBe(
      `Applying 1 database migration(s) failed (${last}): refused by the test. None of them was applied, so the database is as it was before. Fix what the database says (see Upgrading in the README), or go back to the version that ran before, and start again.`,
    );
    expect(await recorded(url)).toEqual(before);
  }, 60_000);

  it('two npm run migration:up at once: both succeed, and every migration is applied once', async () => {
    const url = await freshDatabase('together_cli');
    const [a, b] = await Promise.all([
      migration('up', { DATABASE_URL: url }),
      migration('up', { DATABASE_URL: url }),
    ]);
    expect({ a: a.code, b: b.code }).toEqual({ a: 0, b: 0 });
    // One applied them; the other waited and found nothing left, or applied what was left.
    expect(`${a.output}\n${b.output}`).toContain('Applied Migration20261123000000_initial');
    expect(await recorded(url)).toEqual(await everyMigrationOnce());
  }, 90_000);
});

describe('migrations on a table another session holds (a long report, a backup)', () => {
  const adminUrl = () => process.env.ROSTER_TEST_ADMIN_URL as string;
  const names: string[] = [];
  afterAll(async () => {
    for (const name of names) await adminQuery(adminUrl(), `drop database if exists "${name}" with (force)`);
  });

  /** A database with one migration that alters "invitation" pending, and a session reading that table. */
  const heldDatabase = async (suffix: string) => {
    const name = `${testDatabasePrefix()}${suffix}`;
    names.push(name);
    await adminQuery(adminUrl(), `create database "${name}"`);
    const url = withDatabase(adminUrl(), name);
    const orm = await initORM(url, { migrate: true });
    await orm.migrator.down(['Migration20261209000000_invitation_failure_untold']);
    await orm.close(true);
    const holder = new pg.Client({ connectionString: url, application_name: 'nightly-report' });
    await holder.connect();
    await holder.query('begin');
    await holder.query('select count(*) from invitation');
    return { url, holder };
  };
  const hasFailureUntold = async (url: string) =>
    (
      await adminQuery(
        url,
        `select 1 from information_schema.columns where table_name = 'invitation' and column_name = 'failure_untold'`,
      )
    ).rows.length === 1;

  it('give way, so the table keeps answering, say who holds it, and apply once it is free', async () => {
    const { url, holder } = await heldDatabase('held');
    const told: string[] = [];
    const starting = initORM(url, {
      migrate: true,
      tableLocks: { waitMs: 200, retryInMs: 300, giveUpAfterMs: 60_000 },
      onTableLocked: (holders) => told.push(holders),
    });
    try {
      await new Promise((r) => setTimeout(r, 800));
      // A request of an instance still serving: it would queue behind a migration that waited for the lock.
      const other = new pg.Client({ connectionString: url });
      await other.connect();
      try {
        await other.query('set statement_timeout = 2000');
        await other.query('select count(*) from invitation');
        await other.query(`update invitation set expires_at = expires_at where false`);
      } finally {
        await other.end();
      }
      expect(told.length).toBeGreaterThanOrEqual(1);
      expect(told[0]).toMatch(/^pid \d+, nightly-report, idle in transaction, transaction open \d+ s$/);
      expect(await hasFailureUntold(url)).toBe(false);
    } finally {
      await holder.query('commit');
      await holder.end();
    }
    await (await starting).close(true);
    expect(await hasFailureUntold(url)).toBe(true);
  }, 60_000);

  it('hold up a request on that table for half a second at most, by default', async () => {
    const { url, holder } = await heldDatabase('held_default');
    const told: string[] = [];
    const starting = initORM(url, {
      migrate: true,
      tableLocks: { retryInMs: 300, giveUpAfterMs: 60_000 },
      onTableLocked: (holders) => told.push(holders),
    });
    const other = new pg.Client({ connectionString: url });
    await other.connect();
    try {
      // The first attempt has given way: the next ones wait for the lock the same way.
      for (const since = Date.now(); told.length === 0 && Date.now() - since < 20_000; ) {
        await new Promise((r) => setTimeout(r, 50));
      }
      expect(told.length).toBeGreaterThanOrEqual(1);
      let slowest = 0;
      for (let i = 0; i < 6; i++) {
        const started = Date.now();
        await other.query('select count(*) from invitation');
        slowest = Math.max(slowest, Date.now() - started);
        await new Promise((r) => setTimeout(r, 150));
      }
      expect(slowest).toBeLessThan(2_000);
      expect(await hasFailureUntold(url)).toBe(false);
    } finally {
      await other.end();
      await holder.query('commit');
      await holder.end();
    }
    await (await starting).close(true);
    expect(await hasFailureUntold(url)).toBe(true);
  }, 60_000);

  it('give up in the end with a message that says who held the table and that nothing was applied', async () => {
    const { url, holder } = await heldDatabase('held_long');
    try {
      const failed = await initORM(url, {
        migrate: true,
        tableLocks: { waitMs: 100, retryInMs: 100, giveUpAfterMs: 700 },
      }).then(
        (o) => o.close(true).then(() => 'started'),
        (err: Error) => err.message,
      );
      expect(failed).toMatch(
        /^Applying 1 database migration\(s\) failed \(Migration\d+_invitation_failure_untold\): a table they change stayed locked by other sessions for \d+ s \(pid \d+, nightly-report, idle in transaction, transaction open \d+ s\); end those sessions or wait for them to finish\. None of them was applied/,
      );
      expect(await hasFailureUntold(url)).toBe(false);
    } finally {
      await holder.query('commit');
      await holder.end();
    }
  }, 60_000);
});

describe('20261204120000: scim.connected events keep only scheme, host and path', () => {
  const name = 'Migration20261204120000_scim_connected_url_redacted';
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase();
  });
  afterAll(async () => {
    await db.drop();
  });

  it('redacts the URLs older events hold as the admin entered them, as newer events are written', async () => {
    const orm = await initORM(db.url);
    try {
      const sql = (text: string, params: unknown[] = []) =>
        orm.em.getConnection().execute<Record<string, any>[]>(text, params);
      const [account] = await sql(
        `insert into account (id, team_id) values (gen_random_uuid(), 'T_MIGRATE') returning id`,
      );
      // As the connect form stored them before it refused such URLs (the WHATWG parser's own writing).
      const entered: [string, string][] = [
        ['https://provisioner:hunter2@app.example.com/scim/v2', 'https://app.example.com/scim/v2'],
        ['https://app.example.com/scim/v2?key=abc123', 'https://app.example.com/scim/v2?[redacted]'],
        ['https://app.example.com:8443/scim/v2#users', 'https://app.example.com:8443/scim/v2?[redacted]'],
        [
          'http://ops:p%40ss%3Aword@localhost:3001/scim?tenant=1&x=2#f',
          'http://localhost:3001/scim?[redacted]',
        ],
        ['https://keyonly@app.example.com/scim/v2?', 'https://app.example.com/scim/v2'],
        ['https://app.example.com/scim/v2', 'https://app.example.com/scim/v2'],
        ['https://app.example.com/scim/v2?[redacted]', 'https://app.example.com/scim/v2?[redacted]'],
        ['https://u:secret@app.example.com', 'https://app.example.com/'],
      ];
      const insert = (action: string, data: unknown) =>
        sql(
          `insert into audit_event (account_id, actor, action, subject_type, surface, data)
            values (?, 'UADMIN', ?, 'account', 'slack', ?::jsonb) returning id, change_xid::text as xid`,
          [account!.id, action, JSON.stringify(data)],
        ).then((rows) => rows[0]!);
      const rows = [];
      for (const [url] of entered) rows.push(await insert('scim.connected', { url, note: 'kept' }));
      // Other events are not the migration's to change.
      const webhook = await insert('webhook.endpoint_added', {
        url: 'https://hooks.example.com/in?token=t0k',
      });
      const noUrl = await insert('scim.connected', {});

      await sql(`delete from mikro_orm_migrations where name = ?`, [name]);
      expect((await orm.migrator.up({ migrations: [name] })).map((m) => m.name)).toEqual([name]);

      const stored = async (id: string) =>
        (await sql(`select data, change_xid::text as xid from audit_event where id = ?`, [id]))[0]!;
      for (const [i, [url, kept]] of entered.entries()) {
        const row = await stored(rows[i]!.id);
        expect({ url, data: row.data }).toEqual({ url, data: { url: kept, note: 'kept' } });
        // The rule the app applied to new events then.
        expect(row.data.url).toBe(redactedUrl(url));
        // The read API lists each audit event once: its place in the list stays.
        expect(row.xid).toBe(rows[i]!.xid);
      }
      expect((await stored(webhook.id)).data).toEqual({ url: 'https://hooks.example.com/in?token=t0k' });
      expect((await stored(noUrl.id)).data).toEqual({});
      const all = JSON.stringify(await sql(`select data from audit_event where action = 'scim.connected'`));
      expect(all).not.toMatch(/hunter2|abc123|p%40ss|secret|keyonly|tenant/);
    } finally {
      await orm.close(true);
    }
  });
});

describe('20261213000000: webhook and SCIM events keep only the scheme and host of a URL', () => {
  const name = 'Migration20261213000000_audit_url_paths_redacted';
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase();
  });
  afterAll(async () => {
    await db.drop();
  });

  it('cuts the paths older events hold, where a receiver keeps its key, as newer events are written', async () => {
    const orm = await initORM(db.url);
    try {
      const sql = (text: string, params: unknown[] = []) =>
        orm.em.getConnection().execute<Record<string, any>[]>(text, params);
      const [account] = await sql(
        `insert into account (id, team_id) values (gen_random_uuid(), 'T_MIGRATE') returning id`,
      );
      // As the app wrote them before: scheme, host and path, and ?[redacted] for a query string.
      const written: [string, string, string][] = [
        [
          'webhook.endpoint_added',
          'https://hooks.zapier.com/hooks/catch/123456/abc1x9/',
          'https://hooks.zapier.com',
        ],
        [
          'webhook.test_sent',
          'https://hooks.slack.com/services/T000/B000/XXXXsecretXXXX',
          'https://hooks.slack.com',
        ],
        [
          'webhook.endpoint_disabled',
          'https://discord.com/api/webhooks/1/tok3n?[redacted]',
          'https://discord.com',
        ],
        ['webhook.endpoint_deleted', 'http://localhost:3001/in/roster', 'http://localhost:3001'],
        ['webhook.endpoint_enabled', 'https://hook.eu1.make.com/k3y?[redacted]', 'https://hook.eu1.make.com'],
        ['scim.connected', 'https://app.example.com:8443/scim/v2/t3nant', 'https://app.example.com:8443'],
        ['webhook.endpoint_added', 'https://hooks.example.com', 'https://hooks.example.com'],
        ['webhook.endpoint_added', '[not a URL]', '[not a URL]'],
      ];
      const insert = (action: string, data: unknown) =>
        sql(
          `insert into audit_event (account_id, actor, action, subject_type, surface, data)
            values (?, 'UADMIN', ?, 'webhook_endpoint', 'slack', ?::jsonb) returning id, change_xid::text as xid`,
          [account!.id, action, JSON.stringify(data)],
        ).then((rows) => rows[0]!);
      const rows = [];
      for (const [action, url] of written) rows.push(await insert(action, { url, events: ['user.added'] }));
      // Other events are not the migration's to change.
      const other = await insert('user.updated', { url: 'https://example.com/people/ana' });
      const noUrl = await insert('webhook.endpoint_added', {});

      await sql(`drop table audit_url_key`);
      await sql(`delete from mikro_orm_migrations where name = ?`, [name]);
      expect((await orm.migrator.up({ migrations: [name] })).map((m) => m.name)).toEqual([name]);

      const stored = async (id: string) =>
        (await sql(`select data, change_xid::text as xid from audit_event where id = ?`, [id]))[0]!;
      for (const [i, [action, url, kept]] of written.entries()) {
        const row = await stored(rows[i]!.id);
        expect({ action, url, data: row.data }).toEqual({
          action,
          url,
          data: { url: kept, events: ['user.added'] },
        });
        // The read API lists each audit event once: its place in the list stays.
        expect(row.xid).toBe(rows[i]!.xid);
      }
      expect((await stored(other.id)).data).toEqual({ url: 'https://example.com/people/ana' });
      expect((await stored(noUrl.id)).data).toEqual({});
      const all = JSON.stringify(await sql(`select data from audit_event where action not like 'user.%'`));
      expect(all).not.toMatch(/abc1x9|XXXXsecretXXXX|tok3n|k3y|t3nant|\/in\/roster/);

      // The key of newer events' fingerprints: made once, random, never in the migration's text.
      const [key] = await sql(`select length(key) as bytes, encode(key, 'hex') as hex from audit_url_key`);
      expect(key!.bytes).toBe(32);
      const source = await readFile(join(root, 'migrations', `${name}.ts`), 'utf8');
      expect(source).not.toContain(key!.hex);
      // Newer events keep the same origin the migration leaves.
      const url = 'https://hooks.zapier.com/hooks/catch/123456/abc1x9/';
      const audited = await auditedUrl(orm.em.fork(), url);
      expect(audited.url).toBe('https://hooks.zapier.com');
      expect(audited.urlFingerprint).toBe(
        createHmac('sha256', Buffer.from(key!.hex, 'hex')).update(url).digest('hex').slice(0, 8),
      );
    } finally {
      await orm.close(true);
    }
  });
});

describe('20261207030000: members deleted in Slack before the mirror kept since when', () => {
  const name = 'Migration20261207030000_slack_member_deleted_since';
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase();
  });
  afterAll(async () => {
    await db.drop();
  });

  it('date a deletion from the first deactivation Roster made for it, else from when the row was written, before any decision on record', async () => {
    const orm = await initORM(db.url);
    try {
      const sql = (text: string, params: unknown[] = []) =>
        orm.em.getConnection().execute<Record<string, any>[]>(text, params);
      const [account] = await sql(
        `insert into account (id, team_id) values (gen_random_uuid(), 'T_MIGRATE') returning id`,
      );
      const member = (id: string, deleted: boolean, email: string | null = null) =>
        sql(
          `insert into slack_member (account_id, slack_user_id, deleted, email, known_at, recorded_at)
            values (?, ?, ?, ?, '2026-06-01T00:00:00Z', '2026-06-01T00:00:00Z')`,
          [account!.id, id, deleted, email],
        );
      await member('UBACK', true);
      await member('UMISSED', true);
      await member('USTAYED', false);
      await member('UMAILBACK', true, 'mailback@acme.test');
      await member('UREADDED', true, 'readded@acme.test');
      // Users Roster knows by email alone: one deactivated for Slack then reactivated by an admin, one added
      // (after the member left, for all Roster can tell) at the address of a deleted member.
      const [mailBack] = await sql(
        `insert into app_user (id, account_id, email, role, status, created_at, updated_at)
          values (gen_random_uuid(), ?, 'mailback@acme.test', 'client', 'not_invited', '2025-12-01T00:00:00Z', now())
          returning id`,
        [account!.id],
      );
      await sql(
        `insert into app_user (id, account_id, email, role, status, created_at, updated_at)
          values (gen_random_uuid(), ?, 'readded@acme.test', 'client', 'not_invited', '2026-04-01T00:00:00Z', now())`,
        [account!.id],
      );
      const [back] = await sql(
        `insert into app_user (id, account_id, email, role, status, slack_user_id, created_at, updated_at)
          values (gen_random_uuid(), ?, 'back@acme.test', 'client', 'not_invited', 'UBACK', now(), now())
          returning id`,
        [account!.id],
      );
      const audit = (action: string, actor: string, at: string, subject = back!.id) =>
        sql(
          `insert into audit_event (account_id, actor, action, subject_type, subject_id, surface, created_at)
            values (?, ?, ?, 'user', ?, 'slack', ?)`,
          [account!.id, actor, action, subject, at],
        );
      // Deactivated for Slack, then reactivated by an admin: that reactivation came after the deletion.
      await audit('user.deactivated', 'slack', '2026-01-01T00:00:00Z');
      await audit('user.reactivated', 'UADMIN', '2026-01-02T00:00:00Z');
      await audit('user.deactivated', 'slack', '2026-02-01T00:00:00Z', mailBack!.id);
      await audit('user.reactivated', 'UADMIN', '2026-02-02T00:00:00Z', mailBack!.id);

      await sql(`drop index slack_member_deleted_index`);
      await sql(`alter table slack_member drop column deleted_since`);
      await sql(`delete from mikro_orm_migrations where name = ?`, [name]);
      expect((await orm.migrator.up({ migrations: [name] })).map((m) => m.name)).toEqual([name]);

      const since = async (id: string) =>
        (await sql(`select deleted_since from slack_member where slack_user_id = ?`, [id]))[0]!.deleted_since;
      expect(new Date(await since('UBACK')).toISOString()).toBe('2026-01-01T00:00:00.000Z');
      expect(new Date(await since('UMISSED')).toISOString()).toBe('2026-06-01T00:00:00.000Z');
      expect(await since('USTAYED')).toBeNull();
      // Known by email alone: dated before the user was added, so the next sync undoes no admin's decision.
      expect(new Date(await since('UMAILBACK')).toISOString()).toBe('2025-11-30T23:59:59.000Z');
      expect(new Date(await since('UREADDED')).toISOString()).toBe('2026-03-31T23:59:59.000Z');
    } finally {
      await orm.close(true);
    }
  });
});

describe('a stop while starting, at the migrations', () => {
  const adminUrl = () => process.env.ROSTER_TEST_ADMIN_URL as string;
  const names: string[] = [];
  afterAll(async () => {
    for (const name of names) await adminQuery(adminUrl(), `drop database if exists "${name}" with (force)`);
  });

  /** Roster started in this process on an empty database, its log lines collected. */
  async function startOnEmpty(suffix: string) {
    const name = `${testDatabasePrefix()}${suffix}`;
    names.push(name);
    await adminQuery(adminUrl(), `create database "${name}"`);
    const url = withDatabase(adminUrl(), name);
    const stop = new AbortController();
    const lines: { msg: string }[] = [];
    const watchers: ((msg: string) => void)[] = [];
    const sink = new Writable({
      write(chunk, _encoding, done) {
        for (const line of String(chunk).split('\n').filter(Boolean)) {
          const parsed = JSON.parse(line) as { msg: string };
          lines.push(parsed);
          for (const watch of watchers) watch(parsed.msg);
        }
        done();
      },
    });
    const config = loadConfig({
      SLACK_SIGNING_SECRET: 'secret',
      SLACK_BOT_TOKEN: 'xoxb-migrations',
      SLACK_API_URL: 'http://127.0.0.1:9/api/',
      DATABASE_URL: url,
      PORT: '0',
      PUBLIC_URL: 'http://localhost',
      BULK_JOBS: 'inline',
    });
    const started = startRoster({
      config,
      logger: createLogger('info', sink),
      host: '127.0.0.1',
      signal: stop.signal,
    }).then(
      async (roster) => {
        await roster.stop();
        return 'started';
      },
      (err: Error) => (stop.signal.aborted ? 'stopped' : String(err)),
    );
    return { url, stop, lines, started, onLine: (watch: (msg: string) => void) => watchers.push(watch) };
  }

  it('says it waits for the migrations being applied, then stops with all of them applied', async () => {
    const run = await startOnEmpty('stop_applying');
    // Stopped the moment the migrations begin.
    run.onLine((msg) => {
      if (/^applying \d+ database migration/.test(msg)) run.stop.abort();
    });
    expect(await run.started).toBe('stopped');
    expect(run.lines.map((l) => l.msg)).toContain(
      'stopping once the migrations being applied are done: cut short, they would leave the database half-way',
    );
    const { rows } = await adminQuery(run.url, 'select count(*)::int as n from mikro_orm_migrations');
    expect(rows[0].n).toBe((await migrationFiles()).filter((f) => f.endsWith('.ts')).length);
  }, 60_000);

  it("says it waits for another instance's migrations, and applies none itself", async () => {
    const run = await startOnEmpty('stop_waiting');
    const other = new pg.Client({ connectionString: run.url });
    await other.connect();
    try {
      // Another instance holds the migrations' lock (see withMigrationLock) before this one asks for it.
      await other.query(`select pg_advisory_lock(hashtext('roster:migrations'))`);
      const waiting = new Promise<void>((ok) =>
        run.onLine((msg) => msg.startsWith('another instance is applying migrations') && ok()),
      );
      await waiting;
      run.stop.abort();
      await new Promise((r) => setTimeout(r, 200));
      expect(run.lines.map((l) => l.msg)).toContain(
        'stopping once the other instance has applied the migrations (none are applied here)',
      );
      await other.query(`select pg_advisory_unlock(hashtext('roster:migrations'))`);
      expect(await run.started).toBe('stopped');
      const { rows } = await adminQuery(run.url, "select to_regclass('mikro_orm_migrations') as t");
      expect(rows[0].t).toBeNull();
    } finally {
      await other.end();
    }
  }, 60_000);
});
