/** Writing CSV that spreadsheets open safely: UTF-8 with a BOM, CRLF, and no cell that runs as a formula. */

const FORMULA_START = /^[=+\-@\t\r]/;

/**
 * A cell that a spreadsheet would run as a formula (it starts with = + - @, a tab or a carriage return)
 * gets a leading single quote, so the error file cannot run anything when it is opened.
 */
export function defuse(cell: string): string {
  return FORMULA_START.test(cell) ? `'${cell}` : cell;
}

function quote(cell: string, delimiter: string): string {
  return /[",\r\n]/.test(cell) || (delimiter !== ',' && cell.includes(delimiter))
    ? `"${cell.replace(/"/g, '""')}"`
    : cell;
}

/**
 * One CSV line, its cells separated by `delimiter` (a comma unless the file it answers used another);
 * every cell defused unless the cells are Roster's own (the templates).
 */
export function csvLine(
  cells: readonly string[],
  opts: { trusted?: boolean; delimiter?: string } = {},
): string {
  const delimiter = opts.delimiter ?? ',';
  const write = (c: string) => quote(opts.trusted ? c : defuse(c), delimiter);
  return `${cells.map((c) => write(c ?? '')).join(delimiter)}\r\n`;
}

/** Undoes `defuse` when an error file comes back fixed but still holding the quote Roster added. */
export function restore(cell: string): string {
  return cell.length > 1 && cell[0] === "'" && FORMULA_START.test(cell.slice(1)) ? cell.slice(1) : cell;
}

export const BOM = '\ufeff';

/** The templates admins download: the columns with one example row each. */
export const TEMPLATES = {
  users: {
    filename: 'roster-users-template.csv',
    title: 'Roster users template',
    rows: [
      [
        'type',
        'first_name',
        'last_name',
        'email',
        'role',
        'permission_set',
        'title',
        'phone',
        'send_invitation',
      ],
      [
        'user',
        'Ada',
        'Lovelace',
        'ada@example.com',
        'employee',
        'Member',
        'Engineer',
        '+44 20 7946 0000',
        'no',
      ],
      ['user', 'Grace', 'Hopper', 'grace@example.com', 'contractor', 'Manager', 'Advisor', '', 'yes'],
    ],
  },
  contacts: {
    filename: 'roster-contacts-template.csv',
    title: 'Roster contacts template',
    rows: [
      ['type', 'first_name', 'last_name', 'email', 'phone', 'company', 'title', 'notes'],
      [
        'contact',
        'Alan',
        'Turing',
        'alan@example.com',
        '+44 161 496 0000',
        'Bletchley Ltd',
        'Buyer',
        'Met at the fair',
      ],
      ['contact', 'Joan', 'Clarke', '', '', 'Bletchley Ltd', 'Analyst', 'Matched on name and company'],
    ],
  },
} as const;

export type TemplateKind = keyof typeof TEMPLATES;

export function templateFile(kind: TemplateKind): { filename: string; title: string; content: Buffer } {
  const t = TEMPLATES[kind];
  return {
    filename: t.filename,
    title: t.title,
    content: Buffer.from(BOM + t.rows.map((r) => csvLine(r, { trusted: true })).join(''), 'utf8'),
  };
}
