import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { MikroORM } from '@mikro-orm/postgresql';
import pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { json, type Statements, statements } from '../../db/sql.ts';
import { DomainError } from '../../shared/errors.ts';
import { PermissionSet } from '../accounts/account.entity.ts';
import { isPaidRole, PAID_ROLES, type Role } from '../people/user.entity.ts';
import type { SeatService } from '../seats/seat.service.ts';
import { CsvImport } from './csv-import.entity.ts';
import { BinaryFileError, type CsvSource, MAX_ROWS, readCsvBatches } from './csv-reader.ts';
import { checkRow, type Header, readHeader, rowKey } from './csv-rows.ts';
import {
  FIRST_ERRORS,
  type PreviewCounts,
  type PreviewSummary,
  type RowError,
  type UserData,
} from './import-types.ts';

/** Rows sent to COPY in one write: enough to keep the stream busy, few enough to keep memory flat. */
const COPY_ROWS = 500;
/** The longest the preview works before the event loop gets a turn, in milliseconds. */
const CHECK_SLICE_MS = 4;

/** A value in COPY's text format: backslash, tab and line breaks escaped; null as \N. */
function copyText(value: string | number | null): string {
  if (value === null) return '\\N';
  const s = String(value);
  return /[\\\t\n\r]/.test(s)
    ? s.replace(/\\/g, '\\\\').replace(/\t/g, '\\t').replace(/\n/g, '\\n').replace(/\r/g, '\\r')
    : s;
}

/**
 * A value as JSON in COPY's text format: JSON.stringify already writes line breaks and tabs inside
 * strings as escapes, so only its backslashes need doubling.
 */
function copyJson(value: unknown): string {
  const s = json(value);
  return s.includes('\\') ? s.replace(/\\/g, '\\\\') : s;
}

/** Passes the bytes on while hashing them, so the file's SHA-256 is known without holding it. */
async function* hashing(source: CsvSource, hash: ReturnType<typeof createHash>): AsyncGenerator<Buffer> {
  if (Buffer.isBuffer(source)) {
    hash.update(source);
    yield source;
    return;
  }
  for await (const chunk of source) {
    hash.update(chunk);
    yield Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
  }
}

/**
 * Reads a file into the import's staging rows and decides every row there: the file streams through
 * the CSV parser, each row is checked (every value against its column's limit) and sent to Postgres with
 * `COPY ... FROM STDIN` as it is read, so memory stays flat whatever the file's size. Duplicates within
 * the file and the diff against existing people and contacts are then a few set-based statements over
 * the staged rows, and the preview's counts and first errors are read from them. Nothing is written to
 * users or contacts. A file that cannot be read as a whole is rejected with a DomainError saying why.
 */
export async function previewFile(
  deps: { orm: MikroORM; seats: SeatService },
  importId: string,
  source: CsvSource,
  maxRows = MAX_ROWS,
): Promise<PreviewSummary> {
  const em = deps.orm.em.fork();
  const csvImport = await em.findOneOrFail(CsvImport, importId, { populate: ['account'] });
  const account = csvImport.account.getEntity();
  if (csvImport.status !== 'reading') {
    throw new Error(`import ${importId} is ${csvImport.status}, not reading`);
  }
  const exec = statements(em);
  // A preview that was interrupted and retried starts again from a clean slate.
  await exec('delete from csv_import_row where csv_import_id = $1', [importId]);
  const sets = await em.find(PermissionSet, { account }, { orderBy: { name: 'asc' } });
  const setByName = new Map(sets.map((s) => [s.name.toLowerCase(), s]));
  const setNames = sets.map((s) => s.name).join(', ');
  const defaultSet = (role: Role) => setByName.get(role === 'client' ? 'client' : 'member')?.id ?? null;

  const hash = createHash('sha256');
  let header: Header | undefined;
  let delimiter = ',';
  let rows = 0;
  // One staged row in COPY's text format, written out rather than mapped and joined: it is built once
  // per row of the file. The import's id, the line and the kind never need escaping.
  const line = (
    at: number,
    cells: string[],
    kind: string | null,
    key: string | null,
    error: string | null,
    data: object,
  ) =>
    `${importId}\t${at}\t${kind ?? '\\N'}\t${copyText(key)}\t${error ? 'error' : 'create'}\t${copyText(error)}\t${copyJson(data)}\t${copyJson(cells)}`;

  async function* staged(): AsyncGenerator<string> {
    let out: string[] = [];
    let checked = 0;
    let slice = performance.now();
    for await (const batch of readCsvBatches(hashing(source, hash), (d) => {
      delimiter = d;
    })) {
      for (const record of batch) {
        // Checking rows is synchronous work: let the event loop answer Slack every few milliseconds.
        if (++checked % 16 === 0 && performance.now() - slice > CHECK_SLICE_MS) {
          await new Promise<void>((ok) => setImmediate(ok));
          slice = performance.now();
        }
        if (!header) {
          header = readHeader(record.cells, delimiter);
          continue;
        }
        if (++rows > maxRows) {
          throw new DomainError(
            'file_rejected',
            `${csvImport.fileName} has more than ${maxRows.toLocaleString('en-US')} rows, the limit for one file. Split it into smaller files and upload them one by one.`,
          );
        }
        const check = checkRow(header, record.cells);
        if (!check.ok) {
          out.push(line(record.line, record.cells, null, null, check.error, {}));
        } else if (check.row.kind === 'contact') {
          const { kind: _k, ...data } = check.row;
          out.push(line(record.line, record.cells, 'contact', rowKey(check.row), null, data));
        } else {
          const row = check.row;
          const set = row.permissionSet ? setByName.get(row.permissionSet.toLowerCase()) : undefined;
          const { kind: _k, permissionSet: _p, ...values } = row;
          const role = row.role ?? 'employee';
          const data: UserData = {
            ...values,
            role,
            permissionSetId: set?.id ?? defaultSet(role),
            seatNeeded: row.sendInvitation && isPaidRole(role),
            givenRole: row.role,
            setId: set?.id ?? null,
          };
          const error =
            row.permissionSet && !set
              ? `${UNKNOWN_SET}"${row.permissionSet}" does not exist; the sets are ${setNames}`
              : null;
          out.push(line(record.line, record.cells, 'user', rowKey(row), error, data));
        }
      }
      if (out.length >= COPY_ROWS) {
        yield `${out.join('\n')}\n`;
        out = [];
      }
    }
    if (out.length) yield `${out.join('\n')}\n`;
  }

  const client = new pg.Client({ connectionString: deps.orm.config.get('clientUrl') });
  await client.connect();
  try {
    const copy = client.query(
      copyFrom(
        `copy csv_import_row (csv_import_id, line, kind, key, outcome, error, data, cells) from stdin`,
      ),
    );
    await pipeline(Readable.from(staged()), copy);
  } catch (err) {
    if (err instanceof BinaryFileError) {
      throw new DomainError(
        'file_rejected',
        `${csvImport.fileName} is not a CSV file: it holds binary data (an Excel workbook?). Save it as CSV (UTF-8) and upload it again.`,
      );
    }
    throw err;
  } finally {
    await client.end().catch(() => {});
  }
  if (!header) {
    throw new DomainError('file_rejected', `${csvImport.fileName} is empty. Download a template to start.`);
  }
  if (rows === 0) {
    throw new DomainError(
      'file_rejected',
      `${csvImport.fileName} has a header but no rows: add one row per person below it.`,
    );
  }

  // Fresh statistics after a large COPY, so the diff joins against people and contacts are planned
  // for the rows that are really there; only the columns the joins use (the jsonb ones are costly), from
  // a small sample: the plans need the row counts and the import's share of the table, which 3,000 rows
  // give as well as the default 30,000, in a tenth of the time.
  if (rows >= 10_000) {
    await em.transactional(async (tx) => {
      const run = statements(tx);
      await run('set local default_statistics_target = 10');
      await run('analyze csv_import_row (csv_import_id, kind, key, outcome)');
    });
  }
  await em.transactional(async (tx) => {
    const run = statements(tx);
    // Taken before the first comparison: a change committed after it may be missed by the preview, so it
    // counts as one made after the preview.
    await run(
      'update csv_import set previewed_at = clock_timestamp(), previewed_snapshot = pg_current_snapshot() where id = $1',
      [importId],
    );
    await decideStaged(run, importId, account.id);
  });
  const counts = await countStaged(exec, importId);
  const [moved] = await exec<{ id: string }>(
    `update csv_import set status = 'previewed', counts = $1::jsonb, columns = $2::jsonb, warnings = $3::jsonb,
       file_sha256 = $4, delimiter = $6, updated_at = now()
     where id = $5 and status = 'reading' returning id`,
    [json(counts), json(header.columns), json(header.warnings), hash.digest('hex'), importId, delimiter],
  );
  if (!moved) throw new Error(`import ${importId} changed while it was being read`);
  await em.refresh(csvImport);
  return {
    csvImport,
    counts: counts as PreviewCounts,
    seats: await deps.seats.usage(em, account),
    warnings: header.warnings,
    firstErrors: await firstErrors(exec, importId),
  };
}

/**
 * How the error of a user row naming a permission set the account does not have begins: the one error
 * found while reading that a row with a kind can have, kept when a preview is checked again.
 */
const UNKNOWN_SET = 'permission set ';

/** The preview's counts, from the decided rows. */
async function countStaged(exec: Statements, importId: string): Promise<PreviewCounts> {
  const [counts] = await exec<PreviewCounts>(
    `/* csv:preview-counts */ select count(*)::int as rows,
       count(*) filter (where outcome = 'create')::int as "create",
       count(*) filter (where outcome = 'update')::int as "update",
       count(*) filter (where outcome = 'unchanged')::int as unchanged,
       count(*) filter (where outcome = 'error')::int as error,
       count(*) filter (where kind = 'user')::int as users,
       count(*) filter (where kind = 'contact')::int as contacts,
       count(*) filter (where kind = 'user' and outcome <> 'error' and (data->>'seatNeeded')::boolean)::int as "seatsNeeded",
       count(*) filter (where kind = 'user' and outcome <> 'error' and (data->>'sendInvitation')::boolean
         and (outcome = 'create' or (data->>'invite')::boolean))::int as invitations
     from csv_import_row where csv_import_id = $1`,
    [importId],
  );
  return counts as PreviewCounts;
}

/**
 * Decides a previewed import's staged rows again against the people and contacts as they are now, as the
 * preview did, with no file to read: the rows return to what reading the file made of them (the errors
 * found while reading stay), the same set-based statements decide them, and the import's counts, preview
 * time and revision are renewed. Runs in `exec`'s transaction; returns the new counts, or null when the
 * import was cancelled meanwhile (its rows are then left as the check found them, for nothing).
 */
export async function recheckStaged(
  exec: Statements,
  importId: string,
  accountId: string,
): Promise<PreviewCounts | null> {
  // What this check sees is taken now and written with its outcome at the end: the import's row is not
  // written (so not locked) while the rows are decided, and a Cancel clicked meanwhile is not held up.
  const [seen] = await exec<{ at: Date; snapshot: string }>(
    'select clock_timestamp() as at, pg_current_snapshot()::text as snapshot',
  );
  // What the preview itself wrote on a row: its outcome, error and match, and for a user row the role,
  // permission set, seat and invitation of the user it matched (a new user's come from the file). A row
  // still to create was matched with nothing and is as reading made it: it is not written again.
  await exec(
    `/* csv:recheck-reset */ update csv_import_row r set outcome = 'create', error = null, target_id = null,
       data = case when r.kind = 'user' then (r.data - 'invite') || jsonb_build_object(
         'role', coalesce(r.data->>'givenRole', 'employee'),
         'permissionSetId', coalesce(r.data->>'setId', (
           select ps.id::text from permission_set ps where ps.account_id = $2
             and lower(ps.name) = case when coalesce(r.data->>'givenRole', 'employee') = 'client' then 'client' else 'member' end
           order by ps.name desc limit 1)),
         'seatNeeded', coalesce((r.data->>'sendInvitation')::boolean, false)
           and coalesce(r.data->>'givenRole', 'employee') = any($3::text[]))
         else r.data end
     where r.csv_import_id = $1 and r.kind is not null and r.outcome <> 'create'
       and not (r.outcome = 'error' and r.error like $4)`,
    [importId, accountId, PAID_ROLES, `${UNKNOWN_SET}"%`],
  );
  await decideStaged(exec, importId, accountId);
  const counts = await countStaged(exec, importId);
  // Cancelled while it was checked: the cancel stands, and nothing of the check is kept.
  const [kept] = await exec<{ id: string }>(
    `update csv_import set counts = $2::jsonb, preview_revision = preview_revision + 1,
       checking_revision = null, previewed_at = $3, previewed_snapshot = $4::pg_snapshot, updated_at = now()
     where id = $1 and status = 'previewed' returning id`,
    [importId, json(counts), seen!.at, seen!.snapshot],
  );
  return kept ? counts : null;
}

/** The first rows in error of an import, in file order. */
export function firstErrors(exec: Statements, importId: string): Promise<RowError[]> {
  return exec<RowError>(
    `select line, error as reason from csv_import_row
     where csv_import_id = $1 and (outcome = 'error' or result = 'error') order by line limit $2`,
    [importId, FIRST_ERRORS],
  );
}

/**
 * Decides the staged rows that passed their checks, set-based: a row repeating an earlier one (same
 * email whatever its case and spaces, or same name and company for a contact without one) is in error;
 * a user row matching an existing user becomes an update, unchanged or an error (a role or permission
 * set the import would change, an invitation for a deactivated user or one outside the account's allowed
 * email domains); a contact row matching a contact
 * likewise, and one whose email belongs to a user is in error.
 */
async function decideStaged(exec: Statements, importId: string, accountId: string) {
  await exec(
    `/* csv:dedupe */ update csv_import_row r set outcome = 'error',
       error = case when r.data->>'loginHint' is not null
         then 'the name "' || (r.data->>'loginHint') || '" in the email column is also on line ' || d.first
         when coalesce(r.data->>'email', '') <> ''
         then 'email ' || (r.data->>'email') || ' is also on line ' || d.first
         else 'a contact with the same name and company (and no email) is on line ' || d.first end
     from (select id, line, min(line) over (partition by key) as first
           from csv_import_row where csv_import_id = $1 and key is not null) d
     where r.id = d.id and d.line > d.first`,
    [importId],
  );
  await exec(
    `/* csv:diff-users */ with m as (
       select r.id, u.id as user_id, u.role, u.status, u.permission_set_id, ps.name as set_name,
         (r.data->>'givenRole') is not null and r.data->>'givenRole' <> u.role as role_differs,
         (r.data->>'setId') is not null and (r.data->>'setId')::uuid is distinct from u.permission_set_id as set_differs,
         (r.data->>'sendInvitation')::boolean and u.status in ('locked', 'not_invited') as invite,
         (r.data->>'firstName' is not null and r.data->>'firstName' is distinct from u.first_name)
           or (r.data->>'lastName' is not null and r.data->>'lastName' is distinct from u.last_name)
           or (r.data->>'title' is not null and r.data->>'title' is distinct from u.title)
           or (r.data->>'phone' is not null and r.data->>'phone' is distinct from u.phone)
           or (r.data->>'company' is not null and r.data->>'company' is distinct from c.company)
           or (r.data->>'notes' is not null and r.data->>'notes' is distinct from c.notes) as changed
       from csv_import_row r
       join app_user u on u.account_id = $2 and lower(btrim(u.email)) = r.key
       left join permission_set ps on ps.id = u.permission_set_id
       left join lateral (
         select company, notes from contact where account_id = $2 and user_id = u.id order by created_at limit 1
       ) c on true
       where r.csv_import_id = $1 and r.kind = 'user' and r.outcome = 'create'
     )
     update csv_import_row r set target_id = m.user_id,
       error = case
         when m.role_differs then case when m.role = 'employee' then 'is already an ' else 'is already a ' end
           || m.role || ' in Roster; the import does not change roles (change it in Roster)'
         when m.set_differs then 'already has ' || coalesce('the permission set ' || m.set_name, 'no permission set')
           || ' in Roster; the import does not change permission sets'
         when (r.data->>'sendInvitation')::boolean and m.status = 'deactivated'
           then 'is deactivated in Roster; reactivate them there before inviting them'
         end,
       outcome = case
         when m.role_differs or m.set_differs or ((r.data->>'sendInvitation')::boolean and m.status = 'deactivated')
           then 'error'
         when m.changed or m.invite then 'update' else 'unchanged' end,
       data = r.data || jsonb_build_object('role', m.role, 'permissionSetId', m.permission_set_id,
         'seatNeeded', m.invite and m.status = 'locked' and m.role = any($3::text[]), 'invite', m.invite)
     from m where r.id = m.id`,
    [importId, accountId, PAID_ROLES],
  );
  // A guest in Slack is never given a set that makes its holder an admin, as on the card and in /invite: a
  // new person's row naming such a set for an address the directory knows as a guest's is in error.
  await exec(
    `/* csv:guest-admins */ update csv_import_row r set outcome = 'error',
       error = 'email ' || (r.data->>'email') || ' is a guest in Slack, and a guest cannot be a Roster admin, so the permission set '
         || ps.name || ' was not given. Give the row another permission set, or make them a full member in Slack first'
     from permission_set ps, account a
     where r.csv_import_id = $1 and r.kind = 'user' and r.outcome = 'create'
       and a.id = $2 and ps.account_id = $2 and ps.is_admin and ps.id::text = r.data->>'permissionSetId'
       and exists (select 1 from slack_member m where m.account_id = $2 and not m.deleted and not m.is_bot
         and lower(btrim(m.email)) = r.key and (m.is_restricted or m.is_ultra_restricted)
         and (cardinality(m.team_ids) = 0 or a.team_id = any(m.team_ids)))`,
    [importId, accountId],
  );
  // A row asking for an invitation, for a new person or one the import would invite, must be at the
  // account's allowed email domains, as every invitation must.
  await exec(
    `/* csv:outside-domains */ update csv_import_row r set outcome = 'error',
       error = 'email ' || (r.data->>'email') || ' is outside the allowed email domains, so no invitation can be sent: invitations go only to '
         || array_to_string(array(select '@' || d from unnest(a.allowed_email_domains) d), ', ')
         || ' addresses. Import the row without send_invitation, or ask an admin to change the domains with /seats settings'
     from account a
     where a.id = $2 and cardinality(a.allowed_email_domains) > 0
       and r.csv_import_id = $1 and r.kind = 'user' and r.outcome in ('create', 'update')
       and (r.data->>'sendInvitation')::boolean and (r.outcome = 'create' or (r.data->>'invite')::boolean)
       and not lower(split_part(btrim(r.data->>'email'), '@', 2)) = any(a.allowed_email_domains)`,
    [importId, accountId],
  );
  // Before contacts are matched: a contact converted into a user keeps the user's address, and a row with it
  // is the user's, not a contact to update.
  await exec(
    `/* csv:contact-is-user */ update csv_import_row r set outcome = 'error',
       error = (r.data->>'email') || ' is already a user in Roster (contacts are people without a login); make the row a user to update them'
     from app_user u
     where r.csv_import_id = $1 and r.kind = 'contact' and r.outcome = 'create'
       and coalesce(r.data->>'email', '') <> ''
       and u.account_id = $2 and lower(btrim(u.email)) = r.key`,
    [importId, accountId],
  );
  await exec(
    `/* csv:diff-contacts */ with m as (
       select r.id, c.id as contact_id,
         (r.data->>'name') is distinct from c.name
           or (r.data->>'phone' is not null and r.data->>'phone' is distinct from c.phone)
           or (r.data->>'company' is not null and r.data->>'company' is distinct from c.company)
           or (r.data->>'title' is not null and r.data->>'title' is distinct from c.title)
           or (r.data->>'notes' is not null and r.data->>'notes' is distinct from c.notes) as changed
       from csv_import_row r
       join contact c on c.account_id = $2 and c.email is not null and lower(btrim(c.email)) = r.key
       where r.csv_import_id = $1 and r.kind = 'contact' and r.outcome = 'create'
         and coalesce(r.data->>'email', '') <> ''
     )
     update csv_import_row r set target_id = m.contact_id,
       outcome = case when m.changed then 'update' else 'unchanged' end
     from m where r.id = m.id`,
    [importId, accountId],
  );
  await exec(
    `/* csv:diff-named */ with m as (
       select distinct on (r.id) r.id, c.id as contact_id,
         (r.data->>'name') is distinct from c.name
           or (r.data->>'phone' is not null and r.data->>'phone' is distinct from c.phone)
           or (r.data->>'company' is not null and r.data->>'company' is distinct from c.company)
           or (r.data->>'title' is not null and r.data->>'title' is distinct from c.title)
           or (r.data->>'notes' is not null and r.data->>'notes' is distinct from c.notes) as changed
       from csv_import_row r
       join contact c on c.account_id = $2 and c.email is null and c.user_id is null
         and lower(btrim(c.name)) = lower(btrim(r.data->>'name'))
         and lower(btrim(coalesce(c.company, ''))) = lower(btrim(coalesce(r.data->>'company', '')))
       where r.csv_import_id = $1 and r.kind = 'contact' and r.outcome = 'create'
         and coalesce(r.data->>'email', '') = ''
       order by r.id, c.created_at, c.id
     )
     update csv_import_row r set target_id = m.contact_id,
       outcome = case when m.changed then 'update' else 'unchanged' end
     from m where r.id = m.id`,
    [importId, accountId],
  );
}
