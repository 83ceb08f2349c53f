import { isUtf8 } from 'node:buffer';
import { CsvError, parse } from 'csv-parse';
import iconv from 'iconv-lite';
import { DomainError } from '../../shared/errors.ts';

/** The largest file Roster reads: checked against the size Slack announces, and again while downloading. */
export const MAX_FILE_BYTES = 1024 * 1024 * 1024;
/** The most rows one file may hold. */
export const MAX_ROWS = 1_000_000;
/**
 * The longest row the parser holds: far above any real row (the longest allowed cell is 5,000
 * characters), and what stops a quote that is never closed from swallowing a 1 GB file into memory.
 */
export const MAX_RECORD_CHARS = 256 * 1024;

/** A record of the file and the line it starts on, as a text editor numbers lines. */
export type CsvRecord = { line: number; cells: string[] };

/** The bytes of a file as they arrive: a whole buffer, or chunks from a download. */
export type CsvSource = Buffer | AsyncIterable<Uint8Array>;

const CHUNK = 64 * 1024;

/** Thrown by the reader when the bytes hold a NUL; the caller names the file in its message. */
export class BinaryFileError extends Error {}

export function isCsvName(name: string, filetype?: string | null): boolean {
  return /\.csv$/i.test(name.trim()) || filetype?.toLowerCase() === 'csv';
}

export function formatBytes(n: number): string {
  if (n >= 1024 * 1024 * 1024) return `${(n / 1024 / 1024 / 1024).toFixed(1)} GB`;
  return n >= 1024 * 1024 ? `${(n / 1024 / 1024).toFixed(1)} MB` : `${Math.ceil(n / 1024)} KB`;
}

/** Where the last complete UTF-8 character of `buf` ends, so a character split across chunks waits for its tail. */
function completeUtf8End(buf: Buffer): number {
  for (let i = buf.length - 1, back = 0; i >= 0 && back < 4; i--, back++) {
    const b = buf[i] as number;
    if ((b & 0xc0) === 0x80) continue;
    const need = b >= 0xf0 ? 4 : b >= 0xe0 ? 3 : b >= 0xc0 ? 2 : 1;
    return back + 1 >= need ? buf.length : i;
  }
  return buf.length;
}

async function* chunksOf(source: CsvSource): AsyncGenerator<Buffer> {
  if (Buffer.isBuffer(source)) {
    for (let i = 0; i < source.length; i += CHUNK) yield source.subarray(i, i + CHUNK);
    return;
  }
  for await (const chunk of source) yield Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
}

/** Whether bytes open with UTF-16's byte order mark, little or big endian. */
function isUtf16Bom(b: Buffer): boolean {
  return (b[0] === 0xff && b[1] === 0xfe) || (b[0] === 0xfe && b[1] === 0xff);
}

/** A file in UTF-16 (its byte order mark says which end first) as UTF-8; a NUL character stops it as binary. */
async function* fromUtf16(chunks: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  // The decoder keeps a character split across chunks for the next one, and drops the byte order mark.
  const decoder = iconv.getDecoder('utf16');
  const convert = (text: string | undefined) => {
    if (text?.includes('\0')) throw new BinaryFileError('binary data');
    return text ? Buffer.from(text, 'utf8') : undefined;
  };
  for await (const bytes of chunks) {
    const out = convert(decoder.write(bytes));
    if (out) yield out;
  }
  const rest = convert(decoder.end());
  if (rest) yield rest;
}

/** The first bytes of a file (at least two when it has them), and the rest of its chunks. */
async function* peeked(first: Buffer, rest: AsyncIterator<Buffer>): AsyncGenerator<Buffer> {
  try {
    if (first.length) yield first;
    for (let next = await rest.next(); !next.done; next = await rest.next()) yield next.value;
  } finally {
    // A read stopped early (a rejected file) stops the download too.
    await rest.return?.();
  }
}

/**
 * The letters of names Windows-1252 writes: Latin-1's, and the few past it it has ("Šimon", "cœur"), which
 * MacRoman writes as "ä", "ö", "é", "û", "å" and "ú" and so cannot tell apart alone ("Schröder" as
 * "Schršder"): a file read well as Windows-1252 before stays read so.
 */
const NAME_LETTER = /[\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u00ffŠšŽžŒœ]/;
/** What may join two letters of a word: apostrophes ("O’Neil"), and a dash before a capital ("Jean–Pierre"). */
const APOSTROPHE = /[\u2019\u02bc]/;
const DASH = /[\u2010-\u2015]/;
/** What may follow a word, and what may open one. */
const AFTER_WORD = /[\u2019\u201d\u00bb\u2026\u2122\u00ae\u00a9]/;
const BEFORE_WORD = /[\u2018\u2019\u201c\u201e\u00ab\u00bf\u00a1\u2022\u2013\u2014]/;
const isLetter = (c: string | undefined) => c !== undefined && /\p{L}/u.test(c);
const isUpper = (c: string | undefined) => c !== undefined && /\p{Lu}/u.test(c);
const isLower = (c: string | undefined) => c !== undefined && /\p{Ll}/u.test(c);

/**
 * How unlike names and words `text` reads, scored on its characters past ASCII: a byte the encoding does
 * not have, a symbol or stray punctuation inside or against a word ("M¸ller", "S¿ren", "†nal", "Zo‘"), a
 * capital after a small letter ("JosÈ", "MŸller") and a small letter before a capital ("OíNeil") each
 * count 1; a letter Western names do not use ("ƒlodie", "Straﬂe"), a dash inside a word before a small
 * letter ("Ma–ana") or a small accented letter opening a word ½. A file read in the wrong one of
 * Windows-1252 and MacRoman shows these on nearly every accented letter, since the letters of one are
 * symbols, capitals or rare letters in the other.
 */
function misreadScore(text: string): number {
  let score = 0;
  const chars = Array.from(text);
  chars.forEach((c, i) => {
    if (c.charCodeAt(0) < 0x80) return;
    const before = chars[i - 1];
    const after = chars[i + 1];
    if (c === '\ufffd' || /[\p{Cc}\p{Co}\p{Cn}]/u.test(c)) score += 2;
    else if (isLetter(c)) {
      if (!NAME_LETTER.test(c)) score += 0.5;
      if (isUpper(c) && isLetter(before) && (isLower(before) || isLower(after))) score += 1;
      else if (isLower(c) && isUpper(after)) score += 1;
      else if (isLower(c) && !isLetter(before) && isLetter(after)) score += 0.5;
    } else if (/\s/u.test(c)) {
      // A no-break space reads the same either way.
    } else if (isLetter(before) && isLetter(after)) {
      // Catalan writes l·l.
      if (DASH.test(c)) score += isUpper(after) ? 0 : 0.5;
      else if (!APOSTROPHE.test(c) && !(c === '\u00b7' && /l/i.test(before!) && /l/i.test(after!)))
        score += 1;
    } else if (isLetter(before) && !AFTER_WORD.test(c)) score += 1;
    else if (isLetter(after) && !BEFORE_WORD.test(c)) score += 1;
  });
  return score;
}

/** Whether lines in `bytes` end in a carriage return alone, as classic Mac OS wrote them. */
function crLines(bytes: Buffer): boolean {
  const cr = bytes.indexOf(0x0d);
  return cr !== -1 && bytes[cr + 1] !== 0x0a && !bytes.includes(0x0a);
}

/**
 * The single-byte encoding bytes that are not UTF-8 were written in: Windows-1252 (Excel on Windows, most
 * tools) unless they read better as MacRoman (Excel for Mac's "CSV (Macintosh)" and "Comma Separated
 * Values", older Numbers and FileMaker exports), which puts accented letters where Windows-1252 has
 * symbols and rare letters. A tie (a name or two that read as words both ways, "María" as "Mar’a") goes to
 * MacRoman only when lines end in a carriage return alone, as Excel for Mac writes them and no Windows
 * tool does.
 */
function singleByteEncoding(bytes: Buffer): 'win1252' | 'macintosh' {
  if (!bytes.some((b) => b >= 0x80)) return 'win1252';
  const mac = misreadScore(iconv.decode(bytes, 'macintosh'));
  const win = misreadScore(iconv.decode(bytes, 'win1252'));
  return mac < win || (mac === win && crLines(bytes)) ? 'macintosh' : 'win1252';
}

/**
 * The file as UTF-8 bytes, as it reads: passed through untouched while the bytes are valid UTF-8 (the
 * parser reads bytes, so valid UTF-8 is never decoded twice), converted from Windows-1252 or MacRoman (as
 * that chunk reads better, see singleByteEncoding) from the first chunk that is not (text before it was
 * plain ASCII in practice, which all three read the same), without holding the file. A file that opens
 * with UTF-16's byte order mark (Excel's "Unicode Text", many reporting tools' exports) is converted from
 * UTF-16. The byte order mark is dropped; otherwise a NUL
 * byte stops the read as a binary file.
 */
export async function* utf8Bytes(source: CsvSource): AsyncGenerator<Buffer> {
  const chunks = chunksOf(source)[Symbol.asyncIterator]();
  let start: Buffer = Buffer.alloc(0);
  while (start.length < 2) {
    const next = await chunks.next();
    if (next.done) break;
    start = start.length ? Buffer.concat([start, next.value]) : next.value;
  }
  if (isUtf16Bom(start)) {
    yield* fromUtf16(peeked(start, chunks));
    return;
  }
  let carry: Buffer = Buffer.alloc(0);
  let utf8 = true;
  let encoding: 'win1252' | 'macintosh' = 'win1252';
  let first = true;
  for await (const bytes of peeked(start, chunks)) {
    if (bytes.includes(0)) throw new BinaryFileError('binary data');
    let out: Buffer;
    // A UTF-8 byte order mark is dropped before anything is decoded: a file that turns out not to be
    // UTF-8 throughout (rows added by a tool writing Windows-1252) would read it as three letters glued
    // to its first column's name.
    const raw =
      first && bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf ? bytes.subarray(3) : bytes;
    if (utf8) {
      const buf = carry.length ? Buffer.concat([carry, raw]) : raw;
      const cut = completeUtf8End(buf);
      if (isUtf8(buf.subarray(0, cut))) {
        out = buf.subarray(0, cut);
        carry = Buffer.from(buf.subarray(cut));
      } else {
        utf8 = false;
        encoding = singleByteEncoding(buf);
        out = Buffer.from(iconv.decode(buf, encoding), 'utf8');
        carry = Buffer.alloc(0);
      }
    } else {
      out = Buffer.from(iconv.decode(raw, encoding), 'utf8');
    }
    first = false;
    if (out.length) yield out;
  }
  if (carry.length) yield Buffer.from(iconv.decode(carry, singleByteEncoding(carry)), 'utf8');
}

/** How many bytes are parsed before the event loop gets a turn. */
const PARSE_SLICE = 32 * 1024;

/** The separators Roster recognises, in the order a tie is settled: commas, then semicolons, then tabs. */
const DELIMITERS = [',', ';', '\t'] as const;
/** How far Roster looks for the end of the header line to tell the separator. */
const SNIFF_BYTES = 64 * 1024;

/**
 * The separator of a file, told from its header line: the one that occurs most often there outside quotes.
 * A comma when the line has none of them. Excel writes semicolons where the decimal separator is a comma
 * (most of Europe) and tabs in its "Unicode Text"; a comma file whose cells hold semicolons still has more
 * commas in its header, which names columns and holds no prose.
 */
export function detectDelimiter(head: Buffer): string {
  const counts = new Map<number, number>(DELIMITERS.map((d) => [d.charCodeAt(0), 0]));
  let quoted = false;
  for (const b of head) {
    if (b === 0x22) quoted = !quoted;
    else if (!quoted && (b === 0x0a || b === 0x0d)) break;
    else if (!quoted && counts.has(b)) counts.set(b, (counts.get(b) ?? 0) + 1);
  }
  let best: string = DELIMITERS[0];
  for (const d of DELIMITERS)
    if ((counts.get(d.charCodeAt(0)) ?? 0) > (counts.get(best.charCodeAt(0)) ?? 0)) best = d;
  return best;
}

/**
 * The separator a first line such as `sep=;` names: Excel reads it to split a file whatever the
 * computer's list separator, and files exported for Excel begin with it. Null when the first line is
 * anything else (or names a separator Roster does not read).
 */
export function separatorLine(head: Buffer): string | null {
  // Exporters that quote every cell write it in quotes.
  const match = /^(?:sep=(.)|"sep=(.)")[ \t]*(?:\r\n|\n|\r|$)/i.exec(head.subarray(0, 16).toString('utf8'));
  const named = match?.[1] ?? match?.[2];
  return named && (DELIMITERS as readonly string[]).includes(named) ? named : null;
}

/** A header cell as a repeat of it is compared: without its spaces and case. */
const headerCell = (cell: string) => cell.trim().toLowerCase();

/** Whether `cells` repeat the header's, past empty cells at the end of either. */
function repeatsHeader(header: string[], cells: string[]): boolean {
  let width = Math.max(header.length, cells.length);
  while (width > 0 && !header[width - 1]?.trim() && !cells[width - 1]?.trim()) width--;
  for (let i = 0; i < width; i++)
    if (headerCell(header[i] ?? '') !== headerCell(cells[i] ?? '')) return false;
  return true;
}

/**
 * Streams the records of a CSV file, a chunk's worth at a time: decoded from UTF-8, UTF-16, Windows-1252
 * or MacRoman (see utf8Bytes), CRLF, LF or CR, cells separated by commas, semicolons or tabs (see
 * detectDelimiter, or as a first `sep=` line names it), spaces around a cell's quotes dropped, quoted
 * fields with separators and line breaks, blank lines and lines repeating the header (files joined
 * together) skipped. Ragged rows come through as they are (the caller turns them into row errors); a
 * quote that is never closed rejects the file, naming the line it starts on. Records are handed over in
 * arrays rather than one await each, which costs more than parsing them.
 */
export async function* readCsvBatches(
  source: CsvSource,
  /** Told the file's separator once the header line has come, before the first record. */
  onDelimiter?: (delimiter: string) => void,
): AsyncGenerator<CsvRecord[]> {
  // Where the parser last finished a record, noted as it parses, for the line of a row it fails on.
  let lastEnd = 0;
  let lastEmpty = 0;
  // The parser counts a CRLF inside a quoted cell as two lines; a text editor, as one.
  let extraLines = 0;
  let header: string[] | undefined;
  let ready: CsvRecord[] = [];
  let failure: unknown;
  let ended = false;
  // Made once the header line has come, whose separators say the file's.
  let parser: ReturnType<typeof parse> | undefined;
  const start = (head: Buffer) => {
    const hint = separatorLine(head);
    const delimiter = hint ?? detectDelimiter(head);
    onDelimiter?.(delimiter);
    const made = parse({
      delimiter,
      // The "sep=;" line is not the header: the columns are named on the next line.
      ...(hint ? { from_line: 2 } : {}),
      on_record: (cells: string[], context: { lines: number; empty_lines: number }) => {
        // context.lines is where the record ends; line breaks inside quoted cells say how many it spans.
        let breaks = 0;
        for (const cell of cells) {
          if (!cell.includes('\n') && !cell.includes('\r')) continue;
          for (let i = 0; i < cell.length; i++) {
            const c = cell.charCodeAt(i);
            if (c === 0x0d && cell.charCodeAt(i + 1) === 0x0a) extraLines++;
            else if (c === 0x0a || c === 0x0d) breaks++;
          }
        }
        lastEnd = context.lines - extraLines;
        lastEmpty = context.empty_lines;
        if (!header) header = cells;
        // The header again, as files joined together hold it: no person, so nothing to say.
        else if (headerCell(cells[0] ?? '') === headerCell(header[0] ?? '') && repeatsHeader(header, cells))
          return null;
        ready.push({ line: lastEnd - breaks, cells });
        return null;
      },
      // Any line ending ends a row, as in a text editor: files edited on two systems mix them.
      record_delimiter: ['\r\n', '\n', '\r'],
      relax_column_count: true,
      relax_quotes: true,
      // Spaces around a cell's quotes (`"Email", "First Name"`), which would otherwise be read as part of it.
      trim: true,
      skip_empty_lines: true,
      skip_records_with_empty_values: true,
      max_record_size: MAX_RECORD_CHARS,
    });
    // Records are taken as they are parsed (on_record above) and none is passed on: flowing, the parser
    // ends when its input does.
    made.resume();
    made.on('error', (err) => {
      failure = err;
    });
    made.on('end', () => {
      ended = true;
    });
    return made;
  };
  const settle = () => new Promise<void>((ok) => setImmediate(ok));
  const take = () => {
    if (failure) throw failure;
    const out = ready;
    ready = [];
    return out;
  };
  let head: Buffer[] = [];
  let headBytes = 0;
  try {
    for await (const chunk of utf8Bytes(source)) {
      let bytes = chunk;
      if (!parser) {
        // The first bytes wait until the header line is whole (or long past any real header).
        head.push(chunk);
        headBytes += chunk.length;
        if (!chunk.includes(0x0a) && !chunk.includes(0x0d) && headBytes < SNIFF_BYTES) continue;
        bytes = Buffer.concat(head);
        head = [];
        parser = start(bytes);
      }
      // A large chunk is parsed a slice at a time: parsing is synchronous, and Slack's requests to this
      // process wait for its event loop.
      for (let at = 0, end = 0; at < bytes.length; at = end) {
        // Cut between characters, never inside one: a UTF-8 continuation byte is 10xxxxxx.
        end = Math.min(at + PARSE_SLICE, bytes.length);
        while (end < bytes.length && end > at + 1 && ((bytes[end] ?? 0) & 0xc0) === 0x80) end--;
        parser.write(bytes.subarray(at, end));
        await settle();
        const out = take();
        if (out.length) yield out;
      }
    }
    if (!parser) {
      // A file of one line, or none.
      const bytes = Buffer.concat(head);
      parser = start(bytes);
      if (bytes.length) parser.write(bytes);
    }
    parser.end();
    while (!ended && !failure) await settle();
    const out = take();
    if (out.length) yield out;
  } catch (err) {
    if (err instanceof CsvError) {
      // The row that fails starts after the last one read and the blank lines skipped since.
      const empty = (err as CsvError & { empty_lines?: number }).empty_lines ?? lastEmpty;
      const line = lastEnd + 1 + Math.max(0, empty - lastEmpty);
      if (err.code === 'CSV_QUOTE_NOT_CLOSED') {
        throw new DomainError(
          'file_rejected',
          `Line ${line} opens a quoted cell (") that is never closed, so the rest of the file cannot be read. Add the missing " and upload the file again.`,
        );
      }
      if (err.code === 'CSV_MAX_RECORD_SIZE') {
        throw new DomainError(
          'file_rejected',
          `The row on line ${line} is longer than ${MAX_RECORD_CHARS.toLocaleString('en-US')} characters (a quote that is never closed?), so the rest of the file cannot be read.`,
        );
      }
      if (err.code === 'CSV_NON_TRIMABLE_CHAR_AFTER_CLOSING_QUOTE') {
        throw new DomainError(
          'file_rejected',
          `A cell on line ${line} has text after its closing quote (such as \`"Smith" Jr\`), so the rest of the file cannot be read. Put the whole cell inside the quotes (\`"Smith Jr"\`), or remove its quotes, and upload the file again.`,
        );
      }
      // The parser's own line count takes a CRLF inside a quoted cell for two lines.
      throw new DomainError(
        'file_rejected',
        `The file is not valid CSV at line ${line}: ${err.message.replace(/^[^:]*:\s*/, '').replace(/ at line \d+.*$/, '')}`,
      );
    }
    throw err;
  } finally {
    parser?.destroy();
  }
}
