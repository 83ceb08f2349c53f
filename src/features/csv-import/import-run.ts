import type { EntityManager, MikroORM } from '@mikro-orm/postgresql';
import { json, statements } from '../../db/sql.ts';
import type { JobQueue } from '../../shared/jobs.ts';
import { Account } from '../accounts/account.entity.ts';
import { audit } from '../audit/audit.service.ts';
import type { Actor, SeatService } from '../seats/seat.service.ts';
import { CsvImport } from './csv-import.entity.ts';
import { applyRows } from './import-apply.ts';
import { firstErrors } from './import-preview.ts';
import type {
  Applied,
  BatchRow,
  ImportSummary,
  PreviewCounts,
  ResultCounts,
  RunHooks,
} from './import-types.ts';

/** The advisory lock namespace of import batches ("CSVI"). */
const BATCH_LOCK = 0x43535649;

/** Rows applied before the first refresh of the tables' statistics. */
const ANALYZE_FROM = 4000;

/** What running an import needs. */
export type RunDeps = { orm: MikroORM; jobs: JobQueue; seats: SeatService; batchSize: number };

/** Rows to apply and rows applied, for the progress bar. */
export async function importProgress(
  orm: MikroORM,
  importId: string,
): Promise<{ done: number; total: number }> {
  const [row] = await statements(orm.em.fork())<{ done: number; total: number }>(
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
export async function runImport(
  deps: RunDeps,
  importId: string,
  hooks: RunHooks = {},
): Promise<ImportSummary | null> {
  const em = deps.orm.em.fork();
  const csvImport = await em.findOne(CsvImport, importId);
  if (csvImport?.status !== 'importing') return null;
  const accountId = csvImport.account.id;
  const actor: Actor = { slackUserId: csvImport.importedBy ?? 'roster', isAdmin: true, surface: 'slack' };
  let { done, total } = await importProgress(deps.orm, importId);
  hooks.onProgress?.(done, total);
  // Batches go forward through the rows by id, so each one starts where the last stopped.
  let after = '0';
  let analyzedAt = 0;
  let applied = 0;
  for (let batch = 0; ; batch++) {
    if (hooks.maxBatches !== undefined && batch >= hooks.maxBatches) return null;
    if (applied >= Math.max(2 * analyzedAt, ANALYZE_FROM)) {
      // People and contacts grow faster than autovacuum refreshes their statistics, and a planner that
      // believes them few hashes the whole table for a batch of lookups. Refreshing the row counts
      // each time the import has doubled them keeps its plans on the indexes, at a dozen cheap passes
      // for a million rows.
      for (const table of ['app_user', 'contact', 'invitation'])
        await statements(em)(`analyze ${table} (account_id)`);
      analyzedAt = applied;
    }
    const next = await deps.orm.em
      .fork()
      .transactional((tx) => applyBatch(deps, tx, { importId, accountId, actor, after, batch }, hooks));
    if (!next) {
      // Another worker is applying a batch, or holds rows still unapplied: wait rather than finish early.
      ({ done, total } = await importProgress(deps.orm, importId));
      if (done < total) {
        after = '0';
        await new Promise((r) => setTimeout(r, 250));
        continue;
      }
      break;
    }
    after = next.last;
    done += next.count;
    applied += next.count;
    hooks.onProgress?.(Math.min(done, total), total);
  }
  return finish(deps.orm, importId, actor);
}

/** One batch: the next rows in file order, applied, marked applied, in `tx`. */
async function applyBatch(
  deps: RunDeps,
  tx: EntityManager,
  at: { importId: string; accountId: string; actor: Actor; after: string; batch: number },
  hooks: RunHooks,
): Promise<{ count: number; last: string } | null> {
  const { importId, accountId, actor, after, batch } = at;
  const exec = statements(tx);
  // A batch commits its effects and its rows' applied marks together, so a commit lost in a crash
  // loses both and the batch is simply applied again on resume: no need to wait for the disk.
  await exec('set local synchronous_commit = off');
  // One batch of an import at a time, whoever runs it: a second worker (a Resume clicked while the
  // job runs) waits its turn. Cheaper than locking every row of the batch, which writes each one.
  const [turn] = await exec<{ ok: boolean }>('select pg_try_advisory_xact_lock($1, hashtext($2)) as ok', [
    BATCH_LOCK,
    importId,
  ]);
  if (!turn?.ok) return null;
  const rows = await exec<BatchRow>(
    `/* csv:batch */ select id, line, kind, data from csv_import_row
       where csv_import_id = $1 and id > $2 and applied_at is null and outcome <> 'error'
       order by id limit $3`,
    [importId, after, deps.batchSize],
  );
  if (!rows.length) return null;
  const account = await tx.findOneOrFail(Account, accountId);
  const results = await applyRows({ tx, account, actor, importId, jobs: deps.jobs, seats: deps.seats }, rows);
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
async function finish(orm: MikroORM, importId: string, actor: Actor): Promise<ImportSummary | null> {
  const em = orm.em.fork();
  await em.transactional(async (tx) => {
    const exec = statements(tx);
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
    firstErrors: await firstErrors(statements(em), importId),
  };
}
