import {
  actions,
  type Block,
  button,
  context,
  esc,
  escFit,
  mrkdwn,
  plain,
  section,
} from '../../../slack/blocks.ts';
import type { ImportSummary, PreviewSummary, RowError } from '../csv-import.service.ts';
import { formatBytes, MAX_FILE_BYTES, MAX_ROWS } from '../csv-reader.ts';

export const CSV_ACTIONS = {
  start: 'csv_import_start',
  cancel: 'csv_import_cancel',
  resume: 'csv_import_resume',
  usersTemplate: 'csv_template_users',
  contactsTemplate: 'csv_template_contacts',
  unlockAll: 'csv_import_unlock_all',
} as const;

export const IMPORT_SHORTCUT = 'import_csv';
export const IMPORT_VIEW = 'csv_import_modal';

export const NOT_ADMIN =
  ':lock: Only admins can import people from a CSV file. Ask a workspace admin or owner to upload it.';

const n = (value: number) => value.toLocaleString('en-US');
const plural = (count: number, one: string, many = `${one}s`) => `${n(count)} ${count === 1 ? one : many}`;

export function templateButtons(): Block {
  return actions(
    'csv_templates',
    button('Download users template', CSV_ACTIONS.usersTemplate, 'users'),
    button('Download contacts template', CSV_ACTIONS.contactsTemplate, 'contacts'),
  );
}

export function readingMessage(fileName: string) {
  const text = `:hourglass_flowing_sand: Reading ${esc(fileName)}… Roster checks every row first; nothing is imported until you click Import.`;
  return { text, blocks: [section(text)] };
}

export function rejectedMessage(fileName: string, reason: string) {
  const text = `:x: Roster could not read ${fileName}: ${reason}`;
  return {
    text,
    blocks: [
      section(`:x: *${esc(fileName)} was not imported.* ${esc(reason)}`),
      context('Nothing was written. Fix the file and drop it here again, or start from a template:'),
      templateButtons(),
    ],
  };
}

/** An import that could not go on after its preview (its rows were lost): nothing was imported. */
export function failedMessage(fileName: string, reason: string) {
  const text = `:x: ${fileName} was not imported: ${reason}`;
  return {
    text,
    blocks: [
      section(`:x: *${esc(fileName)} was not imported.* ${esc(reason)}`),
      context('Nothing was written. Drop the file here again, or start from a template:'),
      templateButtons(),
    ],
  };
}

/** Room for the error lines in a section (3,000 characters), with the heading and the last line. */
const ERRORS_BUDGET = 2600;

function errorLines(errors: RowError[], total: number): string {
  const lines: string[] = [];
  let used = 0;
  for (const e of errors) {
    const line = `• Line ${e.line}: ${escFit(e.reason, 250)}`;
    if (used + line.length + 1 > ERRORS_BUDGET) break;
    lines.push(line);
    used += line.length + 1;
  }
  if (total > lines.length)
    lines.push(`…and ${plural(total - lines.length, 'more row')}: see the error file.`);
  return lines.join('\n');
}

/**
 * The Import button's value: the import and the revision of the preview shown, so a click on a preview
 * since checked again is known. A value of the import alone (a preview posted before revisions) is revision 0.
 */
export function startValue(importId: string, revision: number): string {
  return `${importId}:${revision}`;
}

export function parseStartValue(value: string | undefined): { id: string; revision: number } {
  const [id = '', revision = '0'] = (value ?? '').split(':');
  return { id, revision: /^\d{1,9}$/.test(revision) ? Number(revision) : -1 };
}

/** Who changed people since the preview: the other imports by name, or Roster itself when none did. */
function changedBy({ after, running }: { after: string[]; running: boolean }, done: string, going: string) {
  if (!after.length)
    return `people or contacts in this file ${done} in Roster (edited by hand, joined, invited or provisioned)`;
  const names =
    after
      .slice(0, 3)
      // Each cut as the Home tab cuts a file's name: three names of `&`s would pass Slack's 3,000 characters.
      .map((name) => escFit(name, 300))
      .join(', ') + (after.length > 3 ? ` and ${n(after.length - 3)} more` : '');
  return `another import (${names}) ${running ? going : done} people in Roster`;
}

function recheckedNote(since: { after: string[]; running: boolean }): string {
  const which = changedBy(since, 'changed', 'is still changing');
  return since.running && since.after.length
    ? `:arrows_counterclockwise: *Checked again, nothing imported:* ${which}, so this preview may not be the last word. Wait for its summary, then click Import again: Roster checks this file against it once more first.`
    : `:arrows_counterclockwise: *Checked again, nothing imported:* ${which} after this preview was made, so Roster compared the file with Roster as it is now; the figures above are the new ones. Please check it and click Import again.`;
}

function checkingNote(since: { after: string[]; running: boolean }): string {
  return `:hourglass_flowing_sand: *Checking again, nothing imported:* ${changedBy(since, 'changed', 'is still changing')} after this preview was made, so Roster is comparing the file with Roster as it is now. The new figures replace these in a moment; Cancel still stops it.`;
}

/** The preview: what the file would do, the first errors, and the Import and Cancel buttons. */
export function previewMessage(
  summary: PreviewSummary,
  state: {
    startedBy?: string;
    cancelledBy?: string;
    /** The preview was decided again after these imports of the account (`running`: one is under way). */
    rechecked?: { after: string[]; running: boolean };
    /** The preview is being decided again after these imports: Cancel, but no Import until it is. */
    checking?: { after: string[]; running: boolean };
  } = {},
) {
  const { counts, seats, csvImport } = summary;
  const name = esc(csvImport.fileName);
  const changes = counts.create + counts.update;
  const text = `Preview of ${name}: ${n(counts.create)} to create, ${n(counts.update)} to update, ${n(counts.unchanged)} unchanged, ${n(counts.error)} in error.`;
  const blocks: Block[] = [
    section(
      `:mag: *Preview of ${name}*: ${plural(counts.rows, 'row')} (${plural(counts.users, 'user')}, ${plural(counts.contacts, 'contact')}). Nothing has been imported yet.`,
    ),
    section(
      [
        `• *${n(counts.create)}* to create`,
        `• *${n(counts.update)}* to update`,
        `• *${n(counts.unchanged)}* unchanged (already in Roster as the file has them)`,
        `• *${n(counts.error)}* in error${counts.error ? ', not imported: the error file lists them with the reason' : ''}`,
      ].join('\n'),
    ),
  ];
  const seatLine = [
    `*Paid seats:* the file needs ${plural(counts.seatsNeeded, 'seat')}; ${n(seats.free)} free (${n(seats.used)} of ${n(seats.limit)} used).`,
  ];
  if (counts.invitations) {
    seatLine.push(
      `${plural(counts.invitations, 'invitation')} will be sent; everyone else is imported locked (no login, no seat).`,
    );
  } else {
    seatLine.push('Users are imported locked: no login and no seat until they are invited.');
  }
  if (counts.seatsNeeded > seats.free) {
    seatLine.push(
      `:warning: ${plural(counts.seatsNeeded - seats.free, 'row')} asking for an invitation will end in error ("no paid seat free"). Raise the limit with \`/seats ${seats.limit + counts.seatsNeeded - seats.free}\` before importing, or import them later.`,
    );
  }
  blocks.push(section(seatLine.join('\n')));
  for (const warning of summary.warnings.slice(0, 5)) {
    blocks.push(context(`:information_source: ${escFit(warning, 2900)}`));
  }
  if (summary.firstErrors.length) {
    blocks.push(section(`*First errors*\n${errorLines(summary.firstErrors, counts.error)}`));
  }
  if (state.rechecked) blocks.push(section(recheckedNote(state.rechecked)));
  if (state.checking) {
    blocks.push(section(checkingNote(state.checking)));
    if (csvImport.status === 'previewed')
      blocks.push(actions(`csv_import:${csvImport.id}`, button('Cancel', CSV_ACTIONS.cancel, csvImport.id)));
  } else if (state.startedBy) {
    blocks.push(context(`:arrow_forward: Import started by <@${state.startedBy}>. Progress below.`));
  } else if (state.cancelledBy) {
    blocks.push(context(`:no_entry_sign: Cancelled by <@${state.cancelledBy}>. Nothing was imported.`));
  } else if (csvImport.status === 'completed' && changes === 0 && counts.error) {
    // Nothing could be imported, but not because it is all there already: the rows in error need fixing.
    const which = counts.unchanged
      ? `every row that would change Roster is in error (${plural(counts.error, 'row')}; the other ${n(counts.unchanged)} are already in Roster as the file has them)`
      : counts.error === 1
        ? 'its only row is in error'
        : `every row is in error (${plural(counts.error, 'row')})`;
    blocks.push(
      section(
        `:x: *Nothing to import:* ${which}. Roster posts the error file below, with each row's line and reason: fix the rows there and drop the file here again.`,
      ),
    );
  } else if (csvImport.status === 'completed' && changes === 0) {
    blocks.push(context(':white_check_mark: Nothing to import: no row would change anything in Roster.'));
  } else if (csvImport.status === 'previewed') {
    blocks.push(
      actions(
        `csv_import:${csvImport.id}`,
        button(
          `Import ${plural(changes, 'row')}`,
          CSV_ACTIONS.start,
          startValue(csvImport.id, csvImport.previewRevision),
          'primary',
        ),
        button('Cancel', CSV_ACTIONS.cancel, csvImport.id),
      ),
    );
  }
  blocks.push(templateButtons());
  return { text, blocks };
}

/** A text progress bar: ▓ for done, ░ for to do. */
export function progressBar(done: number, total: number, width = 20): string {
  const ratio = total > 0 ? Math.min(1, done / total) : 1;
  const filled = Math.round(ratio * width);
  return `${'▓'.repeat(filled)}${'░'.repeat(width - filled)} ${Math.floor(ratio * 100)}%`;
}

export function progressMessage(fileName: string, done: number, total: number, seconds: number) {
  const text = `Importing ${esc(fileName)}: ${n(done)} of ${n(total)} rows`;
  return {
    text,
    blocks: [
      section(`:inbox_tray: *Importing ${esc(fileName)}*\n\`${progressBar(done, total)}\``),
      context(`${n(done)} of ${plural(total, 'row')} applied · ${Math.round(seconds)} s`),
    ],
  };
}

export function stoppedMessage(importId: string, fileName: string, done: number, total: number, ref: string) {
  const text = `The import of ${esc(fileName)} stopped at ${n(done)} of ${n(total)} rows.`;
  return {
    text,
    blocks: [
      section(
        `:warning: *The import of ${esc(fileName)} stopped* at ${n(done)} of ${plural(total, 'row')} (\`${progressBar(done, total)}\`). Rows already applied are kept; resuming applies the rest, none twice. Reference: \`${ref}\`.`,
      ),
      actions(`csv_import_resume:${importId}`, button('Resume', CSV_ACTIONS.resume, importId, 'primary')),
    ],
  };
}

/** The summary that replaces the progress message when the import is done. */
/** Users an import left locked, and the seats free now: what Unlock and invite all would need. */
export type StillLocked = { total: number; paid: number; free: number; noLogin?: number };

export function summaryMessage(summary: ImportSummary, seconds: number, locked?: StillLocked) {
  const { counts, csvImport } = summary;
  const text = `Imported ${esc(csvImport.fileName)}: ${n(counts.created)} created, ${n(counts.updated)} updated, ${n(counts.kept)} unchanged, ${n(counts.failed)} in error.`;
  const lines = [
    `• *${n(counts.created)}* created`,
    `• *${n(counts.updated)}* updated`,
    `• *${n(counts.kept)}* unchanged`,
    `• *${n(counts.failed)}* in error${counts.noSeat ? ` (${n(counts.noSeat)} because no paid seat was free)` : ''}`,
  ];
  if (counts.invited) lines.push(`• ${plural(counts.invited, 'invitation')} on the way`);
  const blocks: Block[] = [
    section(
      `:white_check_mark: *Imported ${esc(csvImport.fileName)}* in ${Math.max(1, Math.round(seconds))} s`,
    ),
    section(lines.join('\n')),
  ];
  if (summary.firstErrors.length) {
    blocks.push(section(`*Errors*\n${errorLines(summary.firstErrors, counts.failed)}`));
  }
  if (locked?.total) blocks.push(...unlockAllBlocks(csvImport.id, locked));
  blocks.push(
    context(
      `${
        counts.failed
          ? 'Fix the rows in the error file and drop it here again: rows already imported come out unchanged.'
          : 'Importing the same file again changes nothing.'
      } \`/people EMAIL\` opens anyone's card.`,
    ),
  );
  return { text, blocks };
}

/** The limits the reader enforces, as the modal states them: "1 GB and 1,000,000 rows". */
const FILE_LIMITS = `${formatBytes(MAX_FILE_BYTES).replace(/\.0 /, ' ')} and ${n(MAX_ROWS)} rows`;

export function importModal() {
  return {
    type: 'modal' as const,
    callback_id: IMPORT_VIEW,
    title: { type: 'plain_text' as const, text: 'Import from CSV' },
    submit: { type: 'plain_text' as const, text: 'Preview' },
    close: { type: 'plain_text' as const, text: 'Cancel' },
    blocks: [
      section(
        `Upload a \`.csv\` file of users and contacts (up to ${FILE_LIMITS}). Roster checks every row and sends you a preview in a DM; nothing is imported until you click *Import* there.`,
      ),
      {
        type: 'input',
        block_id: 'file',
        label: { type: 'plain_text', text: 'CSV file' },
        element: { type: 'file_input', action_id: 'file', filetypes: ['csv'], max_files: 1 },
      } as unknown as Block,
      context(
        'Columns: `type` (user or contact), `first_name`, `last_name`, `email`, `role`, `permission_set`, `title`, `company`, `phone`, `notes`, `send_invitation`. `email` and a name column are required.',
      ),
      templateButtons(),
    ],
  };
}

/**
 * The offer to unlock and invite everyone an import left locked, with the seats it needs said first, and
 * what happens when there are not enough.
 */
export function unlockAllBlocks(importId: string, locked: StillLocked): Block[] {
  const short = Math.max(0, locked.paid - locked.free);
  const needs = locked.paid
    ? `${plural(locked.paid, 'of them needs', 'of them need')} a paid seat; ${plural(locked.free, 'seat is', 'seats are')} free.${short ? ` The first ${n(locked.free)} get one; raise the limit with \`/seats N\` for the other ${n(short)}.` : ''}`
    : 'None of them needs a paid seat.';
  const noLogin = locked.noLogin
    ? ` ${plural(locked.noLogin, 'has', 'have')} no login email (the file gave a name): set it on their card with \`/people\` first.`
    : '';
  return [
    section(`*${plural(locked.total, 'person is', 'people are')} imported locked.* ${needs}${noLogin}`),
    actions(`csv_unlock:${importId}`, {
      ...button('Unlock and invite all', CSV_ACTIONS.unlockAll, importId, 'primary'),
      confirm: {
        title: plain('Unlock and invite?'),
        text: mrkdwn(`Invite ${plural(locked.total, 'person', 'people')} now. ${needs}`),
        confirm: plain('Unlock and invite'),
        deny: plain('Cancel'),
      },
    } as ReturnType<typeof button>),
  ];
}

/** What Unlock and invite all did, said when it is done. */
export function unlockedText(
  fileName: string,
  { invited, left, noLogin, outside }: { invited: number; left: number; noLogin: number; outside: number },
): string {
  const n = (v: number) => v.toLocaleString('en-US');
  return `${invited ? `:envelope: Unlocked and invited ${n(invited)} ${invited === 1 ? 'person' : 'people'} from ${fileName}.` : `Nobody from ${fileName} was left to unlock.`}${left ? ` ${n(left)} still locked: no paid seat was free for them. Raise the limit with \`/seats N\` and press *Unlock and invite all* again.` : ''}${noLogin ? ` ${n(noLogin)} have no login email: set it on their card (\`/people\`), then unlock them there.` : ''}${outside ? ` ${n(outside)} ${outside === 1 ? 'has an email' : 'have emails'} outside the allowed email domains, so they stay locked; an admin can change the domains with \`/seats settings\`.` : ''}`;
}

/** Said while Unlock and invite all works, a hundred people at a time. */
export function unlockingText(fileName: string, invited: number): string {
  return `:hourglass_flowing_sand: Unlocking and inviting the people of ${fileName} who are still locked, a hundred at a time: ${invited.toLocaleString('en-US')} so far.`;
}
