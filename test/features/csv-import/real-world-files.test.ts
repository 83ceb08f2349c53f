import iconv from 'iconv-lite';
import type { IAccount } from '../../../src/features/accounts/account.entity.ts';
import { CsvImport, CsvImportRow } from '../../../src/features/csv-import/csv-import.entity.ts';
import { DomainError } from '../../../src/shared/errors.ts';
import { type ImportTestbed, startImportTestbed } from './support.ts';

// Files as spreadsheets and other tools really write them: European Excel, Unicode exports, and headers
// spelled the way exports spell them.

let bed: ImportTestbed;

beforeAll(async () => {
  bed = await startImportTestbed();
});
afterAll(() => bed.stop());

const rowsOf = (importId: string) =>
  bed.orm.em.fork().find(CsvImportRow, { csvImport: importId }, { orderBy: { line: 'asc' } });

async function previewOk(account: IAccount, content: Buffer | string, name = 'people.csv') {
  const summary = await bed.preview(account, content, { name }).catch((err) => {
    throw new Error(`the file was refused: ${(err as Error).message}`);
  });
  return { summary, rows: await rowsOf(summary.csvImport.id) };
}

/** UTF-16 with its byte order mark, as Excel's "Unicode Text" and many reporting tools write it. */
function utf16(text: string, endian: 'le' | 'be'): Buffer {
  const le = Buffer.from(`\ufeff${text}`, 'utf16le');
  if (endian === 'le') return le;
  const be = Buffer.alloc(le.length);
  for (let i = 0; i < le.length; i += 2) {
    be[i] = le[i + 1] as number;
    be[i + 1] = le[i] as number;
  }
  return be;
}

describe('CSV files as spreadsheets write them', () => {
  it('reads a semicolon-separated file (Excel in most of Europe), keeping commas inside cells', async () => {
    const account = await bed.freshAccount(10);
    const file =
      '\ufeffemail;first_name;last_name;company;notes\r\n' +
      'anna@acme.test;Anna;Müller;Müller, Schmidt & Co;"Met in Berlin; call back"\r\n' +
      'ben@acme.test;Ben;Weber;;\r\n';
    const { summary, rows } = await previewOk(account, file);
    expect(summary.counts).toMatchObject({ rows: 2, create: 2, error: 0 });
    expect(summary.warnings).toEqual([]);
    expect(rows[0]?.data).toMatchObject({
      email: 'anna@acme.test',
      firstName: 'Anna',
      lastName: 'Müller',
      company: 'Müller, Schmidt & Co',
      notes: 'Met in Berlin; call back',
    });
    expect(rows.map((r) => r.line)).toEqual([2, 3]);
  });

  it('answers a semicolon-separated file with an error file separated the same way', async () => {
    const account = await bed.freshAccount(10);
    const file =
      'email;first_name;company\r\n' +
      'not-an-email;Nina;Nord, Süd & Co\r\n' +
      'otto@acme.test;Otto\r\n' +
      'pia@acme.test;Pia;Pia; GmbH\r\n';
    const { summary } = await previewOk(account, file);
    // Otto's row lacks its last, empty cell, as some exporters write it: it is read, not an error.
    expect(summary.counts).toMatchObject({ rows: 3, create: 1, error: 2 });
    expect(summary.firstErrors).toEqual([
      { line: 2, reason: 'email "not-an-email" is not a valid email address' },
      { line: 4, reason: 'has 4 cells but the header has 3 columns (an extra semicolon?)' },
    ]);
    const errors = (await bed.service.errorFile(summary.csvImport.id))?.toString('utf8');
    expect(errors?.split('\r\n')).toEqual([
      '\ufeffemail;first_name;company;line;reason',
      'not-an-email;Nina;"Nord, Süd & Co";2;"email ""not-an-email"" is not a valid email address"',
      'pia@acme.test;Pia;Pia;4;has 4 cells but the header has 3 columns (an extra semicolon?);GmbH',
      '',
    ]);
    // Fixed and dropped again, it is read with its separator and its own columns ignored.
    const fixed = errors
      ?.replace('not-an-email', 'nina@acme.test')
      .replace('Pia;Pia;4', 'Pia;"Pia; GmbH";4')
      .replace('semicolon?);GmbH', 'semicolon?)');
    const again = await previewOk(account, fixed ?? '', 'people-errors.csv');
    expect(again.summary.counts).toMatchObject({ rows: 2, create: 2, error: 0 });
    expect(again.summary.warnings).toEqual([]);
    expect(again.rows.map((r) => r.data.company)).toEqual(['Nord, Süd & Co', 'Pia; GmbH']);
  });

  it('reads a tab-separated file', async () => {
    const account = await bed.freshAccount(10);
    const { summary, rows } = await previewOk(
      account,
      'email\tfirst_name\tcompany\ncara@acme.test\tCara\tCara, Inc.\n',
    );
    expect(summary.counts).toMatchObject({ rows: 1, create: 1, error: 0 });
    expect(rows[0]?.data).toMatchObject({ email: 'cara@acme.test', company: 'Cara, Inc.' });
  });

  it('still reads a comma-separated file whose cells hold semicolons', async () => {
    const account = await bed.freshAccount(10);
    const { summary, rows } = await previewOk(
      account,
      'email,first_name,notes\ndan@acme.test,Dan,a; b; c; d\n',
    );
    expect(summary.counts).toMatchObject({ rows: 1, create: 1, error: 0 });
    expect(rows[0]?.data).toMatchObject({ notes: 'a; b; c; d' });
  });

  it('reads UTF-16 files (little and big endian) instead of calling them binary', async () => {
    const account = await bed.freshAccount(10);
    const text =
      'email\tfirst_name\tlast_name\r\nzoe@acme.test\tZoë\tÅberg\r\nyann@acme.test\tYann\tLe Bihan\r\n';
    for (const endian of ['le', 'be'] as const) {
      const { summary, rows } = await previewOk(account, utf16(text, endian), `unicode-${endian}.csv`);
      expect(summary.counts).toMatchObject({ rows: 2, error: 0 });
      expect(rows[0]?.data).toMatchObject({ email: 'zoe@acme.test', firstName: 'Zoë', lastName: 'Åberg' });
      expect(rows.map((r) => r.line)).toEqual([2, 3]);
    }
  });

  it('reads a UTF-16 file streamed in chunks that split its characters', async () => {
    const account = await bed.freshAccount(10);
    const bytes = utf16('email,first_name\nzoe@acme.test,Zoë\n', 'le');
    async function* oddChunks() {
      for (let i = 0; i < bytes.length; i += 3) yield bytes.subarray(i, i + 3);
    }
    const summary = await bed.preview(account, oddChunks());
    const [row] = await rowsOf(summary.csvImport.id);
    expect(row?.data).toMatchObject({ email: 'zoe@acme.test', firstName: 'Zoë' });
  });

  it('still refuses a workbook renamed .csv', async () => {
    const account = await bed.freshAccount(10);
    const zip = Buffer.from([0x50, 0x4b, 0x03, 0x04, 0x14, 0x00, 0x06, 0x00]);
    const err = await bed.preview(account, zip, { name: 'book.csv' }).catch((e) => e);
    expect(err).toBeInstanceOf(DomainError);
    expect(err.message).toContain('book.csv is not a CSV file');
  });
});

describe('CSV headers as exports spell them', () => {
  it('matches column names that differ only in case, spaces, hyphens or underscores', async () => {
    const account = await bed.freshAccount(10);
    const { summary, rows } = await previewOk(
      account,
      'E-Mail,FirstName,lastname,Send Invitation,Permission-Set\neve@acme.test,Eve,Stone,no,\n',
    );
    expect(summary.warnings).toEqual([]);
    expect(summary.counts).toMatchObject({ rows: 1, create: 1, error: 0 });
    expect(rows[0]?.data).toMatchObject({ email: 'eve@acme.test', firstName: 'Eve', lastName: 'Stone' });
  });

  it('reads the names exports commonly give the columns', async () => {
    const account = await bed.freshAccount(10);
    const { summary, rows } = await previewOk(
      account,
      'Email Address,Full Name,Job Title,Phone Number\ngil@acme.test,Gil Marsh,Buyer,+1 555 0100\n',
    );
    expect(summary.warnings).toEqual([]);
    expect(rows[0]?.data).toMatchObject({
      email: 'gil@acme.test',
      firstName: 'Gil',
      lastName: 'Marsh',
      title: 'Buyer',
      phone: '+1 555 0100',
    });
  });

  it('reads the columns of Google Contacts and Outlook exports', async () => {
    const account = await bed.freshAccount(10);
    const google = await previewOk(
      account,
      'First Name,Middle Name,Last Name,E-mail 1 - Label,E-mail 1 - Value,Organization Name,Organization Title\n' +
        'Hal,J.,Moss,* Work,hal@acme.test,Moss & Co,Buyer\n',
      'contacts.csv',
    );
    expect(google.summary.counts).toMatchObject({ rows: 1, create: 1, error: 0 });
    expect(google.rows[0]?.data).toMatchObject({
      email: 'hal@acme.test',
      firstName: 'Hal',
      lastName: 'Moss',
      company: 'Moss & Co',
      title: 'Buyer',
    });
    const outlook = await previewOk(
      account,
      '"Given Name","Surname","E-mail Address","Company","Job Title"\r\n"Ida","Vale","ida@acme.test","Vale Ltd","CFO"\r\n',
      'outlook.csv',
    );
    expect(outlook.summary.counts).toMatchObject({ rows: 1, create: 1, error: 0 });
    expect(outlook.rows[0]?.data).toMatchObject({
      email: 'ida@acme.test',
      firstName: 'Ida',
      lastName: 'Vale',
      company: 'Vale Ltd',
    });
  });

  it('still refuses a file that names a column twice, however it is spelled', async () => {
    const account = await bed.freshAccount(10);
    const err = await bed
      .preview(account, 'email,E-Mail,first_name\nfay@acme.test,fay@acme.test,Fay\n')
      .catch((e) => e);
    expect(err).toBeInstanceOf(DomainError);
    expect(err.message).toBe(
      'The column email appears twice (columns 1 and 2). Keep one and upload the file again.',
    );
    const failed = await bed.orm.em.fork().find(CsvImport, { status: 'failed', account });
    expect(failed).toHaveLength(1);
    expect(await rowsOf(failed[0]!.id)).toHaveLength(0);
  });
});

describe('CSV files in a single-byte encoding: Windows-1252 or MacRoman', () => {
  // Names as Western European files hold them, each alone in a file: detection must not need many.
  const NAMES = [
    'Müller',
    'José',
    'François',
    'Søren',
    'Weißmann',
    'Élodie',
    'Zoë',
    'Ångström',
    'Núñez',
    'Sánchez',
    'Gonçalves',
    'Jürgen',
    'Renée',
    'Hélène',
    'Brontë',
    'Øyvind',
    'Käthe',
    'Çelik',
    'Ödön',
    'Ibáñez',
    'Ünal',
    'Íñigo',
    'Ólafur',
    'Bjørn',
    'Cañón',
    'Strauß',
    'JOSÉ MÜLLER',
    'ÉLODIE',
    'Col·lecció',
    'Zürich',
    'Côte',
    'Lærke',
    'Raúl',
    'Inês',
    'João',
    'Agnès',
    'Noël',
    'Loïc',
    'Jérôme',
    'Müller-Lüdenscheidt',
    'María',
    'Schröder',
    'O’Neil',
    'Björk',
  ];
  const oneNameFile = (name: string, encoding: string, eol: string) =>
    Buffer.concat([
      Buffer.from(`email,first_name${eol}`),
      iconv.encode(`x@acme.test,${name}`, encoding),
      Buffer.from(eol),
    ]);

  it('reads a file Excel for Mac saved as CSV (MacRoman, lines ending in a carriage return)', async () => {
    const account = await bed.freshAccount(10);
    const text =
      'email,first_name,last_name,company\r' +
      'jose@acme.test,José,Müller,Café Müller\r' +
      'francois@acme.test,François,Gonçalves,\r' +
      'soren@acme.test,Søren,Weißmann,Øresund ApS\r' +
      'maria@acme.test,María,Núñez,\r' +
      'noel@acme.test,Noël,Brontë,\r';
    const { summary, rows } = await previewOk(account, iconv.encode(text, 'macintosh'));
    expect(summary.counts).toMatchObject({ rows: 5, create: 5, error: 0 });
    expect(rows.map((r) => [r.line, r.data.firstName, r.data.lastName, r.data.company])).toEqual([
      [2, 'José', 'Müller', 'Café Müller'],
      [3, 'François', 'Gonçalves', null],
      [4, 'Søren', 'Weißmann', 'Øresund ApS'],
      [5, 'María', 'Núñez', null],
      [6, 'Noël', 'Brontë', null],
    ]);
  });

  it('reads a MacRoman file of one name, whatever its line endings when the name tells', async () => {
    const account = await bed.freshAccount(10);
    const wrong: string[] = [];
    for (const name of NAMES) {
      // A few read as Windows-1252 words too ("Mar’a", "Schršder", "Raœl"): only the carriage returns
      // Excel for Mac ends lines with tell them.
      const eols = ['María', 'Schröder', 'O’Neil', 'Björk', 'Raúl'].includes(name) ? ['\r'] : ['\r', '\r\n'];
      for (const eol of eols) {
        const { rows } = await previewOk(account, oneNameFile(name, 'macintosh', eol));
        if (rows[0]?.data.firstName !== name) wrong.push(`${name} read as ${rows[0]?.data.firstName}`);
      }
    }
    expect(wrong).toEqual([]);
  });

  it('reads a UTF-8 file with a byte order mark and a Windows-1252 letter as Windows-1252, without the mark', async () => {
    const account = await bed.freshAccount(10);
    const bytes = Buffer.concat([
      Buffer.from('\ufeffemail,first_name\nzoe@acme.test,Zo'),
      Buffer.from([0xeb]),
      Buffer.from('\n'),
    ]);
    const { summary, rows } = await previewOk(account, bytes);
    expect(summary.counts).toMatchObject({ rows: 1, create: 1, error: 0 });
    expect(rows[0]?.data).toMatchObject({ email: 'zoe@acme.test', firstName: 'Zoë' });
  });

  it('still reads a Windows-1252 file of one name as Windows-1252', async () => {
    const account = await bed.freshAccount(10);
    const wrong: string[] = [];
    for (const name of [...NAMES, 'Eliška', 'Žižek', 'cœur', 'Acme™', 'Jean–Pierre', 'réunion à l’école']) {
      const { rows } = await previewOk(account, oneNameFile(name, 'win1252', '\r\n'));
      if (rows[0]?.data.firstName !== name) wrong.push(`${name} read as ${rows[0]?.data.firstName}`);
    }
    expect(wrong).toEqual([]);
  });
});

describe('CSV files whose names were garbled before they reached Roster', () => {
  it('makes a row whose name or company reads as text converted twice an error, saying what to do', async () => {
    const account = await bed.freshAccount(10);
    const { summary } = await previewOk(
      account,
      'email,first_name,last_name,company\n' +
        'ann@acme.test,Ann,MÃ¼ller,\n' +
        'bo@acme.test,JosÃ©,Ek,\n' +
        'cy@acme.test,Cy,Lee,Caf\ufffd Lee\n' +
        'di@acme.test,Dião,SÃO PAULO,Itaú Unibanco\n',
    );
    expect(summary.counts).toMatchObject({ rows: 4, create: 1, error: 3 });
    const advice =
      'the file was saved in another encoding than it was written in. Save the original as CSV UTF-8 and upload it again, or correct the name';
    expect(summary.firstErrors).toEqual([
      {
        line: 2,
        reason: `last_name "MÃ¼ller" looks garbled (Ã¼ is ü, read in the wrong encoding): ${advice}`,
      },
      {
        line: 3,
        reason: `first_name "JosÃ©" looks garbled (Ã© is é, read in the wrong encoding): ${advice}`,
      },
      {
        line: 4,
        reason: `company "Caf\ufffd Lee" looks garbled (� stands for a letter that was lost): ${advice}`,
      },
    ]);
  });

  it('reads a cell of zero-width characters alone as empty, so no name is a blank', async () => {
    const account = await bed.freshAccount(10);
    const { summary, rows } = await previewOk(
      account,
      'type,email,first_name,last_name,company\n' +
        'contact,,\u200B\u200D,\u2060\uFEFF,Acme\n' +
        'user,ann@acme.test,\u200E,Lee,\u200B\n',
    );
    expect(summary.counts).toMatchObject({ rows: 2, create: 1, error: 1 });
    expect(summary.firstErrors).toEqual([{ line: 2, reason: 'a contact needs a first_name or last_name' }]);
    expect(rows.find((r) => r.line === 3)?.data).toMatchObject({
      email: 'ann@acme.test',
      firstName: null,
      lastName: 'Lee',
      company: null,
    });
  });
});

describe('CSV files as other tools write them', () => {
  it('reads header and value cells quoted after a space, as some exporters write them', async () => {
    const account = await bed.freshAccount(10);
    const { summary, rows } = await previewOk(
      account,
      '"Email", "First Name", "Last Name", "Company"\r\n"ann@acme.test", "Ann", "Lee", "Lee, Hart & Co"\r\n"bo@acme.test" , "Bo" , "Ek" , ""\r\n',
    );
    expect(summary.warnings).toEqual([]);
    expect(summary.counts).toMatchObject({ rows: 2, create: 2, error: 0 });
    expect(rows.map((r) => [r.data.email, r.data.firstName, r.data.lastName, r.data.company])).toEqual([
      ['ann@acme.test', 'Ann', 'Lee', 'Lee, Hart & Co'],
      ['bo@acme.test', 'Bo', 'Ek', null],
    ]);
  });

  it('numbers lines after a CRLF inside a quoted cell as a text editor does, and keeps it as one line break', async () => {
    const account = await bed.freshAccount(10);
    const { summary, rows } = await previewOk(
      account,
      'email,first_name,notes\r\nann@acme.test,Ann,"Met in Oslo\r\ncall back"\r\nbo@acme.test,Bo,x\r\nnot-an-email,Cy,\r\n',
    );
    expect(rows.map((r) => r.line)).toEqual([2, 4, 5]);
    expect(rows[0]?.data.notes).toBe('Met in Oslo\ncall back');
    expect(summary.firstErrors).toEqual([
      { line: 5, reason: 'email "not-an-email" is not a valid email address' },
    ]);
  });

  it('refuses text after a closing quote naming the line as a text editor does, and what to change', async () => {
    const account = await bed.freshAccount(10);
    const err = await bed
      .preview(account, 'email,first_name\r\n"Line\r\nbreak",Ann\r\n"a@x.test" Jr,Ann\r\nb@x.test,Bob\r\n')
      .catch((e) => e);
    expect(err).toBeInstanceOf(DomainError);
    expect(err.message).toBe(
      'A cell on line 4 has text after its closing quote (such as `"Smith" Jr`), so the rest of the file cannot be read. Put the whole cell inside the quotes (`"Smith Jr"`), or remove its quotes, and upload the file again.',
    );
  });

  it('numbers lines after a line break inside a quoted cell of a file whose lines end in a carriage return', async () => {
    const account = await bed.freshAccount(10);
    const { summary, rows } = await previewOk(
      account,
      'email,first_name,notes\rann@acme.test,Ann,"Met in Oslo\rcall back"\rbo@acme.test,Bo,x\rnot-an-email,Cy,\r',
    );
    expect(rows.map((r) => r.line)).toEqual([2, 4, 5]);
    expect(rows[0]?.data.notes).toBe('Met in Oslo\ncall back');
    expect(summary.firstErrors).toEqual([
      { line: 5, reason: 'email "not-an-email" is not a valid email address' },
    ]);
  });

  it('reads a file whose lines end in CRLF and LF both (edited on two systems), a row a line', async () => {
    const account = await bed.freshAccount(10);
    const { summary, rows } = await previewOk(
      account,
      'email,first_name\r\nann@acme.test,Ann\r\nbo@acme.test,Bo\nnot-an-email,Cy\n\ndi@acme.test,Di\r\n',
    );
    expect(rows.map((r) => [r.line, r.cells])).toEqual([
      [2, ['ann@acme.test', 'Ann']],
      [3, ['bo@acme.test', 'Bo']],
      [4, ['not-an-email', 'Cy']],
      [6, ['di@acme.test', 'Di']],
    ]);
    expect(summary.firstErrors).toEqual([
      { line: 4, reason: 'email "not-an-email" is not a valid email address' },
    ]);
  });

  it('skips the header repeated inside the file (exports joined together)', async () => {
    const account = await bed.freshAccount(10);
    const { summary, rows } = await previewOk(
      account,
      'email,first_name\r\nann@acme.test,Ann\r\n Email , First_Name \r\nbo@acme.test,Bo\r\n"email","first_name",\r\ncy@acme.test,Cy\r\n',
    );
    expect(summary.counts).toMatchObject({ rows: 3, create: 3, error: 0 });
    expect(rows.map((r) => [r.line, r.data.email])).toEqual([
      [2, 'ann@acme.test'],
      [4, 'bo@acme.test'],
      [6, 'cy@acme.test'],
    ]);
  });

  it('reads the separator from a "sep=;" line in quotes after a byte order mark', async () => {
    const account = await bed.freshAccount(10);
    const { summary, rows } = await previewOk(
      account,
      '\ufeff"sep=;"\r\nemail;first_name\r\nann@acme.test;Ann, Jr.\r\n',
    );
    expect(summary.counts).toMatchObject({ rows: 1, create: 1, error: 0 });
    expect(rows.map((r) => [r.line, r.data.firstName])).toEqual([[3, 'Ann, Jr.']]);
  });

  it('skips blank lines, lines of spaces and lines of separators, numbering the rest as in the file', async () => {
    const account = await bed.freshAccount(10);
    const { summary, rows } = await previewOk(
      account,
      'email,first_name\r\n\r\nann@acme.test,Ann\r\n,\r\n   \r\n , \r\nnot-an-email,Bo\r\n\r\n',
    );
    expect(summary.counts).toMatchObject({ rows: 2, create: 1, error: 1 });
    expect(rows.map((r) => r.line)).toEqual([3, 7]);
    expect(summary.firstErrors).toEqual([
      { line: 7, reason: 'email "not-an-email" is not a valid email address' },
    ]);
  });
});
