import type { MikroORM } from '@mikro-orm/postgresql';
import type { WebClient } from '@slack/web-api';
import type { JobQueue } from '../../../shared/jobs.ts';
import type { Block } from '../../../slack/blocks.ts';
import { nowOrLater } from '../../../slack/later.ts';
import { AuditEvent } from '../../audit/audit-event.entity.ts';
import { CsvImport } from '../csv-import.entity.ts';
import type { CsvImportService } from '../csv-import.service.ts';
import { ROWS_LOST } from '../import-run.ts';
import { failedMessage, previewMessage } from './blocks.ts';

/**
 * Redraws a preview that Import had checked again at `revision`, once that check is done: the preview
 * with its new figures and a note naming the imports `after` which it was checked, or, when its staged
 * rows were lost, that it failed and the file is to be uploaded again. False while the check is not done
 * (or when the preview moved on since: started, cancelled, checked again by a later click).
 */
export async function showCheckedAgain(
  deps: { orm: MikroORM; jobs: JobQueue; service: CsvImportService },
  client: WebClient,
  at: { importId: string; revision: number; channel: string; ts: string },
  rechecked: { after: string[]; running: boolean },
): Promise<boolean> {
  const em = deps.orm.em.fork();
  const csvImport = await em.findOne(CsvImport, at.importId);
  if (!csvImport) return false;
  let message: { text: string; blocks: Block[] };
  if (csvImport.status === 'failed' && csvImport.previewRevision === at.revision && !csvImport.startedAt) {
    message = failedMessage(csvImport.fileName, csvImport.error ?? ROWS_LOST);
  } else if (
    (csvImport.status === 'previewed' || csvImport.status === 'completed') &&
    csvImport.previewRevision === at.revision + 1 &&
    !csvImport.startedAt
  ) {
    message = previewMessage(await deps.service.summary(em, at.importId), { rechecked });
  } else {
    return false;
  }
  await nowOrLater(deps.jobs, client, {
    method: 'chat.update',
    args: { channel: at.channel, ts: at.ts, ...message },
  });
  // Cancel, offered while the check ran, may have been clicked as this was drawn: its redraw may then have
  // reached Slack before this one. Cancel wins: the preview says it was cancelled, not Import again.
  const now = await em.findOne(CsvImport, at.importId, { refresh: true });
  if (now?.status === 'cancelled') {
    const by = await em.findOne(
      AuditEvent,
      { account: now.account, action: 'csv_import.cancelled', subjectId: at.importId },
      { orderBy: { id: 'desc' } },
    );
    await nowOrLater(deps.jobs, client, {
      method: 'chat.update',
      args: {
        channel: at.channel,
        ts: at.ts,
        ...previewMessage(await deps.service.summary(em, at.importId), {
          cancelledBy: by?.actor ?? now.uploadedBy,
        }),
      },
    });
  }
  return true;
}
