import { readCsvBatches } from './src/features/csv-import/csv-reader.ts';
import { checkRow, readHeader } from './src/features/csv-import/csv-rows.ts';
async function run(label: string, text: string | Buffer) {
  let delim = ',';
  let header: ReturnType<typeof readHeader> | undefined;
  const out: string[] = [];
  try {
    for await (const batch of readCsvBatches(typeof text === 'string' ? Buffer.from(text) : text, (d) => { delim = d; })) {
      for (const r of batch) {
        if (!header) { header = readHeader(r.cells, delim); out.push(`H${r.line} ${JSON.stringify(header.index)} warn=${JSON.stringify(header.warnings)}`); continue; }
        const c = checkRow(header, r.cells);
        out.push(`${r.line}: ${c.ok ? JSON.stringify(c.row) : 'ERR ' + c.error}`);
      }
    }
  } catch (e) { out.push(`REJECT ${(e as Error).message}`); }
  console.log(`--- ${label}\n${out.join('\n')}`);
}
await run('google sheets', 'Email,First name,Last name\r\na@x.com,Ann,Lee\r\nb@x.com,Bo,\r\n');
await run('libreoffice quoted', '"email","first_name","last_name"\n"a@x.com","Ann","Lee"\n');
await run('quoted headers with spaces after sep', '"Email", "First Name", "Last Name"\na@x.com, Ann, Lee\n');
await run('quoted header with spaces inside', '" Email ","First Name "\na@x.com,Ann\n');
await run('header repeated mid-file', 'email,first_name\na@x.com,Ann\nemail,first_name\nb@x.com,Bo\n');
await run('blank lines', 'email,first_name\n\na@x.com,Ann\r\n\r\n,\n  \nb@x.com,Bo\n\n');
await run('BOM + sep=;', '\ufeffsep=;\r\nemail;first_name\r\na@x.com;Ann, Jr\r\n');
await run('BOM + "sep=;" quoted', '\ufeff"sep=;"\r\nemail;first_name\r\na@x.com;Ann\r\n');
await run('CRLF inside quoted cells', 'email,first_name,notes\r\na@x.com,Ann,"line1\r\nline2"\r\nb@x.com,Bo,x\r\nbad,Cy,y\r\n');
await run('CR only inside quoted cells', 'email,first_name,notes\ra@x.com,Ann,"line1\rline2"\rb@x.com,Bo,x\rbad,Cy,y\r');
await run('trailing empty header cols', 'email,first_name,,,\na@x.com,Ann,,,\nb@x.com,Bo\n');
await run('space after closing quote', 'email,first_name\n"a@x.com" ,"Ann"\n');
await run('whitespace-only line', 'email,first_name\na@x.com,Ann\n   \nb@x.com,Bo\n');
await run('sep=, excel', 'sep=,\nemail,first_name\na@x.com,Ann\n');
await run('header only blank first line', '\nemail,first_name\na@x.com,Ann\n');
await run('numbers semicolon quoted', '"Email";"First Name"\n"a@x.com";"Ann"\n');
await run('Ragged with sep header', 'sep=;\nemail;first_name;last_name\na@x.com;Ann\n');
await run('blank line then quoted newline then error', 'email,notes,first_name\n\na@x.com,"a\nb",Ann\nbad,,Bo\n');
await run('tab with quoted', 'Email\tFirst Name\n"a@x.com"\t"Ann"\n');
await run('email with mailto/angle', 'email,first_name\n"Ann Lee <a@x.com>",Ann\n mailto:b@x.com ,Bo\n');
