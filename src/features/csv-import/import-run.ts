import type { EntityManager, MikroORM } from '@mikro-orm/postgresql';
import { retryDeadlocks } from '../../db/deadlock.ts';
import { json, type Statements, statements } from '../../db/sql.ts';
import { HandedBack, type JobQueue } from '../../shared/jobs.ts';
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
export const BATCH_LOCK = 0x43535649;

/** Rows written to a table before the first refresh of its statistics. */
const ANALYZE_FROM = 1000;

/**
 * Rows asking for an invitation in one batch, whatever the batch size: a batch that takes seats holds
 * the account's seat lock from its last count to its commit (see applyInvitations), and another admin's
 * `/seats` waits for it.
 */
export const INVITED_PER_BATCH = 1000;

/** What running an import needs. */
export type RunDeps = { orm: MikroORM; jobs: JobQueue; seats: SeatService; batchSize: number };

/** The job that posts a completed import's summary and error file. */
export const FINISH_JOB = 'csv-import.finish';

/** How long after its completion an import's summary is made, if the run that completed it did not. */
const FINISH_BACKSTOP_SECONDS = 5 * 60;

/**
 * A row's result and invitation as its preview decided them, in SQL over csv_import_row: what applying it
 * does unless something changed in between. Only a row whose application differs stores its own.
 */
const PLANNED_RESULT = `case outcome when 'create' then 'created' when 'update' then 'updated' else 'unchanged' end`;
const PLANNED_INVITED = `(kind = 'user' and coalesce((data->>'sendInvitation')::boolean, false)
  and (outcome = 'create' or coalesce((data->>'invite')::boolean, false)))`;

/** The same decision for a row in hand. */
function planned(row: BatchRow): Required<Pick<Applied, 'result' | 'invited'>> {
  const result = row.outcome === 'create' ? 'created' : row.outcome === 'update' ? 'updated' : 'unchanged';
  const invited =
    row.kind === 'user' &&
    Boolean(row.data.sendInvitation) &&
    (row.outcome === 'create' || Boolean(row.data.invite));
  return { result, invited };
}

/** Rows to apply and rows applied, for the progress bar. */
export async function importProgress(
  orm: MikroORM,
  importId: string,
): Promise<{ done: number; total: number }> {
  const [row] = await statements(orm.em.fork())<{ done: number; total: number }>(
    `select count(*) filter (where r.id <= i.applied_through)::int as done, count(*)::int as total
       from csv_import_row r join csv_import i on i.id = r.csv_import_id
       where r.csv_import_id = $1 and r.outcome <> 'error'`,
    [importId],
  );
  return row ?? { done: 0, total: 0 };
}

/**
 * Applies an import's rows in batches, each in its own transaction with the import's applied mark moved
 * past it. Returns the summary once every row is applied, or null when the import is not (or no longer)
 * running, or when `hooks.maxBatches` stopped it early.
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
  if (await rowsLost(deps.orm, importId, csvImport.counts.rows ?? 0)) return null;
  let { done, total } = await importProgress(deps.orm, importId);
  hooks.onProgress?.(done, total);
  // Each table's statistics are refreshed as the import grows it (see below), counted by kind of row.
  const written = { user: 0, contact: 0 };
  const seatsFree = { value: null as number | null };
  const analyzedAt = { user: 0, contact: 0 };
  for (let batch = 0; ; batch++) {
    if (hooks.maxBatches !== undefined && batch >= hooks.maxBatches) return null;
    // A stop hands the import back between batches: each batch is whole, so the next start goes on from here.
    if (hooks.signal?.aborted) throw new HandedBack();
    for (const kind of ['user', 'contact'] as const) {
      if (written[kind] < Math.max(2 * analyzedAt[kind], ANALYZE_FROM)) continue;
      // People and contacts grow faster than autovacuum refreshes their statistics, and a planner that
      // believes them few picks any index on the account (or hashes the whole table) for a batch of
      // lookups. Refreshing a table's row counts each time the import has doubled what it wrote there
      // keeps its plans on the right indexes, at a dozen cheap passes for a million rows.
      const tables = kind === 'user' ? ['app_user', 'invitation'] : ['contact'];
      for (const table of tables) await statements(em)(`analyze ${table} (account_id)`);
      analyzedAt[kind] = written[kind];
    }
    // A batch takes the contacts of its file before the account's seats; a conversion of one of them at
    // that moment takes them the other way round. Whichever Postgres ends, it runs again (the batch is
    // written whole or not at all), rather than failing the import's try.
    const next = await retryDeadlocks(() =>
      deps.orm.em
        .fork()
        .transactional((tx) => applyBatch(deps, tx, { importId, accountId, actor, batch, seatsFree }, hooks)),
    );
    if (next === 'busy') {
      // Another worker is applying a batch: wait for it rather than finish early.
      await new Promise((r) => setTimeout(r, 250));
      continue;
    }
    if (next === 'done') break;
    done += next.count;
    written.user += next.users;
    written.contact += next.count - next.users;
    hooks.onProgress?.(Math.min(done, total), total);
    // Let the event loop answer Slack between batches.
    await new Promise<void>((ok) => setImmediate(ok));
  }
  return finish(deps, importId, actor);
}

/**
 * Staged rows live in an unlogged table, which a database crash empties. An import whose rows are gone
 * cannot go on: it fails, saying to upload the file again. True when that happened.
 */
async function rowsLost(orm: MikroORM, importId: string, rows: number): Promise<boolean> {
  const exec = statements(orm.em.fork());
  const [staged] = await exec('select 1 from csv_import_row where csv_import_id = $1 limit 1', [importId]);
  if (staged || rows === 0) return false;
  await failLost(exec, importId, 'importing');
  return true;
}

/** What an admin is told of an import whose staged rows were lost. */
export const ROWS_LOST =
  'The rows read from the file were lost when the database restarted. Upload the file again to import it.';

/** Fails an import in `status` whose staged rows were lost, saying to upload the file again. */
export async function failLost(exec: Statements, importId: string, status: 'importing' | 'previewed') {
  await exec(
    `update csv_import set status = 'failed', finished_at = now(), updated_at = now(), error = $3
     where id = $1 and status = $2`,
    [importId, status, ROWS_LOST],
  );
}

/**
 * True when fewer rows are staged for an import than it read (`rows`): the unlogged table lost them in
 * a database crash or failover.
 */
export async function stagedRowsMissing(exec: Statements, importId: string, rows: number): Promise<boolean> {
  if (!rows) return false;
  const [staged] = await exec<{ n: number }>(
    'select count(*)::int as n from csv_import_row where csv_import_id = $1',
    [importId],
  );
  return (staged?.n ?? 0) < rows;
}

/** One batch: the next rows in file order, applied, and the import's applied mark moved past them, in `tx`. */
async function applyBatch(
  deps: RunDeps,
  tx: EntityManager,
  at: {
    importId: string;
    accountId: string;
    actor: Actor;
    batch: number;
    seatsFree: { value: number | null };
  },
  hooks: RunHooks,
): Promise<{ count: number; users: number } | 'busy' | 'done'> {
  const { importId, accountId, actor, batch } = at;
  const exec = statements(tx);
  // A batch commits its effects and its applied mark together, so a commit lost in a crash loses both
  // and the batch is simply applied again on resume: no need to wait for the disk.
  await exec('set local synchronous_commit = off');
  // One batch of an import at a time, whoever runs it: a second worker (a Resume clicked while the
  // job runs) waits its turn, then reads the applied mark the first one moved.
  const [turn] = await exec<{ ok: boolean }>('select pg_try_advisory_xact_lock($1, hashtext($2)) as ok', [
    BATCH_LOCK,
    importId,
  ]);
  if (!turn?.ok) return 'busy';
  // The next rows in file order, up to the batch size, cut before the invitation past INVITED_PER_BATCH.
  // The running count of invitations is the window's run condition: the scan stops at the cut, and only
  // the rows returned have what sorts them built.
  const picked = await exec<{
    id: string;
    line: number;
    kind: BatchRow['kind'];
    outcome: BatchRow['outcome'];
    email: string | null;
    invite: boolean | null;
    detailed: boolean;
    send_invitation: boolean;
    role: string | null;
  }>(
    // What sorts a row into its statement; for a row asking for an invitation also its role, by which
    // it is sorted further against its user as it is now (see planInvitations).
    `/* csv:batch */ select id, line, kind, outcome, data->>'email' as email, (data->>'invite')::boolean as invite,
       coalesce(data->>'company', '') <> '' or coalesce(data->>'notes', '') <> '' as detailed,
       kind = 'user' and coalesce((data->>'sendInvitation')::boolean, false) as send_invitation,
       data->>'role' as role
     from (
       select l.*, count(*) filter (where l.kind = 'user' and (l.data->>'sendInvitation')::boolean)
         over (order by l.id) as invited
       from (
         select r.id, r.line, r.kind, r.outcome, r.data from csv_import_row r
         where r.csv_import_id = $1 and r.outcome <> 'error'
           and r.id > (select applied_through from csv_import where id = $1 and status = 'importing')
         order by r.id limit $2) l) b
     where b.invited <= $3 order by id`,
    [importId, deps.batchSize, INVITED_PER_BATCH],
  );
  const rows: BatchRow[] = picked.map((r) => ({
    id: r.id,
    line: r.line,
    kind: r.kind,
    outcome: r.outcome,
    data: {
      email: r.email,
      invite: r.invite,
      detailed: r.detailed,
      ...(r.send_invitation ? { sendInvitation: true, role: r.role } : {}),
    },
  }));
  if (!rows.length) return 'done';
  const account = await tx.findOneOrFail(Account, accountId);
  const results = await applyRows(
    {
      tx,
      account,
      actor,
      importId,
      jobs: deps.jobs,
      seats: deps.seats,
      seatsFree: at.seatsFree,
      log: hooks.log,
    },
    rows,
  );
  // Only rows whose application differs from their preview keep a result of their own.
  const differing = rows.flatMap((r) => {
    const a: Applied = results.get(String(r.id)) ?? { result: 'unchanged' };
    const plan = planned(r);
    const invited = a.result !== 'error' && Boolean(a.invited);
    if (a.result === plan.result && !a.error && (a.result === 'error' || invited === plan.invited)) return [];
    return [
      {
        id: r.id,
        result: a.result,
        error: a.error ?? null,
        invited: invited === plan.invited ? null : invited,
      },
    ];
  });
  if (differing.length) {
    await exec(
      `/* csv:differing */ update csv_import_row r set result = x.result, error = coalesce(x.error, r.error),
           data = case when x.invited is null then r.data else r.data || jsonb_build_object('invited', x.invited) end
         from jsonb_to_recordset($1::jsonb) as x(id bigint, result text, error text, invited boolean)
         where r.id = x.id`,
      [json(differing)],
    );
  }
  const last = String(rows.at(-1)?.id);
  await exec('/* csv:mark */ update csv_import set applied_through = $2 where id = $1', [importId, last]);
  await hooks.beforeCommit?.(batch);
  return { count: rows.length, users: rows.filter((r) => r.kind === 'user').length };
}

/**
 * Marks the import completed, once, with its counts and the audit event that records them, and queues in
 * the same transaction, five minutes ahead, the job that tells the importer (see {@link FINISH_JOB}).
 */
async function finish(deps: RunDeps, importId: string, actor: Actor): Promise<ImportSummary | null> {
  const em = deps.orm.em.fork();
  await em.transactional(async (tx) => {
    const exec = statements(tx);
    const [r] = await exec<ResultCounts>(
      `with r as (
         select outcome, error, coalesce(result, ${PLANNED_RESULT}) as result,
           coalesce((data->>'invited')::boolean, ${PLANNED_INVITED}) as invited
         from csv_import_row where csv_import_id = $1)
       select count(*) filter (where outcome <> 'error' and result = 'created')::int as created,
           count(*) filter (where outcome <> 'error' and result = 'updated')::int as updated,
           count(*) filter (where outcome <> 'error' and result = 'unchanged')::int as kept,
           count(*) filter (where result = 'error' or outcome = 'error')::int as failed,
           count(*) filter (where outcome <> 'error' and result = 'error')::int as "failedInRun",
           count(*) filter (where result = 'error' and error like 'no paid seat free%')::int as "noSeat",
           count(*) filter (where outcome <> 'error' and result <> 'error' and invited)::int as invited
         from r`,
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
    // The run job queues the summary as soon as its progress bar has stopped; this one, queued with the
    // completion, makes it should the process die before that (the summary and error file are made once).
    await deps.jobs.send(
      FINISH_JOB,
      { importId, seconds: 0 },
      { em: tx, startAfter: FINISH_BACKSTOP_SECONDS },
    );
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
