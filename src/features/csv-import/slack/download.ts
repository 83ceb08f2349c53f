import { DomainError } from '../../../shared/errors.ts';
import { formatBytes, isCsvName, MAX_FILE_BYTES } from '../csv-reader.ts';

/** What Slack says about a file (files.info, a file_share event, a file_input). */
export type SlackFileInfo = {
  id?: string;
  name?: string;
  title?: string;
  filetype?: string;
  size?: number;
  url_private_download?: string;
  url_private?: string;
  /** Who uploaded it. */
  user?: string;
  /** A file kept by another service and only linked in Slack (`files.remote.add`): its URLs are that service's. */
  is_external?: boolean;
  mode?: string;
};

export function fileName(file: SlackFileInfo): string {
  return file.name || file.title || 'the file';
}

/**
 * Rejects a file by what Slack says of it, before a byte is read: kept outside Slack, not a .csv, or over
 * the size limit.
 */
export function checkFileInfo(file: SlackFileInfo): void {
  const name = fileName(file);
  if (file.is_external || file.mode === 'external') {
    throw new DomainError(
      'file_rejected',
      `${name} is kept by another service and only linked in Slack, so Roster cannot read it. Download it as a .csv file and upload that file here.`,
    );
  }
  if (!isCsvName(name, file.filetype)) {
    throw new DomainError(
      'file_rejected',
      `${name} is not a CSV file. Roster imports .csv files: in Excel or Google Sheets, use File › Save as / Download › CSV.`,
    );
  }
  if ((file.size ?? 0) > MAX_FILE_BYTES) {
    throw new DomainError(
      'file_rejected',
      `${name} is ${formatBytes(file.size ?? 0)}; the limit is ${formatBytes(MAX_FILE_BYTES)}. Split it into smaller files and upload them one by one.`,
    );
  }
}

/**
 * Whether the bot token may go with a request to `url`: Slack's own file hosts over https, or the host of
 * the Web API Roster is set to call (SLACK_API_URL). A file's URL comes from Slack's description of it, and
 * the token must never reach another service's host.
 */
function isSlackFileUrl(url: string, apiUrl: string): boolean {
  let target: URL;
  try {
    target = new URL(url);
  } catch {
    return false;
  }
  if (target.host === new URL(apiUrl).host) return true;
  const host = target.hostname.toLowerCase();
  return (
    target.protocol === 'https:' &&
    ['slack.com', 'slack-gov.com'].some((domain) => host === domain || host.endsWith(`.${domain}`))
  );
}

/**
 * Downloads a Slack file with the bot token as a stream of chunks, read as they arrive (never the whole
 * file at once), stopping as soon as it passes the size limit, whatever size Slack announced. A URL
 * outside Slack's hosts is refused before anything is sent.
 */
export async function downloadSlackFile(
  file: SlackFileInfo,
  slack: { botToken: string; apiUrl: string },
  maxBytes = MAX_FILE_BYTES,
): Promise<AsyncIterable<Uint8Array>> {
  const url = file.url_private_download ?? file.url_private;
  if (!url) throw new Error(`Slack gave no download URL for file ${file.id}`);
  if (!isSlackFileUrl(url, slack.apiUrl)) {
    throw new DomainError(
      'file_rejected',
      `${fileName(file)} is not stored in Slack, so Roster cannot read it. Download it as a .csv file and upload that file here.`,
    );
  }
  const res = await fetch(url, { headers: { authorization: `Bearer ${slack.botToken}` } });
  if (res.status === 404) {
    throw new DomainError('file_rejected', `${fileName(file)} is no longer in Slack; upload it again.`);
  }
  if (!res.ok || !res.body) throw new Error(`downloading file ${file.id} failed with HTTP ${res.status}`);
  if (res.headers.get('content-type')?.includes('text/html')) {
    // Slack answers a download it does not authorise with its sign-in page.
    await res.body.cancel();
    throw new Error(`Slack sent a web page instead of file ${file.id}: is the files:read scope granted?`);
  }
  const reader = res.body.getReader();
  return (async function* () {
    let size = 0;
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) return;
        size += value.byteLength;
        if (size > maxBytes) {
          throw new DomainError(
            'file_rejected',
            `${fileName(file)} is over the ${formatBytes(maxBytes)} limit. Split it into smaller files and upload them one by one.`,
          );
        }
        yield value;
      }
    } finally {
      await reader.cancel().catch(() => {});
    }
  })();
}
