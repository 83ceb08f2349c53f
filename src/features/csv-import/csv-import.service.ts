import { createHash } from 'node:crypto';
import type { EntityManager, MikroORM } from '@mikro-orm/postgresql';
import { CompiledQuery, type Transaction } from 'kysely';
import { DomainError, isDomainError } from '../../shared/errors.ts';
import type { JobQueue } from '../../shared/jobs.ts';
import { Account, type IAccount, PermissionSet } from '../accounts/account.entity.ts';
import { audit } from '../audit/audit.service.ts';
import { queueInvitation } from '../invites/invitation.service.ts';
import { createUser } from '../people/people.service.ts';
import { displayName, type IUser, isPaidRole, type Role, User } from '../people/user.entity.ts';
import type { Actor, SeatService, SeatUsage } from '../seats/seat.service.ts';
import { CsvImport, type CsvRowOutcome, type CsvRowResult, type ICsvImport } from './csv-import.entity.ts';
import { looksBinary, readCsv } from './csv-reader.ts';
import { type ContactRow, checkRow, type Header, readHeader, rowKey, type UserRow } from './csv-rows.ts';
import { BOM, csvLine } from './csv-writer.ts';

export const CSV_JOBS = { preview: 'csv-import.preview', run: 'csv-import.run' } as const;

/** What a user row holds once previewed: the checked values plus what the preview resolved. */
export type UserData = Omit<UserRow, 'kind' | 'permissionSet'> & {
  permissionSetId: string | null;
  seatNeeded: boolean;
};
export type ContactData = Omit<ContactRow, 'kind'>;

export type PreviewCounts = {
  rows: number;
  create: number;
  update: number;
  unchanged: number;
  error: number;
  users: number;
  contacts: number;
  /** Paid seats the import would take: invitations asked for new or locked users with a paid role. */
  seatsNeeded: number;
  invitations: number;
};

export type ResultCounts = {
  created: number;
  updated: number;
  kept: number;
  failed: number;
  noSeat: number;
  invited: number;
};

export type RowError = { line: number; reason: string };

export type PreviewSummary = {
  csvImport: ICsvImport;
  counts: PreviewCounts;
  seats: SeatUsage;
  warnings: string[];
  firstErrors: RowError[];
};

export type ImportSummary = {
  csvImport: ICsvImport;
  counts: PreviewCounts & ResultCounts;
  firstErrors: RowError[];
};

export type RunHooks = {
  /** Called after every batch with the rows applied so far. */
  onProgress?(done: number, total: number): void;
  /** Stops after this many batches, as a process that dies there would. */
  maxBatches?: number;
  /** Runs inside each batch's transaction just before it commits; throwing rolls the batch back. */
  beforeCommit?(batch: number): Promise<void> | void;
};

export type StartResult =
  | { status: 'started'; csvImport: ICsvImport }
  | { status: 'unchanged'; csvImport: ICsvImport };

const FIRST_ERRORS = 10;

type Exec = <T = Record<string, unknown>>(sql: string, params?: unknown[]) => Promise<T[]>;

/**
 * Raw SQL on the EntityManager's connection (inside its transaction, if any), with `?` placeholders sent
 * as bind parameters: the batches carry their rows as one JSON parameter, which must not be spliced into
 * the SQL text.
 */
function sql(em: EntityManager): Exec {
  return async (query, params = []) => {
    let n = 0;
    const compiled = CompiledQuery.raw(
      query.replace(/\?/g, () => `$${++n}`),
      params,
    );
    const trx = em.getTransactionContext<Transaction<unknown>>();
    const result = await (trx ?? em.getConnection().getClient()).executeQuery(compiled);
    return result.rows as never;
  };
}

const json = (value: unknown) => JSON.stringify(value);

type PendingRow = { line: number; cells: string[]; error?: string; row?: UserRow | ContactRow; key?: string };

type StoredRow = {
  line: number;
  cells: string[];
  kind: 'user' | 'contact' | null;
  key: string | null;
  target_id: string | null;
  outcome: CsvRowOutcome;
  error: string | null;
  data: UserData | ContactData | Record<string, never>;
};

type ExistingUser = {
  id: string;
  k: string;
  first_name: string | null;
  last_name: string | null;
  title: string | null;
  phone: string | null;
  role: Role;
  status: string;
  permission_set_id: string | null;
};
type ExistingContact = {
  id: string;
  k: string;
  name: string;
  phone: string | null;
  company: string | null;
  title: string | null;
  notes: string | null;
};

type BatchRow = { id: string; line: number; kind: 'user' | 'contact'; data: Record<string, any> };
type Applied = { result: CsvRowResult; error?: string; invited?: boolean };

/**
 * The original cells are kept only for rows that can end in the error file: rows in error, and users
 * asking for an invitation, who end in error when no paid seat is free.
 */
function keepCellsIfNeeded(row: StoredRow): StoredRow | Omit<StoredRow, 'cells'> {
  if (row.outcome === 'error' || (row.data as Partial<UserData>).sendInvitation) return row;
  const { cells: _, ...rest } = row;
  return rest;
}

const differs = (wanted: string | null | undefined, current: string | null | undefined) =>
  wanted != null && wanted !== current;

/**
 * CSV imports: reads a file into a preview (nothing written to users or contacts), then, when an admin
 * says so, applies it in batches. Every row is marked applied in the same transaction as its effect, so a
 * run that stops anywhere can be run again and finishes with no duplicate and no lost row.
 */
export class CsvImportService {
  private readonly orm: MikroORM;
  private readonly jobs: JobQueue;
  private readonly seats: SeatService;
  private readonly batchSize: number;

  constructor(opts: { orm: MikroORM; jobs: JobQueue; seats: SeatService; batchSize?: number }) {
    this.orm = opts.orm;
    this.jobs = opts.jobs;
    this.seats = opts.seats;
    this.batchSize = opts.batchSize ?? 1000;
  }

  /**
   * Records an upload and returns it; the same Slack file uploaded again (a retried event, a second
   * submit) returns the first record with `duplicate`, so it is read once.
   */
  async begin(
    em: EntityManager,
    account: IAccount,
    input: { uploadedBy: string; fileName: string; fileId: string; channelId?: string | null },
  ): Promise<{ csvImport: ICsvImport; duplicate: boolean }> {
    const [inserted] = await sql(em)<{ id: string }>(
      `insert into csv_import (id, account_id, uploaded_by, file_name, file_id, status, channel_id)
       values (gen_random_uuid(), ?, ?, ?, ?, 'reading', ?)
       on conflict (account_id, file_id) where file_id is not null do nothing returning id`,
      [account.id, input.uploadedBy, input.fileName.slice(0, 255), input.fileId, input.channelId ?? null],
    );
    const csvImport = inserted
      ? await em.findOneOrFail(CsvImport, inserted.id)
      : await em.findOneOrFail(CsvImport, { account, fileId: input.fileId });
    return { csvImport, duplicate: !inserted };
  }

  /** Rejects the file as a whole: nothing of it is kept but the reason. */
  async reject(importId: string, reason: string): Promise<void> {
    await sql(this.orm.em.fork())(
      `update csv_import set status = 'failed', error = ?, finished_at = now(), updated_at = now()
       where id = ? and status = 'reading'`,
      [reason, importId],
    );
  }

  async setMessage(importId: string, where: { channelId?: string; messageTs?: string; progressTs?: string }) {
    const em = this.orm.em.fork();
    const csvImport = await em.findOneOrFail(CsvImport, importId);
    if (where.channelId) csvImport.channelId = where.channelId;
    if (where.messageTs) csvImport.messageTs = where.messageTs;
    if (where.progressTs) csvImport.progressTs = where.progressTs;
    await em.flush();
  }

  /**
   * Reads the file and decides every row: create, update, unchanged or error. Stores the rows with the
   * import; writes nothing to users or contacts. A file that cannot be read as a whole is rejected with a
   * DomainError (`file_rejected`) saying why, and the import is marked failed.
   */
  async preview(importId: string, bytes: Buffer): Promise<PreviewSummary> {
    try {
      return await this.read(importId, bytes);
    } catch (err) {
      if (isDomainError(err)) await this.reject(importId, err.message);
      throw err;
    }
  }

  private async read(importId: string, bytes: Buffer): Promise<PreviewSummary> {
    const em = this.orm.em.fork();
    const csvImport = await em.findOneOrFail(CsvImport, importId, { populate: ['account'] });
    const account = csvImport.account.getEntity();
    if (csvImport.status !== 'reading') {
      throw new Error(`import ${importId} is ${csvImport.status}, not reading`);
    }
    if (looksBinary(bytes)) {
      throw new DomainError(
        'file_rejected',
        `${csvImport.fileName} is not a CSV file: it holds binary data (an Excel workbook?). Save it as CSV (UTF-8) and upload it again.`,
      );
    }
    const exec = sql(em);
    // A preview that was interrupted and retried starts again from a clean slate.
    await exec('delete from csv_import_row where csv_import_id = ?', [importId]);
    const sets = await em.find(PermissionSet, { account }, { orderBy: { name: 'asc' } });

    const counts: PreviewCounts = {
      rows: 0,
      create: 0,
      update: 0,
      unchanged: 0,
      error: 0,
      users: 0,
      contacts: 0,
      seatsNeeded: 0,
      invitations: 0,
    };
    const firstErrors: RowError[] = [];
    const seen = new Map<string, number>();
    let header: Header | undefined;
    let pending: PendingRow[] = [];

    const flush = async () => {
      if (!pending.length) return;
      const stored = await this.decide(em, account, sets, pending);
      pending = [];
      for (const r of stored) {
        counts.rows++;
        counts[r.outcome]++;
        if (r.kind === 'user') counts.users++;
        if (r.kind === 'contact') counts.contacts++;
        if (r.outcome === 'error') {
          if (firstErrors.length < FIRST_ERRORS) firstErrors.push({ line: r.line, reason: r.error ?? '' });
        } else if (r.kind === 'user') {
          const d = r.data as UserData;
          if (d.seatNeeded) counts.seatsNeeded++;
          if (d.sendInvitation && (r.outcome === 'create' || (r.data as { invite?: boolean }).invite)) {
            counts.invitations++;
          }
        }
      }
      await exec(
        `/* csv:preview-rows */ insert into csv_import_row (csv_import_id, line, data, cells, kind, key, target_id, outcome, error)
         select ?::uuid, x.line, x.data, coalesce(x.cells, '[]'::jsonb), x.kind, x.key, x.target_id, x.outcome, x.error
         from jsonb_to_recordset(?::jsonb) as x(line int, data jsonb, cells jsonb, kind text, key text,
           target_id uuid, outcome text, error text)`,
        [importId, json(stored.map(keepCellsIfNeeded))],
      );
    };

    for await (const record of readCsv(bytes)) {
      if (!header) {
        header = readHeader(record.cells);
        continue;
      }
      const check = checkRow(header, record.cells);
      const row: PendingRow = { line: record.line, cells: record.cells };
      if (!check.ok) {
        row.error = check.error;
      } else {
        const key = rowKey(check.row);
        const earlier = seen.get(key);
        if (earlier !== undefined) {
          row.error = check.row.email
            ? `email ${check.row.email} is also on line ${earlier}`
            : `a contact with the same name and company (and no email) is on line ${earlier}`;
        } else {
          seen.set(key, record.line);
          row.row = check.row;
          row.key = key;
        }
      }
      pending.push(row);
      if (pending.length >= this.batchSize) await flush();
    }
    if (!header) {
      throw new DomainError('file_rejected', `${csvImport.fileName} is empty. Download a template to start.`);
    }
    await flush();
    if (counts.rows === 0) {
      throw new DomainError(
        'file_rejected',
        `${csvImport.fileName} has a header but no rows: add one row per person below it.`,
      );
    }

    const [moved] = await exec<{ id: string }>(
      `update csv_import set status = 'previewed', counts = ?::jsonb, columns = ?::jsonb, warnings = ?::jsonb,
         file_sha256 = ?, updated_at = now()
       where id = ? and status = 'reading' returning id`,
      [
        json(counts),
        json(header.columns),
        json(header.warnings),
        createHash('sha256').update(bytes).digest('hex'),
        importId,
      ],
    );
    if (!moved) throw new Error(`import ${importId} changed while it was being read`);
    await em.refresh(csvImport);
    return {
      csvImport,
      counts,
      seats: await this.seats.usage(em, account),
      warnings: header.warnings,
      firstErrors,
    };
  }

  /** Decides a batch of rows against the database: who exists already, what would change. */
  private async decide(
    em: EntityManager,
    account: IAccount,
    sets: { id: string; name: string }[],
    rows: PendingRow[],
  ): Promise<StoredRow[]> {
    const exec = sql(em);
    const emailKeys = rows.filter((r) => r.row?.email).map((r) => r.key as string);
    const nameKeys = rows
      .filter((r) => r.row?.kind === 'contact' && !r.row.email)
      .map((r) => {
        const c = r.row as ContactRow;
        return { k: r.key, n: c.name.trim().toLowerCase(), c: (c.company ?? '').trim().toLowerCase() };
      });
    const users = new Map<string, ExistingUser>();
    const contacts = new Map<string, ExistingContact>();
    if (emailKeys.length) {
      for (const u of await exec<ExistingUser>(
        `/* csv:preview-users */ select id, lower(btrim(email)) as k, first_name, last_name, title, phone, role, status, permission_set_id
         from app_user where account_id = ? and lower(btrim(email)) in (select jsonb_array_elements_text(?::jsonb))`,
        [account.id, json(emailKeys)],
      )) {
        users.set(u.k, u);
      }
      for (const c of await exec<ExistingContact>(
        `/* csv:preview-contacts */ select id, lower(btrim(email)) as k, name, phone, company, title, notes from contact
         where account_id = ? and email is not null and lower(btrim(email)) in (select jsonb_array_elements_text(?::jsonb))`,
        [account.id, json(emailKeys)],
      )) {
        contacts.set(c.k, c);
      }
    }
    if (nameKeys.length) {
      for (const c of await exec<ExistingContact>(
        `/* csv:preview-named */ select distinct on (x.k) c.id, x.k, c.name, c.phone, c.company, c.title, c.notes
         from jsonb_to_recordset(?::jsonb) as x(k text, n text, c text)
         join contact c on c.account_id = ? and c.email is null and lower(btrim(c.name)) = x.n
           and lower(btrim(coalesce(c.company, ''))) = x.c
         order by x.k, c.created_at, c.id`,
        [json(nameKeys), account.id],
      )) {
        contacts.set(c.k, c);
      }
    }
    const setByName = new Map(sets.map((s) => [s.name.toLowerCase(), s]));
    const setNames = sets.map((s) => s.name).join(', ');
    const defaultSet = (role: Role) => setByName.get(role === 'client' ? 'client' : 'member')?.id ?? null;

    return rows.map((r): StoredRow => {
      const base = { line: r.line, cells: r.cells, key: r.key ?? null, target_id: null, data: {} };
      const fail = (error: string, kind: 'user' | 'contact' | null = r.row?.kind ?? null): StoredRow => ({
        ...base,
        kind,
        outcome: 'error',
        error,
      });
      if (!r.row) return fail(r.error ?? 'could not be read', null);
      const key = r.key as string;

      if (r.row.kind === 'user') {
        const row = r.row;
        const set = row.permissionSet ? setByName.get(row.permissionSet.toLowerCase()) : undefined;
        if (row.permissionSet && !set) {
          return fail(`permission set "${row.permissionSet}" does not exist; the sets are ${setNames}`);
        }
        const existing = users.get(key);
        const { kind: _k, permissionSet: _p, ...values } = row;
        if (!existing) {
          const role = row.role ?? 'employee';
          const data: UserData = {
            ...values,
            role,
            permissionSetId: set?.id ?? defaultSet(role),
            seatNeeded: row.sendInvitation && isPaidRole(role),
          };
          return { ...base, kind: 'user', data, outcome: 'create', error: null };
        }
        if (row.role && row.role !== existing.role) {
          return fail(
            `${existing.role === 'employee' ? 'is already an' : 'is already a'} ${existing.role} in Roster; the import does not change roles (change it in Roster)`,
          );
        }
        if (set && set.id !== existing.permission_set_id) {
          const current = sets.find((s) => s.id === existing.permission_set_id)?.name ?? 'no permission set';
          return fail(
            `already has ${current === 'no permission set' ? current : `the permission set ${current}`} in Roster; the import does not change permission sets`,
          );
        }
        if (row.sendInvitation && existing.status === 'deactivated') {
          return fail('is deactivated in Roster; reactivate them there before inviting them');
        }
        const invite = row.sendInvitation && ['locked', 'not_invited'].includes(existing.status);
        const changed =
          differs(row.firstName, existing.first_name) ||
          differs(row.lastName, existing.last_name) ||
          differs(row.title, existing.title) ||
          differs(row.phone, existing.phone);
        const data: UserData & { invite: boolean } = {
          ...values,
          role: existing.role,
          permissionSetId: existing.permission_set_id,
          seatNeeded: invite && existing.status === 'locked' && isPaidRole(existing.role),
          invite,
        };
        return {
          ...base,
          kind: 'user',
          target_id: existing.id,
          data,
          outcome: changed || invite ? 'update' : 'unchanged',
          error: null,
        };
      }

      const row = r.row;
      const existing = contacts.get(key);
      const { kind: _k, ...data } = row;
      if (!existing) {
        if (row.email && users.has(key)) {
          return fail(
            `${row.email} is already a user in Roster (contacts are people without a login); make the row a user to update them`,
          );
        }
        return { ...base, kind: 'contact', data, outcome: 'create', error: null };
      }
      const changed =
        row.name !== existing.name ||
        differs(row.phone, existing.phone) ||
        differs(row.company, existing.company) ||
        differs(row.title, existing.title) ||
        differs(row.notes, existing.notes);
      return {
        ...base,
        kind: 'contact',
        target_id: existing.id,
        data,
        outcome: changed ? 'update' : 'unchanged',
        error: null,
      };
    });
  }

  /** The preview of a previewed import, rebuilt from what was stored. */
  async summary(em: EntityManager, importId: string): Promise<PreviewSummary> {
    const csvImport = await em.findOneOrFail(CsvImport, importId, { populate: ['account'], refresh: true });
    return {
      csvImport,
      counts: csvImport.counts as PreviewCounts,
      seats: await this.seats.usage(em, csvImport.account.getEntity()),
      warnings: csvImport.warnings,
      firstErrors: await this.firstErrors(em, importId),
    };
  }

  private firstErrors(em: EntityManager, importId: string): Promise<RowError[]> {
    return sql(em)<RowError>(
      `select line, error as reason from csv_import_row
       where csv_import_id = ? and (outcome = 'error' or result = 'error') order by line limit ?`,
      [importId, FIRST_ERRORS],
    );
  }

  /**
   * The error file: the header and every row in error as they were in the file, with `line` and `reason`
   * columns added; every cell defused against formulas. Null when no row is in error.
   */
  async errorFile(importId: string): Promise<Buffer | null> {
    const em = this.orm.em.fork();
    const csvImport = await em.findOneOrFail(CsvImport, importId);
    const exec = sql(em);
    const parts: string[] = [];
    let after = 0;
    for (;;) {
      const page = await exec<{ line: number; cells: string[]; error: string | null }>(
        `select line, cells, error from csv_import_row
         where csv_import_id = ? and (outcome = 'error' or result = 'error') and line > ? order by line limit 5000`,
        [importId, after],
      );
      if (!page.length) break;
      if (!parts.length) parts.push(BOM + csvLine([...csvImport.columns, 'line', 'reason']));
      for (const r of page) {
        const cells = csvImport.columns.map((_, i) => r.cells[i] ?? '');
        // Cells beyond the header (a ragged row) are kept, so nothing of the row is lost.
        cells.push(...r.cells.slice(csvImport.columns.length));
        parts.push(csvLine([...cells.slice(0, csvImport.columns.length), String(r.line), r.error ?? '']));
      }
      after = page.at(-1)!.line;
    }
    return parts.length ? Buffer.from(parts.join(''), 'utf8') : null;
  }

  /**
   * Starts the import of a previewed file, once: the status moves from previewed to importing in one
   * statement, so a double click or a retried request finds it already moving. The run is queued with it.
   */
  async start(em: EntityManager, account: IAccount, importId: string, actor: Actor): Promise<StartResult> {
    if (!actor.isAdmin) throw new DomainError('not_admin', 'Only admins can import people from a CSV file.');
    return em.transactional(async (tx) => {
      const [moved] = await sql(tx)<{ id: string }>(
        `update csv_import set status = 'importing', imported_by = ?, started_at = now(), updated_at = now()
         where id = ? and account_id = ? and status = 'previewed' returning id`,
        [actor.slackUserId, importId, account.id],
      );
      const csvImport = await tx.findOne(CsvImport, { id: importId, account }, { refresh: true });
      if (!csvImport) throw new DomainError('not_found', 'That import no longer exists.');
      if (!moved) return { status: 'unchanged', csvImport };
      audit(tx, {
        account,
        actor: actor.slackUserId,
        action: 'csv_import.started',
        subjectType: 'csv_import',
        subjectId: importId,
        surface: actor.surface,
        data: { fileName: csvImport.fileName },
      });
      await tx.flush();
      await this.jobs.send(CSV_JOBS.run, { importId }, { em: tx });
      return { status: 'started', csvImport };
    });
  }

  /** Cancels a previewed import; nothing of it was written. */
  async cancel(em: EntityManager, account: IAccount, importId: string, actor: Actor): Promise<StartResult> {
    if (!actor.isAdmin) throw new DomainError('not_admin', 'Only admins can cancel an import.');
    return em.transactional(async (tx) => {
      const [moved] = await sql(tx)<{ id: string }>(
        `update csv_import set status = 'cancelled', finished_at = now(), updated_at = now()
         where id = ? and account_id = ? and status = 'previewed' returning id`,
        [importId, account.id],
      );
      const csvImport = await tx.findOne(CsvImport, { id: importId, account }, { refresh: true });
      if (!csvImport) throw new DomainError('not_found', 'That import no longer exists.');
      if (!moved) return { status: 'unchanged', csvImport };
      audit(tx, {
        account,
        actor: actor.slackUserId,
        action: 'csv_import.cancelled',
        subjectType: 'csv_import',
        subjectId: importId,
        surface: actor.surface,
        data: { fileName: csvImport.fileName },
      });
      return { status: 'started', csvImport };
    });
  }

  /**
   * Closes a previewed import in which no row would change anything (every row unchanged or in error):
   * there is nothing to click Import for, so it is recorded as completed with its counts.
   */
  async completeUnchanged(importId: string): Promise<boolean> {
    return this.orm.em.fork().transactional(async (tx) => {
      const [moved] = await sql(tx)<{
        account_id: string;
        uploaded_by: string;
        file_name: string;
        counts: PreviewCounts;
      }>(
        `update csv_import set status = 'completed', finished_at = now(), updated_at = now(),
           counts = counts || jsonb_build_object('created', 0, 'updated', 0, 'kept', counts->'unchanged',
             'failed', counts->'error', 'noSeat', 0, 'invited', 0)
         where id = ? and status = 'previewed' and (counts->>'create')::int + (counts->>'update')::int = 0
         returning account_id, uploaded_by, file_name, counts`,
        [importId],
      );
      if (!moved) return false;
      audit(tx, {
        account: tx.getReference(Account, moved.account_id),
        actor: moved.uploaded_by,
        action: 'csv_import.completed',
        subjectType: 'csv_import',
        subjectId: importId,
        surface: 'slack',
        data: { fileName: moved.file_name, nothingToChange: true, ...moved.counts },
      });
      return true;
    });
  }

  /** Imports stuck in `importing` (their process died): the job queue runs them again at startup. */
  async unfinished(): Promise<string[]> {
    const rows = await sql(this.orm.em.fork())<{ id: string }>(
      `select id from csv_import where status = 'importing' order by started_at`,
    );
    return rows.map((r) => r.id);
  }

  /** Rows to apply and rows applied, for the progress bar. */
  async progress(importId: string): Promise<{ done: number; total: number }> {
    const [row] = await sql(this.orm.em.fork())<{ done: number; total: number }>(
      `select count(*) filter (where applied_at is not null)::int as done, count(*)::int as total
       from csv_import_row where csv_import_id = ? and outcome <> 'error'`,
      [importId],
    );
    return row ?? { done: 0, total: 0 };
  }

  /**
   * Applies an import's rows in batches, each in its own transaction with its rows marked applied.
   * Returns the summary once every row is applied, or null when the import is not (or no longer) running,
   * or when `hooks.maxBatches` stopped it early.
   */
  async run(importId: string, hooks: RunHooks = {}): Promise<ImportSummary | null> {
    const em = this.orm.em.fork();
    const csvImport = await em.findOne(CsvImport, importId);
    if (csvImport?.status !== 'importing') return null;
    const accountId = csvImport.account.id;
    const actor: Actor = { slackUserId: csvImport.importedBy ?? 'roster', isAdmin: true, surface: 'slack' };
    let { done, total } = await this.progress(importId);
    hooks.onProgress?.(done, total);
    // Batches go forward through the rows by id, so each one starts where the last stopped.
    let after = '0';
    for (let batch = 0; ; batch++) {
      if (hooks.maxBatches !== undefined && batch >= hooks.maxBatches) return null;
      const applied = await this.orm.em
        .fork()
        .transactional((tx) => this.applyBatch(tx, csvImport, accountId, actor, after, batch, hooks));
      if (!applied) {
        // Rows another worker holds are still unapplied: wait for them rather than finish early.
        ({ done, total } = await this.progress(importId));
        if (done < total) {
          after = '0';
          await new Promise((r) => setTimeout(r, 250));
          continue;
        }
        break;
      }
      after = applied.last;
      done += applied.count;
      hooks.onProgress?.(Math.min(done, total), total);
    }
    return this.finish(importId, actor);
  }

  private async applyBatch(
    tx: EntityManager,
    csvImport: ICsvImport,
    accountId: string,
    actor: Actor,
    after: string,
    batch: number,
    hooks: RunHooks,
  ): Promise<{ count: number; last: string } | null> {
    const exec = sql(tx);
    const rows = await exec<BatchRow>(
      `/* csv:batch */ select id, line, kind, data from csv_import_row
       where csv_import_id = ? and id > ? and applied_at is null and outcome <> 'error'
       order by id limit ? for update skip locked`,
      [csvImport.id, after, this.batchSize],
    );
    if (!rows.length) return null;
    const account = await tx.findOneOrFail(Account, accountId);
    const results = new Map<string, Applied>();
    const ctx = { tx, account, actor, importId: csvImport.id };

    for (const r of rows) {
      if (r.kind === 'user' && r.data.sendInvitation) results.set(r.id, await this.applyInvitedUser(ctx, r));
    }
    await tx.flush();
    const users = rows.filter((r) => r.kind === 'user' && !r.data.sendInvitation);
    const withEmail = rows.filter((r) => r.kind === 'contact' && r.data.email);
    const withoutEmail = rows.filter((r) => r.kind === 'contact' && !r.data.email);
    if (users.length) for (const [id, a] of await this.applyUsers(ctx, users)) results.set(id, a);
    if (withEmail.length) for (const [id, a] of await this.applyContacts(ctx, withEmail)) results.set(id, a);
    if (withoutEmail.length) {
      for (const [id, a] of await this.applyNamedContacts(ctx, withoutEmail)) results.set(id, a);
    }

    await exec(
      `/* csv:mark */ update csv_import_row r set applied_at = now(), result = x.result, error = coalesce(x.error, r.error),
         data = case when x.invited then r.data || '{"invited": true}'::jsonb else r.data end
       from jsonb_to_recordset(?::jsonb) as x(id bigint, result text, error text, invited boolean)
       where r.id = x.id`,
      [
        json(
          rows.map((r) => {
            const a = results.get(String(r.id)) ?? { result: 'unchanged' };
            return { id: r.id, result: a.result, error: a.error ?? null, invited: Boolean(a.invited) };
          }),
        ),
      ],
    );
    await hooks.beforeCommit?.(batch);
    return { count: rows.length, last: String(rows.at(-1)?.id) };
  }

  /**
   * A user row that asks for an invitation goes through the seat rules one by one: a new user or a locked
   * one takes a paid seat (the admin who clicked Import is the actor, so no request is filed); with no
   * seat free the row ends in error and nothing of it is written.
   */
  private async applyInvitedUser(
    ctx: { tx: EntityManager; account: IAccount; actor: Actor; importId: string },
    r: BatchRow,
  ): Promise<Applied> {
    const { tx, account, actor } = ctx;
    const d = r.data as UserData;
    const permissionSet = d.permissionSetId
      ? await tx.findOne(PermissionSet, { id: d.permissionSetId, account })
      : null;
    // By the (account, lower(btrim(email))) index: a case-insensitive LIKE would read every user.
    const [found] = await sql(tx)<{ id: string }>(
      'select id from app_user where account_id = ? and lower(btrim(email)) = ?',
      [account.id, d.email.trim().toLowerCase()],
    );
    const existing = found ? await tx.findOneOrFail(User, found.id) : null;
    const log = (user: IUser, action: string) =>
      audit(tx, {
        account,
        actor: actor.slackUserId,
        action,
        subjectType: 'user',
        subjectId: user.id,
        surface: actor.surface,
        data: { email: user.email, status: user.status, importId: ctx.importId },
      });
    const invite = async (user: IUser) =>
      queueInvitation(tx, this.jobs, { account, user, invitedBy: actor.slackUserId, surface: actor.surface });
    try {
      if (!existing) {
        const role = d.role ?? 'employee';
        await this.seats.admit(
          tx,
          account,
          actor,
          {
            kind: 'import',
            email: d.email,
            name: [d.firstName, d.lastName].filter(Boolean).join(' ') || null,
            role,
            permissionSet,
            requestedBy: actor.slackUserId,
            payload: { importId: ctx.importId },
          },
          async () => {
            const user = await createUser(tx, account, {
              email: d.email,
              role,
              status: 'not_invited',
              permissionSet,
              addedBy: actor.slackUserId,
              firstName: d.firstName,
              lastName: d.lastName,
              title: d.title,
              phone: d.phone,
            });
            await invite(user);
            log(user, 'user.imported');
            return user;
          },
        );
        return { result: 'created', invited: true };
      }
      const profile = {
        firstName: d.firstName ?? existing.firstName,
        lastName: d.lastName ?? existing.lastName,
        title: d.title ?? existing.title,
        phone: d.phone ?? existing.phone,
      };
      const changed = (Object.keys(profile) as (keyof typeof profile)[]).some(
        (k) => profile[k] !== existing[k],
      );
      let invited = false;
      if (existing.status === 'locked') {
        await this.seats.admit(
          tx,
          account,
          actor,
          {
            kind: 'import',
            email: existing.email,
            name: displayName(existing),
            role: existing.role,
            user: existing,
            requestedBy: actor.slackUserId,
            payload: { importId: ctx.importId },
          },
          async () => {
            existing.status = 'not_invited';
            await invite(existing);
          },
        );
        invited = true;
      } else if (existing.status === 'not_invited') {
        await invite(existing);
        invited = true;
      }
      Object.assign(existing, profile);
      if (changed || invited) log(existing, 'user.updated');
      return { result: changed || invited ? 'updated' : 'unchanged', invited };
    } catch (err) {
      if (isDomainError(err) && err.code === 'no_seat') {
        const usage = await this.seats.usage(tx, account);
        return {
          result: 'error',
          error: `no paid seat free (${usage.used} of ${usage.limit} used), so ${d.email} was not imported; raise the limit with /seats and import the error file`,
        };
      }
      throw err;
    }
  }

  /** Users without an invitation, set-based: created locked (no login, no seat), or their details updated. */
  private async applyUsers(
    ctx: { tx: EntityManager; account: IAccount; actor: Actor; importId: string },
    rows: BatchRow[],
  ): Promise<Map<string, Applied>> {
    const exec = sql(ctx.tx);
    const toInput = (list: BatchRow[]) =>
      json(
        list.map((r) => ({
          id: r.id,
          email: r.data.email,
          first_name: r.data.firstName,
          last_name: r.data.lastName,
          title: r.data.title,
          phone: r.data.phone,
          role: r.data.role,
          permission_set_id: r.data.permissionSetId,
        })),
      );
    const input = toInput(rows);
    const x = `jsonb_to_recordset(?::jsonb) as x(id bigint, email text, first_name text, last_name text,
      title text, phone text, role text, permission_set_id uuid)`;
    const a = ctx.account.id;
    const who = ctx.actor.slackUserId;
    const created = await exec<{ id: string }>(
      `/* csv:users-insert */ with x as (select * from ${x}),
       ins as (
         insert into app_user (id, account_id, email, first_name, last_name, title, phone, role, status,
           permission_set_id, added_by)
         select gen_random_uuid(), ?::uuid, x.email, x.first_name, x.last_name, x.title, x.phone,
           coalesce(x.role, 'employee'), 'locked',
           (select ps.id from permission_set ps where ps.id = x.permission_set_id and ps.account_id = ?::uuid), ?::text
         from x
         on conflict (account_id, lower(btrim(email))) do nothing
         returning id, email
       ),
       linked as (
         update contact c set user_id = ins.id, updated_at = now() from ins
         where c.account_id = ? and c.user_id is null and c.email is not null
           and lower(btrim(c.email)) = lower(btrim(ins.email))
       ),
       logged as (
         insert into audit_event (account_id, actor, action, subject_type, subject_id, surface, data)
         select ?::uuid, ?::text, 'user.imported', 'user', ins.id::text, 'slack',
           jsonb_build_object('email', ins.email, 'status', 'locked', 'importId', ?::text)
         from ins
       )
       select x.id from x join ins on lower(btrim(ins.email)) = lower(btrim(x.email))`,
      [input, a, a, who, a, a, who, ctx.importId],
    );
    // Rows just created hold what the file says; only the others can need an update.
    const fresh = new Set(created.map((c) => String(c.id)));
    const others = rows.filter((r) => !fresh.has(String(r.id)));
    if (!others.length) return this.outcomes(rows, created, []);
    const updated = await exec<{ id: string }>(
      `/* csv:users-update */ with x as (select * from ${x}),
       upd as (
         update app_user u set first_name = coalesce(x.first_name, u.first_name),
           last_name = coalesce(x.last_name, u.last_name), title = coalesce(x.title, u.title),
           phone = coalesce(x.phone, u.phone), updated_at = now()
         from x
         where u.account_id = ? and lower(btrim(u.email)) = lower(btrim(x.email))
           and ((x.first_name is not null and x.first_name is distinct from u.first_name)
             or (x.last_name is not null and x.last_name is distinct from u.last_name)
             or (x.title is not null and x.title is distinct from u.title)
             or (x.phone is not null and x.phone is distinct from u.phone))
         returning x.id, u.id as user_id, u.email
       ),
       logged as (
         insert into audit_event (account_id, actor, action, subject_type, subject_id, surface, data)
         select ?::uuid, ?::text, 'user.updated', 'user', upd.user_id::text, 'slack',
           jsonb_build_object('email', upd.email, 'importId', ?::text)
         from upd
       )
       select id from upd`,
      [toInput(others), a, a, who, ctx.importId],
    );
    return this.outcomes(rows, created, updated);
  }

  /** Contacts with an email, set-based: created, or updated by email. */
  private async applyContacts(
    ctx: { tx: EntityManager; account: IAccount; actor: Actor; importId: string },
    rows: BatchRow[],
  ): Promise<Map<string, Applied>> {
    const a = ctx.account.id;
    const who = ctx.actor.slackUserId;
    const changed = await sql(ctx.tx)<{ id: string; inserted: boolean }>(
      `/* csv:contacts */ with x as (select * from jsonb_to_recordset(?::jsonb) as x(id bigint, name text, email text, phone text,
         company text, title text, notes text)),
       up as (
         insert into contact as c (id, account_id, name, email, phone, company, title, notes, added_by)
         select gen_random_uuid(), ?::uuid, x.name, x.email, x.phone, x.company, x.title, x.notes, ?::text from x
         on conflict (account_id, lower(btrim(email))) where email is not null do update set
           name = excluded.name, phone = coalesce(excluded.phone, c.phone),
           company = coalesce(excluded.company, c.company), title = coalesce(excluded.title, c.title),
           notes = coalesce(excluded.notes, c.notes), updated_at = now()
         where excluded.name is distinct from c.name
           or (excluded.phone is not null and excluded.phone is distinct from c.phone)
           or (excluded.company is not null and excluded.company is distinct from c.company)
           or (excluded.title is not null and excluded.title is distinct from c.title)
           or (excluded.notes is not null and excluded.notes is distinct from c.notes)
         returning c.id, c.email, (xmax = 0) as inserted
       ),
       logged as (
         insert into audit_event (account_id, actor, action, subject_type, subject_id, surface, data)
         select ?::uuid, ?::text, case when up.inserted then 'contact.imported' else 'contact.updated' end, 'contact',
           up.id::text, 'slack', jsonb_build_object('email', up.email, 'importId', ?::text)
         from up
       )
       select x.id, up.inserted from x join up on lower(btrim(up.email)) = lower(btrim(x.email))`,
      [json(rows.map((r) => ({ id: r.id, ...r.data }))), a, who, a, who, ctx.importId],
    );
    return this.outcomes(
      rows,
      changed.filter((c) => c.inserted),
      changed.filter((c) => !c.inserted),
    );
  }

  /** Contacts without an email, set-based: matched on name and company, so a second import finds them. */
  private async applyNamedContacts(
    ctx: { tx: EntityManager; account: IAccount; actor: Actor; importId: string },
    rows: BatchRow[],
  ): Promise<Map<string, Applied>> {
    const a = ctx.account.id;
    const who = ctx.actor.slackUserId;
    const changed = await sql(ctx.tx)<{ id: string; what: 'created' | 'updated' }>(
      `/* csv:named-contacts */ with x as (select * from jsonb_to_recordset(?::jsonb) as x(id bigint, name text, phone text,
         company text, title text, notes text)),
       m as (
         select distinct on (x.id) x.*, c.id as cid from x
         join contact c on c.account_id = ? and c.email is null
           and lower(btrim(c.name)) = lower(btrim(x.name))
           and lower(btrim(coalesce(c.company, ''))) = lower(btrim(coalesce(x.company, '')))
         order by x.id, c.created_at, c.id
       ),
       upd as (
         update contact c set name = m.name, company = coalesce(m.company, c.company),
           phone = coalesce(m.phone, c.phone), title = coalesce(m.title, c.title),
           notes = coalesce(m.notes, c.notes), updated_at = now()
         from m
         where c.id = m.cid and (m.name is distinct from c.name
           or (m.company is not null and m.company is distinct from c.company)
           or (m.phone is not null and m.phone is distinct from c.phone)
           or (m.title is not null and m.title is distinct from c.title)
           or (m.notes is not null and m.notes is distinct from c.notes))
         returning m.id, c.id as contact_id
       ),
       ins as (
         insert into contact (id, account_id, name, email, phone, company, title, notes, added_by)
         select gen_random_uuid(), ?::uuid, x.name, null, x.phone, x.company, x.title, x.notes, ?::text from x
         where not exists (select 1 from m where m.id = x.id)
         returning id
       ),
       logged as (
         insert into audit_event (account_id, actor, action, subject_type, subject_id, surface, data)
         select ?::uuid, ?::text, 'contact.imported', 'contact', ins.id::text, 'slack', jsonb_build_object('importId', ?::text)
         from ins
         union all
         select ?::uuid, ?::text, 'contact.updated', 'contact', upd.contact_id::text, 'slack', jsonb_build_object('importId', ?::text)
         from upd
       )
       select id, 'updated' as what from upd
       union all
       select x.id, 'created' from x where not exists (select 1 from m where m.id = x.id)`,
      [
        json(rows.map((r) => ({ id: r.id, ...r.data }))),
        a,
        a,
        who,
        a,
        who,
        ctx.importId,
        a,
        who,
        ctx.importId,
      ],
    );
    return this.outcomes(
      rows,
      changed.filter((c) => c.what === 'created'),
      changed.filter((c) => c.what === 'updated'),
    );
  }

  private outcomes(rows: BatchRow[], created: { id: string }[], updated: { id: string }[]) {
    const out = new Map<string, Applied>(rows.map((r) => [String(r.id), { result: 'unchanged' }]));
    for (const c of created) out.set(String(c.id), { result: 'created' });
    for (const u of updated) out.set(String(u.id), { result: 'updated' });
    return out;
  }

  /** Marks the import completed, once, with its counts and the audit event that records them. */
  private async finish(importId: string, actor: Actor): Promise<ImportSummary | null> {
    const em = this.orm.em.fork();
    await em.transactional(async (tx) => {
      const exec = sql(tx);
      const [r] = await exec<ResultCounts>(
        `select count(*) filter (where result = 'created')::int as created,
           count(*) filter (where result = 'updated')::int as updated,
           count(*) filter (where result = 'unchanged')::int as kept,
           count(*) filter (where result = 'error' or outcome = 'error')::int as failed,
           count(*) filter (where result = 'error' and error like 'no paid seat free%')::int as "noSeat",
           count(*) filter (where (data->>'invited')::boolean)::int as invited
         from csv_import_row where csv_import_id = ?`,
        [importId],
      );
      const [moved] = await exec<{
        id: string;
        account_id: string;
        file_name: string;
        counts: PreviewCounts;
      }>(
        `update csv_import set status = 'completed', counts = counts || ?::jsonb, finished_at = now(), updated_at = now()
         where id = ? and status = 'importing' returning id, account_id, file_name, counts`,
        [json(r), importId],
      );
      if (!moved) return;
      audit(tx, {
        account: tx.getReference(Account, moved.account_id),
        actor: actor.slackUserId,
        action: 'csv_import.completed',
        subjectType: 'csv_import',
        subjectId: importId,
        surface: actor.surface,
        data: { fileName: moved.file_name, ...moved.counts },
      });
    });
    const csvImport = await em.findOneOrFail(CsvImport, importId, { refresh: true });
    if (csvImport.status !== 'completed') return null;
    return {
      csvImport,
      counts: csvImport.counts as PreviewCounts & ResultCounts,
      firstErrors: await this.firstErrors(em, importId),
    };
  }
}
