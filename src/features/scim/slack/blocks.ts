import { type Block, button, context, cut, escFit, section, slackDate } from '../../../slack/blocks.ts';
import type { Differences, ReconcileReport } from '../scim.reconcile.ts';
import type { PersonSyncState, ScimStatus } from '../scim.service.ts';

export const SCIM_ACTIONS = {
  open: 'scim_open',
  syncNow: 'scim_sync_now',
  disconnect: 'scim_disconnect',
} as const;
export const SCIM_VIEW = 'scim_connect_modal';

const n = (count: number) => count.toLocaleString('en-US');
const people = (count: number) => `${n(count)} ${count === 1 ? 'person' : 'people'}`;

/** One line on the state of the connection and of the people in it. */
export function statusLine(status: ScimStatus): string {
  if (!status.connected) {
    return status.managedByEnv
      ? `Managed by the deployment (SCIM_URL): connecting to ${escFit(status.baseUrl ?? '', 300)}.`
      : 'Not connected. Connect a SCIM 2.0 service to keep its users equal to Roster’s.';
  }
  const { counts } = status;
  const parts = [
    `${n(counts.synced)} synced`,
    `${n(counts.pending)} pending`,
    ...(counts.failed ? [`*${n(counts.failed)} failed*`] : []),
    ...(counts.skipped ? [`${n(counts.skipped)} without a login email`] : []),
  ];
  const problem = status.unusableUrl
    ? `\n:warning: *Syncing stopped: the saved URL can no longer be used.* ${escFit(status.unusableUrl, 400)} Changes made meanwhile are kept and sent once it is connected again.`
    : status.refused
      ? `\n:warning: *Syncing stopped: the service refused the token.* ${escFit(status.refused, 300)} Connect again with a valid token.`
      : status.pausedUntil && status.pausedUntil > new Date()
        ? `\nPaused until ${slackDate(status.pausedUntil, '{time}')}: the service asked Roster to slow down or did not answer.`
        : '';
  return `${status.managed ? 'Managed by the deployment (SCIM_URL). ' : ''}Connected to ${escFit(status.baseUrl ?? '', 300)}: ${parts.join(', ')}.${status.lastReconciledAt ? ` Last full sync ${slackDate(status.lastReconciledAt)}.` : ''}${problem}`;
}

/** The Home tab's section for admins. */
export function scimHomeBlocks(status: ScimStatus): Block[] {
  return [
    {
      type: 'section',
      text: { type: 'mrkdwn', text: '*SCIM provisioning*' },
      accessory: button(status.connected || status.managed ? 'Manage' : 'Connect', SCIM_ACTIONS.open, 'scim'),
    },
    context(statusLine(status)),
  ];
}

/** The person card's line, for admins; nothing without a connection. */
export function personSyncLine(state: PersonSyncState | null): string | null {
  if (!state) return null;
  switch (state.state) {
    case 'synced':
      return `*SCIM:* synced${state.lastSyncedAt ? ` ${slackDate(state.lastSyncedAt)}` : ''}${state.remoteId ? ` (id ${escFit(state.remoteId, 80)})` : ''}`;
    case 'pending':
      return `*SCIM:* pending${state.lastError ? `, retrying after: ${escFit(state.lastError, 300)}` : ''}`;
    case 'failed':
      return `*SCIM:* :warning: failed: ${escFit(state.lastError ?? 'unknown error', 400)}. Fix the person's details, or use *Sync now* in the App Home.`;
    case 'skipped':
      return '*SCIM:* not sent until they have a login email';
  }
}

function namesOf(d: Differences): string {
  if (!d.count) return '';
  const more = d.count - d.names.length;
  return `: ${d.names.map((x) => escFit(x, 80)).join(', ')}${more > 0 ? ` and ${n(more)} more` : ''}`;
}

/** Progress of a Sync now, as its message reads while it runs. */
export function progressMessage(baseUrl: string, done: number, total: number) {
  const text = `:arrows_counterclockwise: Syncing with ${escFit(baseUrl, 300)}: ${n(done)} of ${people(total)} checked.`;
  return { text, blocks: [section(text)] };
}

/** The report of a Sync now: what differed and what Roster did about it. */
export function reportMessage(baseUrl: string, report: ReconcileReport) {
  const lines = [
    report.created.count ? `• Created ${people(report.created.count)}${namesOf(report.created)}` : '',
    report.linked.count
      ? `• Linked ${people(report.linked.count)} who already existed there${namesOf(report.linked)}`
      : '',
    report.updated.count
      ? `• Updated the details of ${people(report.updated.count)}${namesOf(report.updated)}`
      : '',
    report.deactivated.count
      ? `• Deactivated ${people(report.deactivated.count)}${namesOf(report.deactivated)}`
      : '',
    report.reactivated.count
      ? `• Reactivated ${people(report.reactivated.count)}${namesOf(report.reactivated)}`
      : '',
    report.failed.count
      ? `• :warning: Refused for ${people(report.failed.count)}: ${report.failed.errors.map((e) => escFit(e, 200)).join('; ')}`
      : '',
    report.unknown.count
      ? `• ${n(report.unknown.count)} user(s) there are not in Roster (left as they are)${namesOf(report.unknown)}`
      : '',
    report.skipped ? `• ${people(report.skipped)} without a login email, not sent` : '',
    report.busy ? `• ${people(report.busy)} being synced at the same moment, left to that sync` : '',
  ].filter(Boolean);
  const head = report.stopped
    ? `:warning: *Sync with ${escFit(baseUrl, 200)} stopped:* ${escFit(report.stopped, 400)}`
    : `:white_check_mark: *Sync with ${escFit(baseUrl, 200)} done:* ${people(report.users)} in Roster, ${n(report.remoteUsers)} user(s) in the service.`;
  const summary = lines.length
    ? lines.join('\n')
    : report.stopped
      ? 'Nothing was changed before it stopped.'
      : `No differences: all ${people(report.unchanged)} matched.`;
  const text = `${head}\n${summary}`;
  return { text: cut(text, 3000), blocks: [section(cut(text, SECTION_MAX))] };
}

/** A section's text within Slack's 3,000 characters. */
const SECTION_MAX = 2900;

/** Admins are told the token is refused: nothing more is sent until someone connects again. */
export function refusedMessage(baseUrl: string, problem: string, managed: boolean) {
  const text = `:warning: *SCIM provisioning stopped:* ${escFit(baseUrl, 300)} refused Roster's token (${escFit(problem, 400)}). ${managed ? 'Set a valid SCIM_TOKEN and restart Roster.' : 'Open the App Home, *SCIM provisioning* → *Manage*, and connect again with a valid token.'} Changes made meanwhile are kept and sent once it works again.`;
  return { text, blocks: [section(text)] };
}

/** Admins are told the service has been failing for about an hour; Roster keeps trying. */
export function failingMessage(baseUrl: string, problem: string) {
  const text = `:warning: *SCIM provisioning is waiting:* ${escFit(baseUrl, 300)} has been failing for about an hour (${escFit(problem, 400)}). Roster keeps trying every 5 minutes, and the changes made meanwhile are kept and sent once it answers: check the service's status. You will be told when it answers again.`;
  return { text, blocks: [section(text)] };
}

/** Admins are told the service answers again after they were told it kept failing. */
export function answeringMessage(baseUrl: string) {
  const text = `:white_check_mark: *SCIM provisioning works again:* ${escFit(baseUrl, 300)} answers, and the changes kept meanwhile are being sent.`;
  return { text, blocks: [section(text)] };
}

/** Admins are told a connection saved with a URL Roster no longer takes is stopped (see savedUrlProblem). */
export function unusableUrlMessage(problem: string) {
  const text = `:warning: *SCIM provisioning stopped:* ${escFit(problem, 600)} Open the App Home, *SCIM provisioning* → *Manage*, to connect again. Changes made meanwhile are kept and sent once it is connected again.`;
  return { text, blocks: [section(text)] };
}

/** Admins are told which people the service refused. */
export function failuresMessage(baseUrl: string, failed: { name: string; error: string }[]) {
  const shown = failed.slice(0, 5).map((f) => `• ${escFit(f.name, 80)}: ${escFit(f.error, 300)}`);
  const more = failed.length > shown.length ? `\n…and ${n(failed.length - shown.length)} more.` : '';
  const text = `:warning: *${escFit(baseUrl, 200)} refused ${people(failed.length)}:*\n${shown.join('\n')}${more}\nTheir person cards show the error; once their details are fixed they are sent again.`;
  return { text: cut(text, 3000), blocks: [section(cut(text, SECTION_MAX))] };
}

/** Confirmation that a Sync now is queued. */
export const SYNC_QUEUED = 'Sync started: Roster sends you its progress and report by DM.';
export const SYNC_WAITING =
  'A sync is already waiting to start: its report goes to the admin who asked for it.';
