import type { EntityManager } from '@mikro-orm/postgresql';
import { isDomainError } from '../../../shared/errors.ts';
import { nowOrLater } from '../../../slack/later.ts';
import type { IAccount } from '../../accounts/account.entity.ts';
import type { Deps } from '../../feature.ts';
import { CSV_JOBS, type CsvImportService } from '../csv-import.service.ts';
import { readingMessage, rejectedMessage } from './blocks.ts';
import { checkFileInfo, fileName, type SlackFileInfo } from './download.ts';

/**
 * Takes an admin's upload: rejects a file that is not CSV or too big before reading it, records it once
 * per Slack file (the same file shared again finds it recorded and is told so), says it is being read, and
 * queues the preview. The caller has checked that the uploader is an admin. A Slack retry of a delivery
 * that was recorded never arrives here (refuseReplays drops it), so every answer is given whatever Slack's
 * retry count: a retry that arrives is one whose first delivery was never recorded.
 */
export async function intakeUpload(
  deps: Deps,
  service: CsvImportService,
  em: EntityManager,
  account: IAccount,
  input: {
    userId: string;
    channel: string;
    file: SlackFileInfo;
    /** When the upload's event was recorded (database clock), so a try after a failed one knows its own. */
    recordedAt?: Date;
  },
): Promise<void> {
  const { file } = input;
  const name = fileName(file);
  try {
    checkFileInfo(file);
  } catch (err) {
    if (!isDomainError(err)) throw err;
    await nowOrLater(deps.jobs, deps.slack, {
      method: 'chat.postMessage',
      args: { channel: input.channel, ...rejectedMessage(name, err.message) },
    });
    return;
  }
  if (!file.id) throw new Error('a shared file without an id');
  const { csvImport, duplicate } = await service.begin(em, account, {
    uploadedBy: input.userId,
    fileName: name,
    fileId: file.id,
    // A channel or DM, or the uploader's user id (U…, or W… on Enterprise Grid; the Import from CSV form): posting to a user id posts in
    // their DM with Roster, and the DM's own id is kept once a post there answers with it.
    channelId: /^[CDGUW]/.test(input.channel) ? input.channel : null,
  });
  if (duplicate) {
    if (
      input.recordedAt &&
      csvImport.createdAt >= input.recordedAt &&
      csvImport.uploadedBy === input.userId
    ) {
      // Recorded since this upload's event was: by an earlier try of this upload that failed after it (or by
      // the same person sharing the file again meanwhile, whose own answer covers it). The preview that try
      // may have left unqueued is queued now; one queued already is left to come.
      const queued = await deps.jobs.boss.findJobs(CSV_JOBS.preview, {
        data: { importId: csvImport.id },
        limit: 1,
      });
      if (csvImport.status === 'reading' && !queued.length) {
        await deps.jobs.send(CSV_JOBS.preview, { importId: csvImport.id });
      }
      return;
    }
    await nowOrLater(deps.jobs, deps.slack, {
      method: 'chat.postMessage',
      args: {
        channel: input.channel,
        text: `${name} was already uploaded: its preview is above (status: ${csvImport.status}). To import a changed file, upload it again as a new file.`,
      },
    });
    return;
  }
  // The import is recorded, so the same file shared again stops at `duplicate` above: the preview is queued
  // whatever happens to the "Reading…" message. When Slack is too busy to take it, the preview is posted on
  // its own.
  const posted = await deps.slack.chat
    .postMessage({ channel: input.channel, ...readingMessage(name) })
    .catch((err) => {
      deps.logger.warn({ err, importId: csvImport.id }, 'could not post the reading message');
      return undefined;
    });
  if (posted?.ts) {
    await service.setMessage(csvImport.id, {
      channelId: posted.channel ?? input.channel,
      messageTs: posted.ts,
    });
  }
  await deps.jobs.send(CSV_JOBS.preview, { importId: csvImport.id });
}
