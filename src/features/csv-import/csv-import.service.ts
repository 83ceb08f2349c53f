import type { EntityManager, MikroORM } from '@mikro-orm/postgresql';
import { type Statements, statements } from '../../db/sql.ts';
import { DomainError, isDomainError } from '../../shared/errors.ts';
import type { JobQueue } from '../../shared/jobs.ts';
import { Account, type IAccount } from '../accounts/account.entity.ts';
import { audit } from '../audit/audit.service.ts';
import type { Actor, SeatService } from '../seats/seat.service.ts';
import { CsvImport, type ICsvImport } from './csv-import.entity.ts';
import { type CsvSource, MAX_ROWS } from './csv-reader.ts';
import { errorFile, writeErrorFileTo } from './import-error-file.ts';
import { firstErrors, previewFile, recheckStaged } from './import-preview.ts';
import { failLost, importProgress, runImport, stagedRowsMissing } from './import-run.ts';
import {
  CSV_JOBS,
  type ImportSummary,
  type PreviewCounts,
  type PreviewSummary,
  type RecheckJob,
  type RecheckResult,
  type RunHooks,
  type StartResult,
} from './import-types.ts';

export {
  CSV_JOBS,
  type ImportSummary,
  type PreviewCounts,
  type PreviewSummary,
  type RecheckJob,
  type RecheckResult,
  type ResultCounts,
  type RowError,
  type RunHooks,
  type StartResult,
} from './import-types.ts';

/**
 * CSV imports, from upload to summary: the lifecycle of an import. It records an upload, previews it
 * (import-preview.ts stages and decides the rows in Postgres), starts or cancels it, and runs it
 * (import-run.ts applies it in batches, each in its own transaction with its rows marked applied, so a
 * run that stops anywhere can be run again and finishes with no duplicate and no lost row).
 */
/**
 * Rows applied in one batch (one transaction) unless the service is given another size: larger batches
 * mean fewer round trips and commits. A batch holds no row values in Node, so its size does not weigh on
 * memory; the rows asking for an invitation are capped separately (INVITED_PER_BATCH).
 */
export const BATCH_SIZE = 5000;

/** The advisory lock namespace under which an account's imports are started or checked again ("CSVS"). */
const START_LOCK = 0x43535653;

/**
 * Which rows of an import are in error, as a digest of their line numbers in order: two digests differ
 * when the sets of lines differ, whether or not they are as many. Computed in Postgres, however many.
 */
async function linesInError(exec: Statements, importId: string): Promise<string> {
  const [row] = await exec<{ lines: string }>(
    `select count(*) || ':' || md5(coalesce(string_agg(line::text, ',' order by line), '')) as lines
     from csv_import_row where csv_import_id = $1 and outcome = 'error'`,
    [importId],
  );
  return row?.lines ?? '';
}

/**
 * The other imports of the account that may have changed people since a preview compared its rows with
 * them (`previewedAt`): any applied after it, or still being applied (`running`).
 */
async function importsSince(
  exec: Statements,
  accountId: string,
  importId: string,
  previewedAt: Date | null | undefined,
): Promise<{ after: string[]; running: boolean }> {
  const since = await exec<{ file_name: string; running: boolean }>(
    `select file_name, status = 'importing' as running from csv_import
     where account_id = $1 and id <> $2 and started_at is not null
       and coalesce(finished_at, 'infinity') >= coalesce($3::timestamptz, '-infinity')
     order by started_at`,
    [accountId, importId, previewedAt ?? null],
  );
  return { after: since.map((s) => s.file_name), running: since.some((s) => s.running) };
}

/** More people changed since a preview than are worth matching with its rows: it is checked again. */
const CHANGED_TO_MATCH = 10_000;

/**
 * Whether a person or contact the preview's rows depend on was written since it compared them, by any
 * path (a card edited by hand, a join link, an invitation, SCIM, a converted contact, another import): a
 * row whose `change_xid` (set by the database on every insert and update) is a transaction the preview's
 * snapshot could not see, and that a staged row is matched with as the preview matches them (its email,
 * a contact's name and company, the user or contact it matched, a user's linked contact details). People
 * the file does not name change all the time in a large account, and do not make it stale. The changes
 * are a range of each table's (account_id, change_xid, id) index, taken with no lock; the staged rows are
 * read only when there are some. A preview without a snapshot (made before Roster kept one) counts as
 * changed.
 */
async function changedSince(exec: Statements, importId: string): Promise<boolean> {
  const [preview] = await exec<{ account_id: string; snapshot: string | null }>(
    'select account_id, previewed_snapshot::text as snapshot from csv_import where id = $1',
    [importId],
  );
  if (!preview?.snapshot) return true;
  const changed = await exec<{
    id: string;
    key: string | null;
    named: string | null;
    user_id: string | null;
  }>(
    `/* csv:changed-since */ select u.id, lower(btrim(u.email)) as key, null as named, null as user_id
       from app_user u where u.account_id = $1 and u.change_xid >= pg_snapshot_xmin($2::pg_snapshot)
         and not pg_visible_in_snapshot(u.change_xid, $2::pg_snapshot)
     union all
     select c.id, coalesce(lower(btrim(c.email)), (select lower(btrim(o.email)) from app_user o where o.id = c.user_id)),
       case when c.email is null then 'name:' || lower(btrim(c.name)) || '|' || lower(btrim(coalesce(c.company, ''))) end,
       c.user_id
       from contact c where c.account_id = $1 and c.change_xid >= pg_snapshot_xmin($2::pg_snapshot)
         and not pg_visible_in_snapshot(c.change_xid, $2::pg_snapshot)
     limit $3`,
    [preview.account_id, preview.snapshot, CHANGED_TO_MATCH + 1],
  );
  if (!changed.length) return false;
  if (changed.length > CHANGED_TO_MATCH) return true;
  const ids = changed.flatMap((c) => (c.user_id ? [c.id, c.user_id] : [c.id]));
  const keys = changed.flatMap((c) => (c.key ? [c.key] : []));
  const named = changed.flatMap((c) => (c.named ? [c.named] : []));
  const [row] = await exec<{ hit: boolean }>(
    `/* csv:changed-rows */ select exists (select 1 from csv_import_row r
       where r.csv_import_id = $1 and r.kind is not null and (
         r.key in (select unnest($2::text[]))
         or r.target_id in (select unnest($3::uuid[]))
         or (r.kind = 'contact' and coalesce(r.data->>'email', '') = ''
           and 'name:' || lower(btrim(r.data->>'name')) || '|' || lower(btrim(coalesce(r.data->>'company', '')))
             in (select unnest($4::text[]))))) as hit`,
    [importId, keys, ids, named],
  );
  return row?.hit ?? true;
}

export class CsvImportService {
  private readonly orm: MikroORM;
  private readonly jobs: JobQueue;
  private readonly seats: SeatService;
  private readonly batchSize: number;
  private readonly maxRows: number;

  constructor(opts: {
    orm: MikroORM;
    jobs: JobQueue;
    seats: SeatService;
    batchSize?: number;
    /** The most rows a file may hold (MAX_ROWS); smaller in tests. */
    maxRows?: number;
  }) {
    this.orm = opts.orm;
    this.jobs = opts.jobs;
    this.seats = opts.seats;
    this.batchSize = opts.batchSize ?? BATCH_SIZE;
    this.maxRows = opts.maxRows ?? MAX_ROWS;
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
    const [inserted] = await statements(em)<{ id: string }>(
      `insert into csv_import (id, account_id, uploaded_by, file_name, file_id, status, channel_id)
       values (gen_random_uuid(), $1, $2, $3, $4, 'reading', $5)
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
    const exec = statements(this.orm.em.fork());
    const moved = await exec(
      `update csv_import set status = 'failed', error = $1, finished_at = now(), updated_at = now()
       where id = $2 and status = 'reading' returning id`,
      [reason, importId],
    );
    if (moved.length) await exec('delete from csv_import_row where csv_import_id = $1', [importId]);
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
   * Reads the file, as a buffer or as the chunks of a download, and decides every row: create, update,
   * unchanged or error. Writes nothing to users or contacts. A file that cannot be read as a whole is
   * rejected with a DomainError (`file_rejected`) saying why, and the import is marked failed.
   */
  async preview(importId: string, source: CsvSource): Promise<PreviewSummary> {
    try {
      return await previewFile({ orm: this.orm, seats: this.seats }, importId, source, this.maxRows);
    } catch (err) {
      if (isDomainError(err)) await this.reject(importId, err.message);
      throw err;
    }
  }

  /** The preview of a previewed import, rebuilt from what was stored. */
  async summary(em: EntityManager, importId: string): Promise<PreviewSummary> {
    const csvImport = await em.findOneOrFail(CsvImport, importId, { populate: ['account'], refresh: true });
    return {
      csvImport,
      counts: csvImport.counts as PreviewCounts,
      seats: await this.seats.usage(em, csvImport.account.getEntity()),
      warnings: csvImport.warnings,
      firstErrors: await firstErrors(statements(em), importId),
    };
  }

  /** The rows in error, as a CSV file to fix and upload again; null when there are none. */
  errorFile(importId: string): Promise<Buffer | null> {
    return errorFile(this.orm, importId);
  }

  /** The same file written to `path`, a page of rows at a time; false when no row is in error. */
  writeErrorFile(importId: string, path: string): Promise<boolean> {
    return writeErrorFileTo(this.orm, importId, path);
  }

  /**
   * Starts the import of a previewed file, once: the status moves from previewed to importing in one
   * statement, so a double click or a retried request finds it already moving. The run is queued with it.
   *
   * A preview made before people or contacts it names changed (by hand, a join link, an invitation, SCIM),
   * or before another import of the account started or completed, is not applied as it stands, since its
   * rows were decided against people as they were: it is to be
   * decided again from its staged rows (`checking`), by a job queued here (see {@link recheck}), for the
   * admin to check and import. Queueing it moves the preview's revision on, so `seenRevision`, the
   * revision of the preview the click was on, tells a click on a preview since checked again or being
   * checked (a double click, Slack's retry): it starts nothing and queues nothing (`outdated`, with
   * `checking` while that check is not done). Starts and
   * rechecks of an account take turns. `message` is where the preview is shown, for the job to redraw it.
   */
  async start(
    em: EntityManager,
    account: IAccount,
    importId: string,
    actor: Actor,
    seenRevision?: number,
    message?: { channel?: string; ts?: string },
  ): Promise<StartResult> {
    if (!actor.isAdmin) throw new DomainError('not_admin', 'Only admins can import people from a CSV file.');
    const outdated = (csvImport: ICsvImport): StartResult | null =>
      csvImport.status === 'previewed' &&
      seenRevision !== undefined &&
      seenRevision !== csvImport.previewRevision
        ? {
            status: 'outdated',
            csvImport,
            checking: csvImport.checkingRevision === csvImport.previewRevision,
          }
        : null;
    // Revisions only move on: a click on an older one is answered at once, not after the check it would
    // wait for (the lock below is held while a preview is checked again, for as long as that takes).
    const before = await em.fork().findOne(CsvImport, { id: importId, account });
    const early = before && outdated(before);
    if (early) return early;
    return em.transactional(async (tx): Promise<StartResult> => {
      const exec = statements(tx);
      await exec('select pg_advisory_xact_lock($1, hashtext($2))', [START_LOCK, account.id]);
      const csvImport = await tx.findOne(CsvImport, { id: importId, account }, { refresh: true });
      if (!csvImport) throw new DomainError('not_found', 'That import no longer exists.');
      if (csvImport.status !== 'previewed') return { status: 'unchanged', csvImport };
      const late = outdated(csvImport);
      if (late) return late;
      const since = await importsSince(exec, account.id, importId, csvImport.previewedAt);
      if (since.after.length || (await changedSince(exec, importId))) {
        const [checking] = await exec<{ preview_revision: number }>(
          `update csv_import set preview_revision = preview_revision + 1,
             checking_revision = preview_revision + 1, updated_at = now()
           where id = $1 returning preview_revision`,
          [importId],
        );
        const revision = checking?.preview_revision ?? csvImport.previewRevision + 1;
        const at = previewMessageOf(csvImport, message);
        await this.jobs.send<RecheckJob>(
          CSV_JOBS.recheck,
          { importId, revision, ...since, channel: at?.channel, ts: at?.ts },
          { em: tx },
        );
        await tx.refresh(csvImport);
        return { status: 'checking', csvImport, ...since };
      }
      const [moved] = await exec<{ id: string }>(
        `update csv_import set status = 'importing', imported_by = $1, started_at = now(), updated_at = now()
         where id = $2 and account_id = $3 and status = 'previewed' returning id`,
        [actor.slackUserId, importId, account.id],
      );
      if (!moved) return { status: 'unchanged', csvImport };
      await tx.refresh(csvImport);
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

  /**
   * Decides a preview again against Roster as it is now, as Import queued it at `revision`: once, since
   * it moves the revision on, and in turn with the account's starts. Null when there is nothing to do
   * (checked already, cancelled, or checked again by a later click). A preview whose staged rows were lost
   * (a crash or failover empties their unlogged table) is not decided again: it fails (`lost`), as a run
   * that finds its rows gone does. Checked again, a preview with nothing left to change is closed as a
   * preview with none is.
   */
  async recheck(importId: string, revision: number): Promise<RecheckResult | null> {
    const result = await this.orm.em.fork().transactional(async (tx): Promise<RecheckResult | null> => {
      const exec = statements(tx);
      const [row] = await exec<{ account_id: string }>('select account_id from csv_import where id = $1', [
        importId,
      ]);
      if (!row) return null;
      await exec('select pg_advisory_xact_lock($1, hashtext($2))', [START_LOCK, row.account_id]);
      const csvImport = await tx.findOne(CsvImport, importId, { refresh: true });
      if (csvImport?.status !== 'previewed' || csvImport.previewRevision !== revision) return null;
      if (await stagedRowsMissing(exec, importId, csvImport.counts.rows ?? 0)) {
        await failLost(exec, importId, 'previewed');
        return { status: 'lost' };
      }
      const since = await importsSince(exec, row.account_id, importId, csvImport.previewedAt);
      const errorsBefore = await linesInError(exec, importId);
      if (!(await recheckStaged(exec, importId, row.account_id))) return null;
      const errorsChanged = (await linesInError(exec, importId)) !== errorsBefore;
      return { status: 'rechecked', ...since, errorsChanged };
    });
    if (result?.status === 'rechecked') await this.completeUnchanged(importId);
    return result;
  }

  /**
   * The check queued at `revision` was given up (it kept failing): the preview stands as it was, with
   * Import to try again, and an older click no longer says it is being checked.
   */
  async checkGivenUp(importId: string, revision: number): Promise<void> {
    await statements(this.orm.em.fork())(
      'update csv_import set checking_revision = null where id = $1 and checking_revision = $2',
      [importId, revision],
    );
  }

  /**
   * Cancels a previewed import, also while Import has it checked again (the check then finds it cancelled
   * and changes nothing); nothing of it was written.
   */
  async cancel(em: EntityManager, account: IAccount, importId: string, actor: Actor): Promise<StartResult> {
    if (!actor.isAdmin) throw new DomainError('not_admin', 'Only admins can cancel an import.');
    return em.transactional(async (tx) => {
      const [moved] = await statements(tx)<{ id: string }>(
        `update csv_import set status = 'cancelled', finished_at = now(), updated_at = now()
         where id = $1 and account_id = $2 and status = 'previewed' returning id`,
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
   * there is nothing to click Import for, so it is recorded as completed with its counts. The audit says
   * which: `csv_import.completed` with nothingToChange when every row is unchanged, `csv_import.not_imported`
   * when rows are in error (nothing of them could be imported; the error file lists them).
   */
  async completeUnchanged(importId: string): Promise<boolean> {
    return this.orm.em.fork().transactional(async (tx) => {
      const [moved] = await statements(tx)<{
        account_id: string;
        uploaded_by: string;
        file_name: string;
        counts: PreviewCounts;
      }>(
        `update csv_import set status = 'completed', finished_at = now(), updated_at = now(),
           counts = counts || jsonb_build_object('created', 0, 'updated', 0, 'kept', counts->'unchanged',
             'failed', counts->'error', 'failedInRun', 0, 'noSeat', 0, 'invited', 0)
         where id = $1 and status = 'previewed' and (counts->>'create')::int + (counts->>'update')::int = 0
         returning account_id, uploaded_by, file_name, counts`,
        [importId],
      );
      if (!moved) return false;
      const inError = moved.counts.error > 0;
      audit(tx, {
        account: tx.getReference(Account, moved.account_id),
        actor: moved.uploaded_by,
        action: inError ? 'csv_import.not_imported' : 'csv_import.completed',
        subjectType: 'csv_import',
        subjectId: importId,
        surface: 'slack',
        data: {
          fileName: moved.file_name,
          ...(inError
            ? {
                reason: moved.counts.unchanged ? 'rows in error, the others unchanged' : 'every row in error',
              }
            : { nothingToChange: true }),
          ...moved.counts,
        },
      });
      return true;
    });
  }

  /** Imports stuck in `importing` (their process died): the job queue runs them again at startup. */
  async unfinished(): Promise<string[]> {
    const rows = await statements(this.orm.em.fork())<{ id: string }>(
      `select id from csv_import where status = 'importing' order by started_at`,
    );
    return rows.map((r) => r.id);
  }
  /** Rows to apply and rows applied, for the progress bar. */
  progress(importId: string): Promise<{ done: number; total: number }> {
    return importProgress(this.orm, importId);
  }

  /**
   * Applies an import's rows in batches, each in its own transaction with its rows marked applied.
   * Returns the summary once every row is applied, or null when the import is not (or no longer) running,
   * or when `hooks.maxBatches` stopped it early.
   */
  run(importId: string, hooks: RunHooks = {}): Promise<ImportSummary | null> {
    return runImport(
      { orm: this.orm, jobs: this.jobs, seats: this.seats, batchSize: this.batchSize },
      importId,
      hooks,
    );
  }
}

/**
 * Where an import's preview is: the message Roster stored for it. A click's own channel and timestamp only
 * stand in for a timestamp Roster did not get to store, and only in the preview's channel: a payload
 * naming another message (forged, or another import's) never has that message redrawn with this preview.
 */
export function previewMessageOf(
  csvImport: Pick<ICsvImport, 'channelId' | 'messageTs'>,
  clicked?: { channel?: string; ts?: string },
): { channel: string; ts: string } | null {
  if (csvImport.channelId && csvImport.messageTs)
    return { channel: csvImport.channelId, ts: csvImport.messageTs };
  if (csvImport.channelId && clicked?.ts && clicked.channel === csvImport.channelId) {
    return { channel: csvImport.channelId, ts: clicked.ts };
  }
  return null;
}
