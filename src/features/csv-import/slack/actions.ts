import type { App, BlockButtonAction } from '@slack/bolt';
import { z } from 'zod';
import { query, sql } from '../../../db/sql.ts';
import { DomainError } from '../../../shared/errors.ts';
import { roster } from '../../../slack/context.ts';
import { nowOrLater } from '../../../slack/later.ts';
import type { Deps } from '../../feature.ts';
import type { Actor } from '../../seats/seat.service.ts';
import { CsvImport, type CsvImportStatus } from '../csv-import.entity.ts';
import { UNLOCK_ALL_JOB, type UnlockAllJob } from '../csv-import.jobs.ts';
import { CSV_JOBS, type CsvImportService, previewMessageOf } from '../csv-import.service.ts';
import { templateFile } from '../csv-writer.ts';
import { CSV_ACTIONS, NOT_ADMIN, parseStartValue, previewMessage } from './blocks.ts';
import { showCheckedAgain } from './recheck.ts';

const importId = z.uuid();

const STATUS_LINE: Record<CsvImportStatus, string> = {
  reading: 'is still being read',
  previewed: 'is waiting for Import',
  importing: 'is already being imported',
  completed: 'was already imported',
  cancelled: 'was cancelled; drop the file here again to import it',
  failed: 'could not be read; drop a fixed file here again',
};

/** What a click on an import's message that is past its buttons says of it: a failed one, why. */
function statusLine(csvImport: { status: string; error?: string | null }): string {
  if (csvImport.status === 'failed' && csvImport.error) {
    return `was not imported: ${csvImport.error.replace(/\.\s*$/, '')}`;
  }
  return STATUS_LINE[csvImport.status as CsvImportStatus];
}

/** Import, Cancel and Resume on import messages, and the two template buttons. */
export function registerImportActions(app: App, deps: Deps, service: CsvImportService): void {
  const adminActor = async (context: Parameters<typeof roster>[0], userId: string): Promise<Actor> => {
    const { em, account } = roster(context);
    if (!(await deps.admins.isAdmin(em, account, userId))) throw new DomainError('not_admin', NOT_ADMIN);
    return { slackUserId: userId, isAdmin: true, surface: 'slack' };
  };
  const parseId = (value: string | undefined) => {
    const id = importId.safeParse(value);
    if (!id.success) throw new DomainError('not_found', 'That import no longer exists.');
    return id.data;
  };

  app.action<BlockButtonAction>(CSV_ACTIONS.unlockAll, async ({ ack, action, body, context, respond }) => {
    await ack();
    const actor = await adminActor(context, body.user.id);
    const { em, account } = roster(context);
    const id = parseId(action.value);
    const csvImport = await em.findOne(CsvImport, { id, account });
    if (!csvImport) throw new DomainError('not_found', 'That import no longer exists.');
    // Thousands of people take minutes: a job does it, and its messages say how it goes. A second click
    // while it runs starts nothing more. The click's time on the database's clock, which stamps the audit
    // events the run counts.
    const [{ now }] = (await query<{ now: Date }>(em, sql`select now() as now`)) as [{ now: Date }];
    const queued = await deps.jobs.send<UnlockAllJob>(
      UNLOCK_ALL_JOB,
      { importId: id, by: actor.slackUserId, since: new Date(now).toISOString() },
      { singletonKey: id },
    );
    await respond({
      response_type: 'ephemeral',
      replace_original: false,
      text: queued
        ? `:hourglass_flowing_sand: Unlocking and inviting the people of ${csvImport.fileName} who are still locked. A DM says how it goes, and what was done at the end.`
        : `The people of ${csvImport.fileName} are being unlocked already: a DM says what was done when it ends.`,
    });
  });

  for (const [actionId, verb] of [
    [CSV_ACTIONS.start, 'start'],
    [CSV_ACTIONS.cancel, 'cancel'],
  ] as const) {
    app.action<BlockButtonAction>(actionId, async ({ ack, action, body, context, client, respond }) => {
      await ack();
      const actor = await adminActor(context, body.user.id);
      const { em, account } = roster(context);
      const clicked = verb === 'start' ? parseStartValue(action.value) : { id: action.value, revision: 0 };
      const id = parseId(clicked.id);
      const channel = body.channel?.id;
      const ts = body.message?.ts;
      const result =
        verb === 'start'
          ? await service.start(em, account, id, actor, clicked.revision, { channel, ts })
          : await service.cancel(em, account, id, actor);
      const { csvImport } = result;
      if (result.status === 'outdated') {
        await respond({
          response_type: 'ephemeral',
          replace_original: false,
          text: result.checking
            ? `${csvImport.fileName} is being checked again, since people changed in Roster after its preview, and nothing was imported: its preview shows the new figures in a moment; check them and click Import again.`
            : `${csvImport.fileName} was checked again after people changed in Roster, and nothing was imported: check its preview as it is now and click Import again.`,
        });
        return;
      }
      if (result.status === 'unchanged') {
        const by = csvImport.importedBy ? ` (by <@${csvImport.importedBy}>)` : '';
        await respond({
          response_type: 'ephemeral',
          replace_original: false,
          text: `${csvImport.fileName} ${statusLine(csvImport)}${csvImport.status === 'importing' || csvImport.status === 'completed' ? by : ''}.`,
        });
        return;
      }
      const at = previewMessageOf(csvImport, { channel, ts });
      if (!at) return;
      const summary = await service.summary(em, id);
      if (result.status === 'checking') {
        const checking = { after: result.after, running: result.running };
        // Said at once, with Cancel only, while a job checks the preview again and redraws it. When Slack asks
        // Roster to slow down, the job's redraw is what shows.
        try {
          await client.chat.update({ ...at, ...previewMessage(summary, { checking }) });
        } catch (err) {
          deps.logger.warn({ err, importId: id }, 'could not say a CSV preview is being checked again');
        }
        // The check may have been done before that reached Slack: its result is drawn again over it.
        await showCheckedAgain(
          { orm: deps.orm, jobs: deps.jobs, service },
          client,
          { importId: id, revision: csvImport.previewRevision, ...at },
          checking,
        );
        return;
      }
      // The import is already started or cancelled: when Slack asks Roster to slow down, the preview is
      // redrawn once Slack allows rather than left offering its buttons.
      await nowOrLater(deps.jobs, client, {
        method: 'chat.update',
        args: {
          ...at,
          ...previewMessage(
            summary,
            verb === 'start' ? { startedBy: actor.slackUserId } : { cancelledBy: actor.slackUserId },
          ),
        },
      });
    });
  }

  app.action<BlockButtonAction>(CSV_ACTIONS.resume, async ({ ack, action, body, context, respond }) => {
    await ack();
    await adminActor(context, body.user.id);
    const { em, account } = roster(context);
    const id = parseId(action.value);
    const csvImport = await em.findOne(CsvImport, { id, account }, { refresh: true });
    if (!csvImport) throw new DomainError('not_found', 'That import no longer exists.');
    if (csvImport.status !== 'importing') {
      await respond({
        response_type: 'ephemeral',
        replace_original: false,
        text: `${csvImport.fileName} ${statusLine(csvImport)}.`,
      });
      return;
    }
    await deps.jobs.send(CSV_JOBS.run, { importId: id });
    await respond({
      response_type: 'ephemeral',
      replace_original: false,
      text: `Resuming the import of ${csvImport.fileName}: rows already applied are kept, the rest follow.`,
    });
  });

  for (const [actionId, kind] of [
    [CSV_ACTIONS.usersTemplate, 'users'],
    [CSV_ACTIONS.contactsTemplate, 'contacts'],
  ] as const) {
    app.action<BlockButtonAction>(actionId, async ({ ack, body, client }) => {
      await ack();
      // Always to the clicker's DM: the channel a click names is the payload's word, and a template posted
      // where the click came from would be Roster posting into any channel it is in.
      const channel = (await client.conversations.open({ users: body.user.id })).channel?.id ?? body.user.id;
      const file = templateFile(kind);
      await client.filesUploadV2({
        channel_id: channel,
        file: file.content,
        filename: file.filename,
        title: file.title,
        initial_comment:
          kind === 'users'
            ? 'The users template: one row per person. `email` is required; `role` is employee, contractor or client (employee if empty); `send_invitation` yes sends an invitation (it needs a paid seat for employees and contractors), otherwise the user is imported locked.'
            : 'The contacts template: one row per contact. A first or last name is required; a contact without an email is matched on name and company when you import again.',
      });
    });
  }
}
