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
): Promise<void> {
  const { size } = await stat(file.path);
  const target = await slack.files.getUploadURLExternal({ filename: file.filename, length: size });
  if (!target.upload_url || !target.file_id) throw new Error('files.getUploadURLExternal gave no upload URL');
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
