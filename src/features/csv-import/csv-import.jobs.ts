import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { statements } from '../../db/sql.ts';
import { isDomainError } from '../../shared/errors.ts';
import { referenceId } from '../../shared/ids.ts';
import type { Block } from '../../slack/blocks.ts';
import { nowOrLater } from '../../slack/later.ts';
import { type OnceRun, onceAcross } from '../../slack/once.ts';
import { isSlackBusy } from '../../slack/pacing.ts';
import { Account } from '../accounts/account.entity.ts';
import type { Deps } from '../feature.ts';
import { unlockedSince } from '../people/people.changes.ts';
import { CsvImport, type ICsvImport } from './csv-import.entity.ts';
import {
  CSV_JOBS,
  type CsvImportService,
  type ImportSummary,
  previewMessageOf,
  type RecheckJob,
} from './csv-import.service.ts';
import { firstErrors } from './import-preview.ts';
import { FINISH_JOB } from './import-run.ts';
import {
  previewMessage,
  progressMessage,
  rejectedMessage,
  stoppedMessage,
  summaryMessage,
  unlockedText,
  unlockingText,
} from './slack/blocks.ts';
import { checkFileInfo, downloadSlackFile, type SlackFileInfo } from './slack/download.ts';
import { ProgressReporter } from './slack/progress.ts';
import { showCheckedAgain } from './slack/recheck.ts';
import { uploadCompleted, uploadFromDisk } from './slack/upload.ts';

type ImportJob = { importId: string };
/** What follows a completed import: its summary and, when rows ended in error as written, the error file. */
type FinishJob = { importId: string; seconds: number };

/**
 * The file of every row in error, uploaded after a preview or an import; after a preview checked again,
 * its revision (the file of each revision is uploaded once).
 */
export type ErrorFileJob = {
  importId: string;
  after: 'preview' | 'import';
  count: number;
  revision?: number;
};

export { FINISH_JOB };
export const ERROR_FILE_JOB = 'csv-import.error-file';
/** Unlock and invite all: the people an import left locked, unlocked and invited a hundred at a time. */
export const UNLOCK_ALL_JOB = 'csv-import.unlock-all';
/** `since`: when it was clicked, so a run taken up again after a stop counts what it did before too. */
export type UnlockAllJob = { importId: string; by: string; since?: string };

export const PREVIEW_RETRIES = 3;
export const RUN_RETRIES = 3;

/**
 * The slow parts of an import, off Slack's request: downloading and previewing the file, and running the
 * import with its progress message. Imports left `importing` by a process that died are resumed at startup.
 */
export async function registerCsvImportJobs(deps: Deps, service: CsvImportService): Promise<void> {
  const { jobs, orm, slack, logger, config } = deps;

  async function uploadErrorFile(
    csvImport: ICsvImport,
    count: number,
    after: 'preview' | 'import',
    run: OnceRun,
  ) {
    const channel = csvImport.channelId;
    if (!channel) return;
    // An earlier try stopped after it began uploading: if Slack completed that upload, it is not made again.
    if (run.noted && (await uploadCompleted(slack, run.noted))) return;
    // Written to disk and uploaded from there: a million rows in error never sit in memory.
    const dir = await mkdtemp(join(tmpdir(), 'roster-errors-'));
    try {
      const path = join(dir, 'errors.csv');
      if (!(await service.writeErrorFile(csvImport.id, path))) return;
      const base = csvImport.fileName.replace(/\.csv$/i, '');
      await uploadFromDisk(
        slack,
        {
          path,
          channel,
          filename: `${base}-errors.csv`,
          title: `Rows in error from ${csvImport.fileName}`,
          initialComment:
            after === 'preview'
              ? `${count.toLocaleString('en-US')} ${count === 1 ? 'row' : 'rows'} of ${csvImport.fileName} will not be imported. Each is in this file with its line and reason: fix them and drop the file here again (Roster ignores the line and reason columns).`
              : `Every row of ${csvImport.fileName} that was not imported, with its reason. Fix them and drop the file here again.`,
        },
        (fileId) => run.note(fileId),
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }

  await jobs.define<UnlockAllJob>(
    UNLOCK_ALL_JOB,
    async ({ importId, by, since }, meta) => {
      const em = orm.em.fork();
      const csvImport = await em.findOne(CsvImport, importId, { populate: ['account'] });
      if (!csvImport) return;
      const account = csvImport.account.getEntity();
      // Whoever clicked is asked again: someone no longer an admin unlocks nobody.
      if (!(await deps.admins.isAdmin(em, account, by))) {
        await slack.chat.postMessage({
          channel: by,
          text: `Nobody from ${csvImport.fileName} was unlocked: only admins can unlock imported people.`,
        });
        return;
      }
      const actor = { slackUserId: by, isAdmin: true, surface: 'slack' as const };
      // What an earlier try of this run did before a stop handed it back.
      const before = since ? await unlockedSince(em, account, importId, by, new Date(since)) : 0;
      // One DM, redrawn with the count on the import progress message's cadence, apart from the batches.
      let progress: { channel: string; ts: string } | undefined;
      const reporter = new ProgressReporter(
        async (done) => {
          const text = unlockingText(csvImport.fileName, done);
          if (progress) return slack.chat.update({ ...progress, text });
          const res = await slack.chat.postMessage({ channel: by, text });
          if (res.channel && res.ts) progress = { channel: res.channel, ts: res.ts };
        },
        { logger },
      );
      reporter.start();
      let result: Awaited<ReturnType<typeof deps.people.unlockImported>>;
      try {
        result = await deps.people.unlockImported(em, account, actor, importId, {
          progress: (done) => reporter.set(before + done, 0),
          signal: meta.signal,
        });
        result = { ...result, invited: before + result.invited };
      } finally {
        await reporter.stop();
      }
      const text = unlockedText(csvImport.fileName, result);
      // Done: said in the progress message, and in a new one so that it notifies.
      const shown = progress as { channel: string; ts: string } | undefined;
      if (shown) {
        await slack.chat
          .update({ ...shown, text })
          .catch((err) =>
            logger.warn({ err, importId }, 'could not redraw the Unlock and invite all message'),
          );
      }
      // Not retried on failure: the job's retry would find everyone unlocked and say nobody was left.
      await nowOrLater(jobs, slack, { method: 'chat.postMessage', args: { channel: by, text } }, em).catch(
        (err) => logger.error({ err, importId }, 'could not tell the admin what Unlock and invite all did'),
      );
    },
    // One run per import at a time: a second click while one is queued or running queues nothing.
    {
      retryLimit: RUN_RETRIES,
      retryDelay: 5,
      retryBackoff: true,
      expireInSeconds: 3600,
      policy: 'exclusive',
    },
  );

  // Defined first: the preview and run jobs queue these.
  await jobs.define<ErrorFileJob>(
    ERROR_FILE_JOB,
    async ({ importId, after, count, revision }) => {
      const csvImport = await orm.em.fork().findOne(CsvImport, importId);
      if (!csvImport) return;
      await once(`csv-import:${importId}:error-file:${after}${revision ? `:${revision}` : ''}`, (run) =>
        uploadErrorFile(csvImport, count, after, run),
      );
    },
    { retryLimit: RUN_RETRIES, retryDelay: 5, retryBackoff: true, expireInSeconds: 1800 },
  );

  await jobs.define<RecheckJob>(
    CSV_JOBS.recheck,
    async (job, meta) => {
      const em = orm.em.fork();
      const csvImport = await em.findOne(CsvImport, job.importId);
      // The message stored for the preview, or the one the click named in its channel (see previewMessageOf).
      const at = csvImport ? previewMessageOf(csvImport, { channel: job.channel, ts: job.ts }) : null;
      const channel = at?.channel;
      const ts = at?.ts;
      if (!csvImport) return;
      const log = logger.child({ importId: job.importId });
      try {
        // A retry after the check was stored finds it done (null), and only redraws the preview.
        const result = await service.recheck(job.importId, job.revision);
        if (result) log.info({ status: result.status }, 'CSV preview checked again');
        if (!channel || !ts) return;
        const shown = await showCheckedAgain(
          { orm, jobs, service },
          slack,
          { importId: job.importId, revision: job.revision, channel, ts },
          result?.status === 'rechecked' ? result : job,
        );
        // Checked again, other rows may be in error than the preview's error file lists (even as many): a
        // new one is posted.
        if (shown && result?.status === 'rechecked' && result.errorsChanged) {
          const now = await em.findOneOrFail(CsvImport, job.importId, { refresh: true });
          if (now.counts.error)
            await jobs.send<ErrorFileJob>(ERROR_FILE_JOB, {
              importId: job.importId,
              after: 'preview',
              count: now.counts.error,
              revision: now.previewRevision,
            });
        }
      } catch (err) {
        if (isSlackBusy(err)) throw err;
        if (meta.retryCount < PREVIEW_RETRIES) throw err;
        // The check could not be made: the preview is shown as it stands, with Import to try again.
        const ref = referenceId();
        log.error({ err, ref }, 'could not check a CSV preview again');
        await service.checkGivenUp(job.importId, job.revision);
        const now = await em.findOneOrFail(CsvImport, job.importId, { refresh: true });
        if (now.status !== 'previewed' || now.previewRevision !== job.revision || !channel || !ts) return;
        await nowOrLater(jobs, slack, {
          method: 'chat.update',
          args: { channel, ts, ...previewMessage(await service.summary(em, job.importId)) },
        });
      }
    },
    { retryLimit: PREVIEW_RETRIES, retryDelay: 2, retryBackoff: true, expireInSeconds: 600 },
  );

  await jobs.define<FinishJob>(
    FINISH_JOB,
    async ({ importId, seconds }) => {
      const em = orm.em.fork();
      const csvImport = await em.findOne(CsvImport, importId);
      if (csvImport?.status !== 'completed' || !csvImport.channelId) return;
      const channel = csvImport.channelId;
      const summary: ImportSummary = {
        csvImport,
        counts: csvImport.counts as ImportSummary['counts'],
        firstErrors: await firstErrors(statements(em), importId),
      };
      const took =
        seconds ||
        (csvImport.startedAt && csvImport.finishedAt
          ? (csvImport.finishedAt.getTime() - csvImport.startedAt.getTime()) / 1000
          : 0);
      await once(`csv-import:${importId}:summary`, async () => {
        const account = await em.findOneOrFail(Account, csvImport.account.id);
        const locked = await deps.people.lockedFromImport(em, account, importId);
        const { free } = await deps.seats.usage(em, account);
        const message = summaryMessage(summary, took, { ...locked, free });
        // The summary replaces the progress bar; without one (it could not be posted) it is posted.
        if (csvImport.progressTs) await slack.chat.update({ channel, ts: csvImport.progressTs, ...message });
        else await slack.chat.postMessage({ channel, ...message });
      });
      // Rows in error at preview time were in the preview's error file; any row that ended in error while
      // the import wrote it (no paid seat, refused by the database, changed meanwhile) is in a new one, with
      // them. Imports recorded before failedInRun was counted have only noSeat.
      if (summary.counts.failedInRun ?? summary.counts.noSeat)
        await sendErrorFile(importId, 'import', summary.counts.failed);
    },
    // Slack being busy reschedules the job (TryLater) without spending these.
    { retryLimit: RUN_RETRIES, retryDelay: 5, retryBackoff: true, expireInSeconds: 1800 },
  );

  await jobs.define<ImportJob>(
    CSV_JOBS.preview,
    async ({ importId }, meta) => {
      const em = orm.em.fork();
      const csvImport = await em.findOne(CsvImport, importId);
      if (!csvImport?.channelId) return;
      const channel = csvImport.channelId;
      const show = async (message: { text: string; blocks: Block[] }) => {
        if (csvImport.messageTs) {
          await slack.chat.update({ channel, ts: csvImport.messageTs, ...message });
          return;
        }
        // The "Reading…" message never made it: the preview is posted instead, and kept as the import's
        // message (in the DM's own id when the import was addressed to the uploader's user id).
        const posted = await slack.chat.postMessage({ channel, ...message });
        if (posted.ts)
          await service.setMessage(importId, { channelId: posted.channel ?? channel, messageTs: posted.ts });
      };
      if (
        csvImport.messageTs &&
        ['previewed', 'completed'].includes(csvImport.status) &&
        !csvImport.startedAt
      ) {
        // A retry after the preview was stored but not shown (or its error file not yet queued).
        const summary = await service.summary(em, importId);
        await show(previewMessage(summary));
        if (summary.counts.error) await sendErrorFile(importId, 'preview', summary.counts.error);
        return;
      }
      if (csvImport.status !== 'reading') return;
      const log = logger.child({ importId, file: csvImport.fileId });
      try {
        const info = await slack.files.info({ file: csvImport.fileId ?? '' }).catch((err) => {
          if ((err as { data?: { error?: string } }).data?.error === 'file_not_found')
            return { file: undefined };
          throw err;
        });
        const file = info.file as SlackFileInfo | undefined;
        if (!file) {
          await service.reject(importId, 'The file is no longer in Slack.');
          await show(rejectedMessage(csvImport.fileName, 'The file is no longer in Slack; upload it again.'));
          return;
        }
        checkFileInfo(file);
        // The download streams straight into the preview's staging rows: the file is never held whole.
        const chunks = await downloadSlackFile(file, config.slack);
        let summary = await service.preview(importId, chunks);
        if (await service.completeUnchanged(importId)) summary = await service.summary(em, importId);
        log.info({ counts: summary.counts }, 'CSV file previewed');
        await show(previewMessage(summary));
        if (summary.counts.error) await sendErrorFile(importId, 'preview', summary.counts.error);
      } catch (err) {
        // Slack being busy is not a failed read: the job comes back when Slack allows, whatever its retries.
        if (isSlackBusy(err)) throw err;
        if (isDomainError(err)) {
          await service.reject(importId, err.message);
          await show(rejectedMessage(csvImport.fileName, err.message));
          return;
        }
        if (meta.retryCount >= PREVIEW_RETRIES) {
          const ref = referenceId();
          log.error({ err, ref }, 'could not read a CSV file');
          await service.reject(importId, `Roster failed to read it (reference ${ref}).`);
          await show(
            rejectedMessage(
              csvImport.fileName,
              `Something went wrong on our side while reading it. Please upload it again; if it keeps happening, give your admin this reference: ${ref}.`,
            ),
          );
          return;
        }
        throw err;
      }
    },
    { retryLimit: PREVIEW_RETRIES, retryDelay: 2, retryBackoff: true, expireInSeconds: 600 },
  );

  await jobs.define<ImportJob>(
    CSV_JOBS.run,
    async ({ importId }, meta) => {
      const em = orm.em.fork();
      const csvImport = await em.findOne(CsvImport, importId);
      if (csvImport?.status === 'completed' && csvImport.channelId) {
        // A retry of a run that completed the import but stopped before queueing what follows: queued now.
        // The summary and the error file are each made once, however often this happens.
        await jobs.send<FinishJob>(FINISH_JOB, { importId, seconds: 0 });
        return;
      }
      if (csvImport?.status !== 'importing' || !csvImport.channelId) return;
      const channel = csvImport.channelId;
      const log = logger.child({ importId });
      const started = performance.now();
      const seconds = () => (performance.now() - started) / 1000;
      const first = await service.progress(importId);
      if (!csvImport.progressTs) {
        const posted = await slack.chat.postMessage({
          channel,
          ...progressMessage(csvImport.fileName, first.done, first.total, 0),
        });
        csvImport.progressTs = posted.ts ?? null;
        await service.setMessage(importId, { progressTs: posted.ts });
      }
      const ts = csvImport.progressTs ?? '';
      const reporter = new ProgressReporter(
        (done, total) =>
          slack.chat.update({ channel, ts, ...progressMessage(csvImport.fileName, done, total, seconds()) }),
        { logger: log },
      );
      reporter.set(first.done, first.total);
      reporter.start();
      try {
        const summary = await service.run(importId, {
          log,
          onProgress: (done, total) => reporter.set(done, total),
          signal: meta.signal,
        });
        await reporter.stop();
        if (!summary) return;
        log.info({ counts: summary.counts, seconds: seconds() }, 'CSV import completed');
        // The summary and the error file wait for Slack in a job of their own: a retry of this job finds
        // the import completed, and would make neither.
        await jobs.send<FinishJob>(FINISH_JOB, { importId, seconds: seconds() });
      } catch (err) {
        await reporter.stop();
        // Handed back by a stop, it is not the import that failed: it goes on after the next start.
        if (meta.retryCount >= RUN_RETRIES && !meta.signal.aborted) {
          const ref = referenceId();
          log.error({ err, ref }, 'a CSV import stopped');
          const { done, total } = await service.progress(importId);
          await nowOrLater(jobs, slack, {
            method: 'chat.update',
            args: { channel, ts, ...stoppedMessage(importId, csvImport.fileName, done, total, ref) },
          });
        }
        throw err;
      }
    },
    {
      retryLimit: RUN_RETRIES,
      retryDelay: 5,
      retryBackoff: true,
      expireInSeconds: 3600,
      localConcurrency: 1,
    },
  );

  /**
   * Queues the upload of an error file: in a job of its own, so Slack being busy postpones it (the job comes
   * back when Slack allows) instead of losing it with a preview or run that is not repeated.
   */
  function sendErrorFile(importId: string, after: 'preview' | 'import', count: number) {
    return jobs.send<ErrorFileJob>(ERROR_FILE_JOB, { importId, after, count });
  }

  /**
   * Does `work` unless it was done before, with no transaction open while it calls Slack (see
   * {@link onceAcross}): a job rescheduled while Slack is busy does it later, a repeat does nothing, and a
   * second copy running at the same moment comes back shortly to find it done.
   */
  async function once(key: string, work: (run: OnceRun) => Promise<void>): Promise<void> {
    await onceAcross(orm.em.fork(), key, work, logger);
  }

  // Where imports are run (the bulk jobs thread by default), one that did not finish is resumed, unless
  // its run is already queued (a job handed back by a stop is retried by the queue itself).
  if (!jobs.worksOn(CSV_JOBS.run)) return;
  const queued = new Set(
    (await jobs.boss.findJobs<{ importId: string }>(CSV_JOBS.run, { queued: true })).map(
      (j) => j.data.importId,
    ),
  );
  for (const importId of await service.unfinished()) {
    if (queued.has(importId)) continue;
    logger.info({ importId }, 'resuming a CSV import that did not finish');
    await jobs.send(CSV_JOBS.run, { importId });
  }
}
