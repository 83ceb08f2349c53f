import type { App } from '@slack/bolt';
import { isDomainError } from '../../../shared/errors.ts';
import { roster } from '../../../slack/context.ts';
import type { Deps } from '../../feature.ts';
import type { CsvImportService } from '../csv-import.service.ts';
import { IMPORT_VIEW } from './blocks.ts';
import { checkFileInfo, type SlackFileInfo } from './download.ts';
import { intakeUpload } from './intake.ts';

/** The *Import from CSV* form's submission: the chosen file is checked, then read like a file dropped in the DM. */
export function registerImportForm(app: App, deps: Deps, service: CsvImportService): void {
  app.view(IMPORT_VIEW, async ({ ack, view, body, context, client }) => {
    const { em, account } = roster(context);
    const userId = body.user.id;
    const refuse = (message: string) => ack({ response_action: 'errors', errors: { file: message } });
    if (!(await deps.admins.isAdmin(em, account, userId))) {
      await refuse('Only admins can import people from a CSV file.');
      return;
    }
    const chosen = (view.state.values.file?.file as { files?: { id?: string }[] } | undefined)?.files ?? [];
    const fileId = chosen[0]?.id;
    if (!fileId) {
      await refuse('Choose a .csv file to import.');
      return;
    }
    const info = await client.files.info({ file: fileId }).catch(() => ({ file: undefined }));
    const file = info.file as SlackFileInfo | undefined;
    if (!file) {
      await refuse('Slack could not find that file any more. Upload it again.');
      return;
    }
    try {
      checkFileInfo(file);
    } catch (err) {
      if (!isDomainError(err)) throw err;
      await refuse(err.message);
      return;
    }
    await ack();
    await intakeUpload(deps, service, em, account, {
      userId,
      channel: userId,
      file: { ...file, id: fileId },
    });
  });
}
