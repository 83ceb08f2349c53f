import { execFile } from 'node:child_process';
import { copyFile, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';

const root = resolve(import.meta.dirname, '..');

describe('package-lock.json', () => {
  it('is exactly what npm install writes, so a fresh clone stays clean after npm install', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'roster-lock-'));
    try {
      for (const file of ['package.json', 'package-lock.json'])
        await copyFile(join(root, file), join(dir, file));
      await promisify(execFile)(
        'npm',
        ['install', '--package-lock-only', '--ignore-scripts', '--no-audit', '--no-fund', '--loglevel=error'],
        { cwd: dir, env: process.env },
      );
      const committed = await readFile(join(root, 'package-lock.json'), 'utf8');
      const written = await readFile(join(dir, 'package-lock.json'), 'utf8');
      // Compared by line count first, for a readable failure, then whole.
      expect(written.split('\n').length).toBe(committed.split('\n').length);
      expect(written === committed).toBe(true);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }, 120_000);
});
