import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import { Writable } from 'node:stream';
import type { MikroORM } from '@mikro-orm/postgresql';
import { statements } from '../../db/sql.ts';
import { CsvImport } from './csv-import.entity.ts';
import { BOM, csvLine } from './csv-writer.ts';

/** Rows in error read, and written out, at a time. */
const PAGE = 5000;

/**
 * Writes the error file of an import to `out`: the header and every row in error as they were in the
 * file, with `line` and `reason` columns added (a row's cells past the header's last column follow its
 * reason), separated as the file was; every cell defused against formulas. Rows are read from
 * the staged rows a page at a time and written as they come, waiting for `out` to drain, so memory stays
 * flat whatever the number of rows in error. Returns how many rows were written (0: nothing written).
 */
export async function writeErrorFile(orm: MikroORM, importId: string, out: Writable): Promise<number> {
  const em = orm.em.fork();
  const csvImport = await em.findOneOrFail(CsvImport, importId);
  const exec = statements(em);
  let after = 0;
  let rows = 0;
  for (;;) {
    const page = await exec<{ line: number; cells: string[]; error: string | null }>(
      `select line, cells, error from csv_import_row
       where csv_import_id = $1 and (outcome = 'error' or result = 'error') and line > $2 order by line limit $3`,
      [importId, after, PAGE],
    );
    if (!page.length) break;
    // In the separator of the file it answers: a spreadsheet set to semicolons opens it as it opened that.
    const { delimiter } = csvImport;
    const lines = rows ? [] : [BOM + csvLine([...csvImport.columns, 'line', 'reason'], { delimiter })];
    for (const r of page) {
      const width = csvImport.columns.length;
      const cells = csvImport.columns.map((_, i) => r.cells[i] ?? '');
      // A row with more cells than the header (an unquoted separator in a value) keeps the cells past the
      // header's last column after its reason: nothing of it is lost, and it stays in error until fixed.
      const extra = r.cells.slice(width);
      while (extra.length && !extra.at(-1)?.trim()) extra.pop();
      lines.push(csvLine([...cells, String(r.line), r.error ?? '', ...extra], { delimiter }));
    }
    rows += page.length;
    if (!out.write(lines.join(''), 'utf8')) await once(out, 'drain');
    after = page.at(-1)?.line ?? after;
  }
  return rows;
}

/** The error file written to `path` on disk; false (and an empty file) when no row is in error. */
export async function writeErrorFileTo(orm: MikroORM, importId: string, path: string): Promise<boolean> {
  const out = createWriteStream(path);
  try {
    const rows = await writeErrorFile(orm, importId, out);
    out.end();
    await once(out, 'finish');
    return rows > 0;
  } catch (err) {
    out.destroy();
    throw err;
  }
}

/** The error file in memory, for a small import (tests, a preview of a few rows); null when empty. */
export async function errorFile(orm: MikroORM, importId: string): Promise<Buffer | null> {
  const parts: Buffer[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      parts.push(chunk);
      done();
    },
  });
  const rows = await writeErrorFile(orm, importId, sink);
  return rows ? Buffer.concat(parts) : null;
}
