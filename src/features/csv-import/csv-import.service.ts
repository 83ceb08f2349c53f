import type { EntityManager, MikroORM } from '@mikro-orm/postgresql';
import { DomainError, isDomainError } from '../../shared/errors.ts';
import type { JobQueue } from '../../shared/jobs.ts';
import { Account, type IAccount } from '../accounts/account.entity.ts';
import { audit } from '../audit/audit.service.ts';
import type { Actor, SeatService } from '../seats/seat.service.ts';
import { CsvImport, type ICsvImport } from './csv-import.entity.ts';
import { type CsvSource, MAX_ROWS } from './csv-reader.ts';
import { applyRows } from './import-apply.ts';
import { errorFile } from './import-error-file.ts';
import { firstErrors, previewFile } from './import-preview.ts';
import { json, sql } from './import-sql.ts';
import {
  type Applied,
  type BatchRow,
  CSV_JOBS,
  type ImportSummary,
  type PreviewCounts,
  type PreviewSummary,
  type ResultCounts,
  type RunHooks,
  type StartResult,
} from './import-types.ts';

export {
  CSV_JOBS,
  type ImportSummary,
  type PreviewCounts,
  type PreviewSummary,
  type ResultCounts,
  type RowError,
  type RunHooks,
  type StartResult,
} from './import-types.ts';

/**
 * CSV imports, from upload to summary: records an upload, previews it (import-preview.ts stages and
 * decides the rows in Postgres), starts or cancels it, and applies it in batches (import-apply.ts), each
 * in its own transaction with its rows marked applied, so a run that stops anywhere can be run again and
 * finishes with no duplicate and no lost row.
 */
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
    this.batchSize = opts.batchSize ?? 2000;
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
    const [inserted] = await sql(em)<{ id: string }>(
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
    const exec = sql(this.orm.em.fork());
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
      firstErrors: await firstErrors(sql(em), importId),
    };
  }

  /** The rows in error, as a CSV file to fix and upload again; null when there are none. */
  errorFile(importId: string): Promise<Buffer | null> {
    return errorFile(this.orm, importId);
  }

  /**
   * Starts the import of a previewed file, once: the status moves from previewed to importing in one
   * statement, so a double click or a retried request finds it already moving. The run is queued with it.
   */
  async start(em: EntityManager, account: IAccount, importId: string, actor: Actor): Promise<StartResult> {
    if (!actor.isAdmin) throw new DomainError('not_admin', 'Only admins can import people from a CSV file.');
    return em.transactional(async (tx) => {
      const [moved] = await sql(tx)<{ id: string }>(
        `update csv_import set status = 'importing', imported_by = $1, started_at = now(), updated_at = now()
         where id = $2 and account_id = $3 and status = 'previewed' returning id`,
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
         where id = $1 and status = 'previewed' and (counts->>'create')::int + (counts->>'update')::int = 0
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
       from csv_import_row where csv_import_id = $1 and outcome <> 'error'`,
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
        .transactional((tx) => this.applyBatch(tx, importId, accountId, actor, after, batch, hooks));
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
    importId: string,
    accountId: string,
    actor: Actor,
    after: string,
    batch: number,
    hooks: RunHooks,
  ): Promise<{ count: number; last: string } | null> {
    const exec = sql(tx);
    // A batch commits its effects and its rows' applied marks together, so a commit lost in a crash
    // loses both and the batch is simply applied again on resume: no need to wait for the disk.
    await exec('set local synchronous_commit = off');
    const rows = await exec<BatchRow>(
      `/* csv:batch */ select id, line, kind, data from csv_import_row
       where csv_import_id = $1 and id > $2 and applied_at is null and outcome <> 'error'
       order by id limit $3 for update skip locked`,
      [importId, after, this.batchSize],
    );
    if (!rows.length) return null;
    const account = await tx.findOneOrFail(Account, accountId);
    const results = await applyRows(
      { tx, account, actor, importId, jobs: this.jobs, seats: this.seats },
      rows,
    );
    await exec(
      `/* csv:mark */ update csv_import_row r set applied_at = now(), result = x.result, error = coalesce(x.error, r.error),
         data = case when x.invited then r.data || '{"invited": true}'::jsonb else r.data end
       from jsonb_to_recordset($1::jsonb) as x(id bigint, result text, error text, invited boolean)
       where r.id = x.id`,
      [
        json(
          rows.map((r) => {
            const a: Applied = results.get(String(r.id)) ?? { result: 'unchanged' };
            return { id: r.id, result: a.result, error: a.error ?? null, invited: Boolean(a.invited) };
          }),
        ),
      ],
    );
    await hooks.beforeCommit?.(batch);
    return { count: rows.length, last: String(rows.at(-1)?.id) };
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
         from csv_import_row where csv_import_id = $1`,
        [importId],
      );
      const [moved] = await exec<{
        id: string;
        account_id: string;
        file_name: string;
        counts: PreviewCounts;
      }>(
        `update csv_import set status = 'completed', counts = counts || $1::jsonb, finished_at = now(), updated_at = now()
         where id = $2 and status = 'importing' returning id, account_id, file_name, counts`,
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
      firstErrors: await firstErrors(sql(em), importId),
    };
  }
}
