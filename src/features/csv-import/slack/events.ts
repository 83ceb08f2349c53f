import type { RosterApp } from '../../../slack/app.ts';
import type { SlackEventObject } from '../../../slack/durable-events.ts';
import { nowOrLater } from '../../../slack/later.ts';
import { isSlackBusy } from '../../../slack/pacing.ts';
import type { Deps } from '../../feature.ts';
import type { CsvImportService } from '../csv-import.service.ts';
import { NOT_ADMIN } from './blocks.ts';
import type { SlackFileInfo } from './download.ts';
import { intakeUpload } from './intake.ts';

type FileShare = {
  subtype?: string;
  channel_type?: string;
  channel: string;
  user?: string;
  bot_id?: string;
  files?: SlackFileInfo[];
};

/** What the upload's job reads of a file: Slack's file object has much more (previews, who it is shared with). */
function fileFields({ id, name, title, filetype, size, url_private_download, url_private }: SlackFileInfo) {
  return { id, name, title, filetype, size, url_private_download, url_private };
}

/** A person's file shared in the bot's DM; Roster's own uploads there (error files) are not. */
function isPersonsShare(message: FileShare, body: Record<string, any>): boolean {
  if (message.subtype !== 'file_share' || message.channel_type !== 'im') return false;
  const botUserId = (body.authorizations as { user_id?: string; is_bot?: boolean }[] | undefined)?.find(
    (a) => a.is_bot,
  )?.user_id;
  return Boolean(!message.bot_id && message.user && message.user !== botUserId && message.files?.length);
}

/**
 * A file shared in the bot's DM: an admin's CSV is previewed; anyone else is told who can import. Done by a
 * job queued with the event's receipt, so an upload whose first try failed is answered when the job is
 * retried, and a delivery Slack sends again is dropped by its event id.
 */
export function registerUploadEvent(app: RosterApp, deps: Deps, service: CsvImportService): void {
  app.durableEvents.on({
    name: 'csv-import.upload',
    type: 'message',
    wants: (event, body) => isPersonsShare(event as unknown as FileShare, body),
    keep: (event) => {
      const { channel, channel_type, subtype, user, files } = event as unknown as FileShare;
      const kept: FileShare = { channel, channel_type, subtype, user, files: files?.map(fileFields) };
      return kept as unknown as SlackEventObject;
    },
    async handle(event: SlackEventObject, { em, account, recordedAt }) {
      const message = event as unknown as FileShare & { user: string };
      // Who may import is settled before a byte of the file is read.
      if (!(await deps.admins.isAdmin(em, account, message.user))) {
        await nowOrLater(deps.jobs, deps.slack, {
          method: 'chat.postMessage',
          args: { channel: message.channel, text: NOT_ADMIN },
        });
        return;
      }
      for (const shared of message.files ?? []) {
        await intakeUpload(deps, service, em, account, {
          userId: message.user,
          channel: message.channel,
          file: await described(deps, shared),
          recordedAt,
        });
      }
    },
  });
}

/**
 * The shared file as Slack describes it. An event may carry the file's id alone (`"file_access":
 * "check_file_info"`, as for files from Slack Connect channels): its name and type are asked for, so a
 * CSV is not refused as one of unknown type. Slack busy is waited out by the event's job.
 */
async function described(deps: Deps, file: SlackFileInfo): Promise<SlackFileInfo> {
  if (file.name || file.title || file.filetype || !file.id) return file;
  const info = await deps.slack.files.info({ file: file.id }).catch((err) => {
    if (isSlackBusy(err)) throw err;
    return null;
  });
  return info?.file ? { ...(info.file as SlackFileInfo), id: file.id } : file;
}
