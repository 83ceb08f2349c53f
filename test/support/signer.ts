import { createHmac } from 'node:crypto';

export type SlackSignatureHeaders = { 'x-slack-signature': string; 'x-slack-request-timestamp': string };

/**
 * The headers Slack puts on every request it sends an app: `v0=` and the hex HMAC-SHA256, keyed with the
 * signing secret, of `v0:{timestamp}:{raw body}`; the timestamp is in seconds.
 */
export function signSlackRequest(
  signingSecret: string,
  rawBody: string,
  timestamp: number = Math.floor(Date.now() / 1000),
): SlackSignatureHeaders {
  const signature = createHmac('sha256', signingSecret).update(`v0:${timestamp}:${rawBody}`).digest('hex');
  return { 'x-slack-signature': `v0=${signature}`, 'x-slack-request-timestamp': String(timestamp) };
}
