import type { MikroORM } from '@mikro-orm/postgresql';
import { statements } from '../../db/sql.ts';
import { CsvImport } from './csv-import.entity.ts';
import { BOM, csvLine } from './csv-writer.ts';

/**
 * The error file of an import: the header and every row in error as they were in the file, with `line`
 * and `reason` columns added; every cell defused against formulas. Null when no row is in error.
 */
export async function errorFile(orm: MikroORM, importId: string): Promise<Buffer | null> {
  const em = orm.em.fork();
  const csvImport = await em.findOneOrFail(CsvImport, importId);
  const exec = statements(em);
  // Each page is turned into bytes at once: a million rows in error would not fit in the heap as text.
  const parts: Buffer[] = [];
  let after = 0;
  for (;;) {
    const page = await exec<{ line: number; cells: string[]; error: string | null }>(
      `select line, cells, error from csv_import_row
       where csv_import_id = $1 and (outcome = 'error' or result = 'error') and line > $2 order by line limit 5000`,
      [importId, after],
    );
    if (!page.length) break;
    const lines = parts.length ? [] : [BOM + csvLine([...csvImport.columns, 'line', 'reason'])];
    for (const r of page) {
      const cells = csvImport.columns.map((_, i) => r.cells[i] ?? '');
      lines.push(csvLine([...cells, String(r.line), r.error ?? '']));
    }
    parts.push(Buffer.from(lines.join(''), 'utf8'));
    after = page.at(-1)?.line ?? after;
  }
  return parts.length ? Buffer.concat(parts) : null;
}
