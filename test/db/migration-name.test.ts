import { execFile } from 'node:child_process';
import { cp, mkdtemp, readdir, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { migrationStamp, newMigrationStamp } from '../../src/db/migration-name.ts';
import { migrationsPath } from '../../src/db/orm.ts';
import { createTestDatabase } from '../support/database.ts';

const root = resolve(import.meta.dirname, '../..');

describe('the name npm run migration:create gives a new migration', () => {
  const existing = [
    'Migration20261123000000_initial.ts',
    'Migration20261207110000_join_confirmation_token_nonce.ts',
    'Migration20261130060000_seat_limit_backstop.ts',
  ];

  it('is dated now when the clock is past every migration', () => {
    expect(newMigrationStamp(existing, new Date('2026-12-09T10:11:12.500Z'))).toBe('20261209101112');
    expect(newMigrationStamp([], new Date('2026-12-01T05:00:00Z'))).toBe('20261201050000');
  });

  it('sorts after every migration there, even when the clock is behind the latest', () => {
    // Before, it was dated by the clock alone and landed among the others: on a fresh database it ran
    // before the migrations dated after it.
    expect(newMigrationStamp(existing, new Date('2026-12-01T05:46:17Z'))).toBe('20261207110001');
    expect(newMigrationStamp(existing, new Date('2026-12-07T11:00:00Z'))).toBe('20261207110001');
    expect(newMigrationStamp(['Migration20261231235959_last.ts'], new Date('2026-01-01T00:00:00Z'))).toBe(
      '20270101000000',
    );
  });

  it('sorts after the migrations in migrations/, whatever the clock says', async () => {
    const files = (await readdir(migrationsPath)).filter((f) => f.endsWith('.ts'));
    const stamp = newMigrationStamp(files, new Date('2000-01-01T00:00:00Z'));
    const name = `Migration${stamp}_next.ts`;
    expect([...files, name].sort().at(-1)).toBe(name);
    expect(migrationStamp(new Date('2026-12-01T05:46:17.999Z'))).toBe('20261201054617');
  });

  it('npm run migration:create -- NAME --blank writes one that runs after every migration there', async () => {
    // A copy of the code and migrations, so the file written never reaches the migrations other tests run.
    const dir = await mkdtemp(join(tmpdir(), 'roster-create-'));
    const db = await createTestDatabase();
    try {
      await cp(join(root, 'src'), join(dir, 'src'), { recursive: true });
      await cp(join(root, 'migrations'), join(dir, 'migrations'), { recursive: true });
      await cp(join(root, 'package.json'), join(dir, 'package.json'));
      await symlink(join(root, 'node_modules'), join(dir, 'node_modules'));
      const before = await readdir(join(dir, 'migrations'));
      const { stdout } = await promisify(execFile)(
        'npm',
        ['run', '-s', 'migration:create', '--', 'team_notes', '--blank'],
        {
          cwd: dir,
          env: {
            PATH: `${join(root, 'node_modules/.bin')}:${process.env.PATH}`,
            HOME: process.env.HOME,
            DATABASE_URL: db.url,
          },
        },
      );
      const written = (await readdir(join(dir, 'migrations'))).filter((f) => !before.includes(f));
      expect(written).toEqual([expect.stringMatching(/^Migration\d{14}_team_notes\.ts$/)]);
      expect((await readdir(join(dir, 'migrations'))).sort().at(-1)).toBe(written[0]);
      expect(stdout).toContain(`Wrote ${join(dir, 'migrations', written[0]!)} (0 statement(s))`);
    } finally {
      await db.drop();
      await rm(dir, { recursive: true, force: true });
    }
  }, 60_000);
});
