import type { App } from '@slack/bolt';
import { roster } from '../../../slack/context.ts';
import { nowOrLater } from '../../../slack/later.ts';
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

/** A file shared in the bot's DM: an admin's CSV is previewed; anyone else is told who can import. */
export function registerUploadEvent(app: App, deps: Deps, service: CsvImportService): void {
  app.event('message', async ({ event, context }) => {
    const message = event as unknown as FileShare;
    if (message.subtype !== 'file_share' || message.channel_type !== 'im') return;
    if (message.bot_id || !message.user || message.user === context.botUserId || !message.files?.length)
      return;
    const { em, account } = roster(context);
    // Who may import is settled before a byte of the file is read. Every answer below is given even when
    // Slack marks the delivery as a retry: a delivery whose event was handled before never gets here
    // (refuseReplays drops it by its event id), so a retry that does is one whose first try never ran.
    if (!(await deps.admins.isAdmin(em, account, message.user))) {
      await nowOrLater(deps.jobs, deps.slack, {
        method: 'chat.postMessage',
        args: { channel: message.channel, text: NOT_ADMIN },
      });
      return;
    }
    for (const file of message.files) {
      await intakeUpload(deps, service, em, account, {
        userId: message.user,
        channel: message.channel,
        file,
      });
    }
  });
}
