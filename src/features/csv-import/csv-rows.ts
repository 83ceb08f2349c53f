import { createHash } from 'node:crypto';
import iconv from 'iconv-lite';
import { z } from 'zod';
import { isEmailAddress } from '../../shared/email.ts';
import { DomainError } from '../../shared/errors.ts';
import { showsSomething } from '../../shared/visible.ts';
import { FIELD_MAX } from '../people/field-limits.ts';
import { MISSING_LOGIN_DOMAIN, ROLES, type Role } from '../people/user.entity.ts';
import { restore } from './csv-writer.ts';

/** The columns Roster reads, in template order. */
export const COLUMNS = [
  'type',
  'first_name',
  'last_name',
  'name',
  'email',
  'role',
  'permission_set',
  'title',
  'company',
  'phone',
  'notes',
  'send_invitation',
] as const;
export type Column = (typeof COLUMNS)[number];

const quoted = (v: unknown) => `"${String(v).slice(0, 60)}"`;

/** The longest header cell Roster reads: a real column name is a few words. */
export const MAX_HEADER_CHARS = 100;
/** The longest cell Roster reads, whatever its column; each column has its own, lower limit (FIELD_MAX). */
export const MAX_CELL_CHARS = 5000;
/** The limit on a contact's name, which first_name and last_name together must fit. */
export const MAX_NAME_CHARS = FIELD_MAX.name;

/** Columns Roster adds to its error file: ignored without a warning when that file comes back fixed. */
const OWN_COLUMNS = new Set(['line', 'reason']);

/**
 * A header cell with its case and its spaces, underscores, hyphens and dots dropped: "First Name",
 * " first_name ", "FIRST-NAME", "FirstName" and "firstname" are all first_name, and "E-Mail" is email.
 */
export function normalizeHeader(header: string): string {
  return header
    .trim()
    .toLowerCase()
    .replace(/[\s_\-.]+/g, '');
}

/** Each column by its name as normalizeHeader writes it, and the names exports commonly give it. */
const COLUMN_BY_NAME = new Map<string, Column>([
  ...COLUMNS.map((c) => [normalizeHeader(c), c] as [string, Column]),
  ['emailaddress', 'email'],
  ['fullname', 'name'],
  ['jobtitle', 'title'],
  ['phonenumber', 'phone'],
  // Outlook's and Google Contacts' exports ("Given Name", "Surname", "E-mail 1 - Value", "Organization
  // Name"); their second email, phone and the like stay unknown, so no column is named twice.
  ['givenname', 'first_name'],
  ['surname', 'last_name'],
  ['familyname', 'last_name'],
  ['email1value', 'email'],
  ['organizationname', 'company'],
  ['organization1name', 'company'],
  ['organizationtitle', 'title'],
  ['organization1title', 'title'],
]);

export type Header = {
  /** Where each known column is in the file. */
  index: Partial<Record<Column, number>>;
  /** The header as written. */
  columns: string[];
  warnings: string[];
  /** The separator the file uses, named in a row error about its cells. */
  delimiter: string;
};

const DELIMITER_NAMES: Record<string, string> = { ',': 'comma', ';': 'semicolon', '\t': 'tab' };

/**
 * Reads the header row. `email` and a name column (`first_name`, `last_name` or `name`) are required;
 * unknown columns are named in a warning and ignored; a known column given twice rejects the file.
 */
export function readHeader(cells: string[], delimiter = ','): Header {
  const index: Partial<Record<Column, number>> = {};
  const unknown: string[] = [];
  const long = cells.findIndex((c) => c.length > MAX_HEADER_CHARS);
  if (long !== -1) {
    throw new DomainError(
      'file_rejected',
      `The header of column ${long + 1} (${quoted(cells[long])}…) is longer than ${MAX_HEADER_CHARS} characters, the limit for a column name. The first row must name the columns; download a template to see them.`,
    );
  }
  cells.forEach((raw, i) => {
    const name = normalizeHeader(raw);
    const column = COLUMN_BY_NAME.get(name);
    if (column) {
      const earlier = index[column];
      if (earlier !== undefined) {
        throw new DomainError(
          'file_rejected',
          `The column ${column} appears twice (columns ${earlier + 1} and ${i + 1}). Keep one and upload the file again.`,
        );
      }
      index[column] = i;
    } else if (name && !OWN_COLUMNS.has(name)) {
      unknown.push(raw.trim());
    } else if (!name && cells.some((c, j) => j > i && c.trim())) {
      unknown.push(`(column ${i + 1}, no name)`);
    }
  });
  const missing: string[] = [];
  if (index.email === undefined) missing.push('email');
  if (index.first_name === undefined && index.last_name === undefined && index.name === undefined) {
    missing.push('first_name (or last_name)');
  }
  if (missing.length) {
    throw new DomainError(
      'file_rejected',
      `The file has no ${missing.join(' and no ')} column. The first row must name the columns; download a template to see them.`,
    );
  }
  const warnings = unknown.length
    ? [
        `Ignored ${unknown.length === 1 ? 'a column' : `${unknown.length} columns`} Roster does not know: ${unknown
          .slice(0, 20)
          .map((c) => (c.length > 40 ? `${c.slice(0, 39)}…` : c))
          .join(', ')}${unknown.length > 20 ? ` and ${unknown.length - 20} more` : ''}.`,
      ]
    : [];
  return { index, columns: cells, warnings, delimiter };
}

export type UserRow = {
  kind: 'user';
  email: string;
  firstName: string | null;
  lastName: string | null;
  title: string | null;
  phone: string | null;
  /** As written in the file; null when the cell is empty. */
  role: Role | null;
  /** The permission set's name as written; null when the cell is empty. */
  permissionSet: string | null;
  sendInvitation: boolean;
  /** Kept on the user's linked contact details, as converting a contact keeps them. */
  company: string | null;
  notes: string | null;
  /**
   * What the email column held when it was a name, not an address (exports from accounting systems do
   * that): the user is imported locked with a placeholder login, and an admin gives them an email.
   */
  loginHint: string | null;
};

export type ContactRow = {
  kind: 'contact';
  name: string;
  email: string | null;
  phone: string | null;
  company: string | null;
  title: string | null;
  notes: string | null;
};

export type ParsedRow = UserRow | ContactRow;

const optional = (label: string, max = 255) =>
  z
    .string()
    .max(max, { error: `${label} is longer than ${max} characters` })
    .transform((v) => v || null);
const email = z.string().refine((v) => !v || (v.length <= 254 && isEmailAddress(v)), {
  error: (iss) => `email ${quoted(iss.input)} is not a valid email address`,
});
const yesNo = z
  .string()
  .transform((v) => v.toLowerCase())
  .pipe(
    z.enum(['', 'yes', 'no', 'y', 'n', 'true', 'false', '1', '0'], {
      error: (iss) => `send_invitation ${quoted(iss.input)} is not yes or no`,
    }),
  )
  .transform((v) => ['yes', 'y', 'true', '1'].includes(v));

const rowSchema = z
  .object({
    type: z
      .string()
      .transform((v) => v.toLowerCase() || 'user')
      .pipe(
        z.enum(['user', 'contact'], { error: (iss) => `type ${quoted(iss.input)} is not user or contact` }),
      ),
    email,
    first_name: optional('first_name', FIELD_MAX.firstName),
    last_name: optional('last_name', FIELD_MAX.lastName),
    name: optional('name', FIELD_MAX.name),
    role: z
      .string()
      .transform((v) => v.toLowerCase())
      .pipe(
        z.enum(['', ...ROLES], {
          error: (iss) => `role ${quoted(iss.input)} is not one of ${ROLES.join(', ')}`,
        }),
      )
      .transform((v) => (v || null) as Role | null),
    permission_set: optional('permission_set'),
    title: optional('title', FIELD_MAX.title),
    company: optional('company', FIELD_MAX.company),
    phone: optional('phone', FIELD_MAX.phone),
    notes: optional('notes', FIELD_MAX.notes),
    send_invitation: yesNo,
  })
  .superRefine((row, ctx) => {
    if (row.type === 'user' && !row.email) ctx.addIssue({ code: 'custom', message: 'a user needs an email' });
    if (row.type === 'contact' && !row.first_name && !row.last_name && !row.name) {
      ctx.addIssue({ code: 'custom', message: 'a contact needs a first_name or last_name' });
    }
    if (row.type === 'contact' && row.send_invitation) {
      ctx.addIssue({
        code: 'custom',
        message: 'send_invitation is for users; a contact gets no invitation (make the row a user)',
      });
    }
  });

export type RowCheck = { ok: true; row: ParsedRow } | { ok: false; error: string };

type RowValues = z.infer<typeof rowSchema>;

const YES = new Set(['yes', 'y', 'true', '1']);
const YES_OR_NO = new Set(['', 'yes', 'no', 'y', 'n', 'true', 'false', '1', '0']);
const OPTIONAL_MAX: [keyof RowValues, number][] = [
  ['first_name', FIELD_MAX.firstName],
  ['last_name', FIELD_MAX.lastName],
  ['name', FIELD_MAX.name],
  ['permission_set', 255],
  ['title', FIELD_MAX.title],
  ['company', FIELD_MAX.company],
  ['phone', FIELD_MAX.phone],
  ['notes', FIELD_MAX.notes],
];

/**
 * The schema's answer for a row it accepts, without building it: a file of a million rows spends more
 * time in zod than in parsing. It accepts exactly what `rowSchema` accepts (the same email pattern and
 * limits) and returns null for anything else, which then goes through the schema for its messages.
 */
function quickParse(input: Record<string, string>): RowValues | null {
  const type = (input.type ?? '').toLowerCase() || 'user';
  if (type !== 'user' && type !== 'contact') return null;
  const email = input.email ?? '';
  if (email && (email.length > 254 || !z.regexes.email.test(email))) return null;
  const role = (input.role ?? '').toLowerCase();
  if (role && !(ROLES as readonly string[]).includes(role)) return null;
  const invite = (input.send_invitation ?? '').toLowerCase();
  if (!YES_OR_NO.has(invite)) return null;
  const out: Record<string, unknown> = {
    type,
    email,
    role: role || null,
    send_invitation: YES.has(invite),
  };
  for (const [column, max] of OPTIONAL_MAX) {
    const value = input[column] ?? '';
    if (value.length > max) return null;
    out[column] = value || null;
  }
  const values = out as RowValues;
  if (type === 'user' && !email) return null;
  if (
    type === 'contact' &&
    (values.send_invitation || !(values.first_name || values.last_name || values.name))
  )
    return null;
  return values;
}

/**
 * A user row's email cell that holds a person's name rather than an address: a capitalised first and
 * last name, no `@`. Anything else that is not an address stays an error.
 */
function loginHint(input: Record<string, string>): string | null {
  const type = (input.type ?? '').toLowerCase() || 'user';
  const value = (input.email ?? '').trim();
  if (type !== 'user' || !value || value.includes('@') || value.length > 200) return null;
  // A first and a last name, written as names are ("Ann Lee", "Zoë O'Neil", "Jan van Dijk"): one word
  // alone ("not-an-email") or words in lower case ("not an email") stay an error.
  const words = value.split(/ +/);
  const isName =
    words.length >= 2 &&
    words.every((w) => /^\p{L}[\p{L}\p{M}'’.-]*$/u.test(w)) &&
    /^\p{Lu}/u.test(words[0]!) &&
    /^\p{Lu}/u.test(words.at(-1)!);
  return isName ? value : null;
}

/** The same placeholder for the same name, so importing the file again finds the same person. */
function missingLogin(hint: string): string {
  const digest = createHash('sha256').update(hint.trim().toLowerCase()).digest('hex').slice(0, 20);
  return `missing-${digest}@${MISSING_LOGIN_DOMAIN}`;
}

/** First and last name from the columns, else from `name`, else from the name that stood for the email. */
function names(r: RowValues, hint: string | null): { firstName: string | null; lastName: string | null } {
  const full = r.name ?? (!r.first_name && !r.last_name ? hint : null);
  const [first, ...rest] = (full ?? '').split(/\s+/);
  return {
    firstName: r.first_name ?? (full ? first || null : null),
    lastName: r.last_name ?? (full && !r.first_name ? rest.join(' ') || null : null),
  };
}

/**
 * A phone number as Excel writes a long number it took for one (`4,93012E+11`, `1.5E+10`): the digits
 * past the first few are gone, and no phone number is written so.
 */
const EXCEL_SCIENTIFIC = /^\d+(?:[.,]\d+)?E\+?\d+$/i;

/**
 * Two or three characters that are one letter of UTF-8 read as Windows-1252 ("MÃ¼ller", "JosÃ©"): a lead
 * Ã, Â, Ä or Å (or â€ for quotes and dashes) and a character Windows-1252 writes as 0x80–0xBF. A file
 * opened in the wrong encoding and saved again holds them as text, and no name is written so. The
 * replacement character stands for a byte that was not a character at all.
 */
const GARBLED =
  /[ÂÃÄÅ][\u00a0-\u00bf\u0152\u0153\u0160\u0161\u0178\u017d\u017e\u0192\u02c6\u02dc\u2013\u2014\u2018-\u201a\u201c-\u201e\u2020-\u2022\u2026\u2030\u2039\u203a\u20ac\u2122]|â€.|\ufffd/;
/** The columns holding names, where garbled text is an error rather than something to keep. */
const NAME_COLUMNS = ['first_name', 'last_name', 'name', 'company', 'title'] as const;

/** Why a name reads as garbled, or null: the letter it stood for when that can be told. */
function garbled(value: string | null): string | null {
  const match = value ? GARBLED.exec(value)?.[0] : undefined;
  if (!match) return null;
  if (match === '\ufffd') return '� stands for a letter that was lost';
  const letter = iconv.encode(match, 'win1252').toString('utf8');
  return letter.includes('\ufffd') || Array.from(letter).length !== 1
    ? 'read in the wrong encoding'
    : `${match} is ${letter}, read in the wrong encoding`;
}

/**
 * Checks one record against the header: its cell count, then every value. A row with fewer cells than
 * the header lacks its last ones, which are empty: exporters drop empty trailing cells (Excel past its
 * first rows, scripts that write only what a row holds), and no other reading of a short row exists. A
 * row with more cells than the header, past empty ones, is an error: a value holding a separator that is
 * not in quotes splits in two, and no cell can be told to belong to a column.
 */
export function checkRow(header: Header, cells: string[]): RowCheck {
  const width = header.columns.length;
  if (cells.length > width && cells.slice(width).some((c) => c.trim())) {
    return {
      ok: false,
      error: `has ${cells.length} cells but the header has ${width} columns (an extra ${DELIMITER_NAMES[header.delimiter] ?? 'separator'}?)`,
    };
  }
  const long = cells.findIndex((c) => c.length > MAX_CELL_CHARS);
  if (long !== -1) {
    const column = header.columns[long]?.trim() || `column ${long + 1}`;
    return {
      ok: false,
      error: `the ${column} cell is longer than ${MAX_CELL_CHARS.toLocaleString('en-US')} characters, the limit for a cell`,
    };
  }
  const input: Record<string, string> = {};
  for (const column of COLUMNS) {
    const at = header.index[column];
    const trimmed = at === undefined ? '' : (cells[at] ?? '').trim();
    // A cell of zero-width spaces or direction marks alone is empty: kept, it would be a blank name.
    const cell = trimmed && showsSomething(trimmed) ? trimmed : '';
    // A line break inside a cell is kept as Roster writes one, whether the file wrote CRLF, LF or CR.
    input[column] = restore(cell.includes('\r') ? cell.replace(/\r\n?/g, '\n') : cell);
  }
  const hint = loginHint(input);
  if (hint) {
    if (YES.has((input.send_invitation ?? '').toLowerCase())) {
      return {
        ok: false,
        error: `email ${quoted(hint)} is a name, not an address, so no invitation can be sent; import the row without send_invitation and give them a login email on their card`,
      };
    }
    input.email = missingLogin(hint);
  }
  let r = quickParse(input);
  if (!r) {
    const parsed = rowSchema.safeParse(input);
    if (!parsed.success) {
      return { ok: false, error: [...new Set(parsed.error.issues.map((i) => i.message))].join('; ') };
    }
    r = parsed.data;
  }
  for (const column of NAME_COLUMNS) {
    const why = garbled(r[column]);
    if (why) {
      return {
        ok: false,
        error: `${column} ${quoted(r[column])} looks garbled (${why}): the file was saved in another encoding than it was written in. Save the original as CSV UTF-8 and upload it again, or correct the name`,
      };
    }
  }
  if (r.phone && EXCEL_SCIENTIFIC.test(r.phone)) {
    return {
      ok: false,
      error: `phone ${quoted(r.phone)} is a number Excel wrote in scientific notation, which loses digits: format the phone column as Text in Excel, enter the numbers again and save the file again`,
    };
  }
  if (r.type === 'user') {
    return {
      ok: true,
      row: {
        kind: 'user',
        email: r.email,
        ...names(r, hint),
        title: r.title,
        phone: r.phone,
        role: r.role,
        permissionSet: r.permission_set,
        sendInvitation: r.send_invitation,
        company: r.company,
        notes: r.notes,
        loginHint: hint,
      },
    };
  }
  const name = r.name ?? [r.first_name, r.last_name].filter(Boolean).join(' ');
  if (name.length > MAX_NAME_CHARS) {
    return {
      ok: false,
      error: `the contact's name (first_name and last_name together) is longer than ${MAX_NAME_CHARS} characters`,
    };
  }
  return {
    ok: true,
    row: {
      kind: 'contact',
      name,
      email: r.email || null,
      phone: r.phone,
      company: r.company,
      title: r.title,
      notes: r.notes,
    },
  };
}

/** The key two rows are the same person by: the email, trimmed and lower-cased; else name and company. */
export function rowKey(row: ParsedRow): string {
  if (row.email) return row.email.trim().toLowerCase();
  const contact = row as ContactRow;
  return `name:${contact.name.trim().toLowerCase()}|${(contact.company ?? '').trim().toLowerCase()}`;
}
