import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { Readable } from 'node:stream';
import type { WebClient } from '@slack/web-api';

/**
 * Uploads a file from disk to a channel, streamed: Slack's three steps (an upload URL for the file's
 * length, the bytes posted there, the upload completed into the channel) without reading the file into
 * memory, as `filesUploadV2` does.
 */
export async function uploadFromDisk(
  slack: WebClient,
  file: { path: string; filename: string; title: string; channel: string; initialComment: string },
  /** Told the file's id before its bytes are sent, so a retry can ask Slack whether it was completed. */
  onFileId?: (fileId: string) => Promise<void>,
): Promise<void> {
  const { size } = await stat(file.path);
  const target = await slack.files.getUploadURLExternal({ filename: file.filename, length: size });
  if (!target.upload_url || !target.file_id) throw new Error('files.getUploadURLExternal gave no upload URL');
  await onFileId?.(target.file_id);
  const posted = await fetch(target.upload_url, {
    method: 'POST',
    headers: { 'content-type': 'application/octet-stream', 'content-length': String(size) },
    body: Readable.toWeb(createReadStream(file.path)) as ReadableStream<Uint8Array>,
    duplex: 'half',
  } as RequestInit & { duplex: 'half' });
  await posted.arrayBuffer();
  if (posted.status !== 200)
    throw new Error(`the upload of ${file.filename} failed with HTTP ${posted.status}`);
  await slack.files.completeUploadExternal({
    files: [{ id: target.file_id, title: file.title }],
    channel_id: file.channel,
    initial_comment: file.initialComment,
  });
}

/**
 * Whether a file Roster began uploading was completed: files.info lists where a file is shared, and Roster
 * shares each upload into the one conversation it names (Slack files a DM under its D… id, which may not
 * be the id Roster gave). False when Slack does not know the file (never completed) or it is shared nowhere.
 */
export async function uploadCompleted(slack: WebClient, fileId: string): Promise<boolean> {
  const info = await slack.files.info({ file: fileId }).catch((err) => {
    if ((err as { data?: { error?: string } }).data?.error === 'file_not_found') return null;
    throw err;
  });
  const file = info?.file as
    | {
        channels?: string[];
        groups?: string[];
        ims?: string[];
        shares?: { public?: Record<string, unknown>; private?: Record<string, unknown> };
      }
    | undefined;
  if (!file) return false;
  const places = [
    ...(file.channels ?? []),
    ...(file.groups ?? []),
    ...(file.ims ?? []),
    ...Object.keys(file.shares?.public ?? {}),
    ...Object.keys(file.shares?.private ?? {}),
  ];
  return places.length > 0;
}
