import { mkdir, stat } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';

/**
 * Creates `path` and its missing parents, one level at a time. Node's recursive mkdir never settles for
 * some paths a process may not create, such as one under /proc; one level at a time, each refusal comes
 * back at once (ENOENT there, EEXIST for a file in the way, ENOTDIR under a file).
 */
export async function makeDirectory(path: string, mode?: number): Promise<void> {
  const full = resolve(path);
  try {
    await mkdir(full, { mode });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EEXIST' && (await isDirectory(full))) return;
    const parent = dirname(full);
    if (code !== 'ENOENT' || parent === full) throw err;
    await makeDirectory(parent, mode);
    await mkdir(full, { mode }).catch(async (again: NodeJS.ErrnoException) => {
      // Made by another process in between.
      if (!(again.code === 'EEXIST' && (await isDirectory(full)))) throw again;
    });
  }
}

async function isDirectory(path: string): Promise<boolean> {
  return (await stat(path).catch(() => null))?.isDirectory() ?? false;
}
