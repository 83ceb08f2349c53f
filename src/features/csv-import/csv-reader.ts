import { isUtf8 } from 'node:buffer';
import { Readable } from 'node:stream';
import { CsvError, parse } from 'csv-parse';
import iconv from 'iconv-lite';
import { DomainError } from '../../shared/errors.ts';

/** The largest file Roster reads. */
export const MAX_FILE_BYTES = 10 * 1024 * 1024;

export type Encoding = 'utf8' | 'win1252';

/** A record of the file and the line it starts on, as a text editor numbers lines. */
export type CsvRecord = { line: number; cells: string[] };

const CHUNK = 64 * 1024;

/** UTF-8 when the bytes are valid UTF-8 (with or without BOM), else Windows-1252, what Excel writes on Windows. */
export function detectEncoding(bytes: Buffer): Encoding {
  return isUtf8(bytes) ? 'utf8' : 'win1252';
}

/** Text files have no NUL byte; spreadsheets (.xlsx is a zip), PDFs and images do. */
export function looksBinary(bytes: Buffer): boolean {
  return bytes.includes(0);
}

export function isCsvName(name: string, filetype?: string | null): boolean {
  return /\.csv$/i.test(name.trim()) || filetype?.toLowerCase() === 'csv';
}

export function formatBytes(n: number): string {
  return n >= 1024 * 1024 ? `${(n / 1024 / 1024).toFixed(1)} MB` : `${Math.ceil(n / 1024)} KB`;
}

/**
 * Streams the records of a CSV file: decoded from UTF-8 or Windows-1252, CRLF or LF, quoted fields with
 * commas and line breaks, blank lines skipped. Ragged rows come through as they are (the caller turns
 * them into row errors); a quote that is never closed rejects the file, naming the line it starts on.
 */
export async function* readCsv(bytes: Buffer): AsyncGenerator<CsvRecord> {
  const decoder = iconv.decodeStream(detectEncoding(bytes), { stripBOM: true });
  const parser = parse({
    bom: true,
    relax_column_count: true,
    relax_quotes: true,
    skip_empty_lines: true,
    skip_records_with_empty_values: true,
    info: true,
  });
  const chunks = function* () {
    for (let i = 0; i < bytes.length; i += CHUNK) yield bytes.subarray(i, i + CHUNK);
  };
  const source = Readable.from(chunks()).pipe(decoder).pipe(parser);
  let lastEnd = 0;
  try {
    for await (const { record, info } of source as AsyncIterable<{
      record: string[];
      info: { lines: number };
    }>) {
      // info.lines is where the record ends; line breaks inside quoted cells say how many lines it spans.
      let inside = 0;
      for (const cell of record)
        for (let i = cell.indexOf('\n'); i !== -1; i = cell.indexOf('\n', i + 1)) inside++;
      lastEnd = info.lines;
      yield { line: info.lines - inside, cells: record };
    }
  } catch (err) {
    if (err instanceof CsvError) {
      if (err.code === 'CSV_QUOTE_NOT_CLOSED') {
        const line = unclosedQuoteLine(iconv.decode(bytes, detectEncoding(bytes))) ?? lastEnd + 1;
        throw new DomainError(
          'file_rejected',
          `Line ${line} opens a quoted cell (") that is never closed, so the rest of the file cannot be read. Add the missing " and upload the file again.`,
        );
      }
      const line = (err as CsvError & { lines?: number }).lines;
      throw new DomainError(
        'file_rejected',
        `The file is not valid CSV${line ? ` at line ${line}` : ''}: ${err.message.replace(/^[^:]*:\s*/, '')}`,
      );
    }
    throw err;
  } finally {
    source.destroy();
  }
}

/** The line of the quote that opens a cell and is never closed, found the way the parser reads quotes. */
export function unclosedQuoteLine(text: string): number | null {
  let line = 1;
  let opened: number | null = null;
  let fieldStart = true;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (opened !== null) {
      if (ch === '"') {
        if (text[i + 1] === '"') i++;
        else opened = null;
      } else if (ch === '\n') line++;
      continue;
    }
    if (ch === '"' && fieldStart) opened = line;
    fieldStart = ch === ',' || ch === '\n' || ch === '\r';
    if (ch === '\n') line++;
  }
  return opened;
}
