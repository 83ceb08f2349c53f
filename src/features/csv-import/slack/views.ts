import type { App } from '@slack/bolt';
import { isDomainError } from '../../../shared/errors.ts';
import { roster } from '../../../slack/context.ts';
import { nowOrLater } from '../../../slack/later.ts';
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
    const asked = client.files.info({ file: fileId }).then(
      (info) => ({ file: info.file as SlackFileInfo | undefined }),
      () => ({ file: undefined }),
    );
    // The form waits for Slack's answer only so long: past that it closes, and what is wrong with the file
    // comes by DM instead of on the form.
    const answered = await Promise.race([asked, after(FILE_CHECK_MS)]);
    const problem = answered ? fileProblem(answered.file, userId) : null;
    if (problem) {
      await refuse(problem);
      return;
    }
    await ack();
    const file = (answered ?? (await asked)).file;
    const late = answered ? null : fileProblem(file, userId);
    if (late || !file) {
      await nowOrLater(deps.jobs, client, {
        method: 'chat.postMessage',
        args: { channel: userId, text: `:no_entry: ${late} Nothing was imported.` },
      });
      return;
    }
    await intakeUpload(deps, service, em, account, {
      userId,
      channel: userId,
      file: { ...file, id: fileId },
    });
  });
}

/** How long the form waits for Slack to describe the chosen file before its ack. */
const FILE_CHECK_MS = 1500;

function after(ms: number): Promise<undefined> {
  return new Promise((resolve) => setTimeout(() => resolve(undefined), ms).unref());
}

/**
 * What is wrong with the chosen file, in words for the admin; null when it can be read. A file chosen on
 * the form is one its submitter uploads: an id of anyone else's (a forged submission) is no file of theirs,
 * whatever channel it was shared in.
 */
function fileProblem(file: SlackFileInfo | undefined, userId: string): string | null {
  if (!file) return 'Slack could not find that file any more. Upload it again.';
  if (file.user && file.user !== userId) return 'Choose a file you upload here: that one is someone else’s.';
  try {
    checkFileInfo(file);
    return null;
  } catch (err) {
    if (!isDomainError(err)) throw err;
    return err.message;
  }
}
