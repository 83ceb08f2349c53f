import type { WebClient } from '@slack/web-api';
import { asDomainError } from '../shared/errors.ts';
import { referenceId } from '../shared/ids.ts';
import type { JobQueue } from '../shared/jobs.ts';
import type { Logger } from '../shared/logger.ts';
import { esc } from './blocks.ts';
import { nowOrLater } from './later.ts';
import { isSlackResponseUrl } from './response-url.ts';

type AnyBody = Record<string, any>;

/**
 * Tells the person behind a Slack request something only they should see: through the request's
 * response_url when it has one on Slack, else an ephemeral message in the channel, else a DM from the bot.
 * The DM waits for Slack when Slack asks Roster to slow down (it comes late rather than not at all).
 */
export async function tellPerson(
  jobs: JobQueue,
  client: WebClient,
  body: AnyBody,
  text: string,
): Promise<void> {
  const responseUrl: string | undefined = body.response_url ?? body.response_urls?.[0]?.response_url;
  const user: string | undefined = body.user_id ?? body.user?.id;
  // Only a response_url on Slack is posted to; any other is passed over for the Web API.
  if (responseUrl && isSlackResponseUrl(responseUrl, client.slackApiUrl)) {
    const res = await fetch(responseUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ response_type: 'ephemeral', replace_original: false, text }),
    });
    if (res.ok) return;
  }
  if (!user) return;
  const channel: string | undefined = body.channel_id ?? body.channel?.id;
  if (channel) {
    try {
      await client.chat.postEphemeral({ channel, user, text });
      return;
    } catch {
      // The bot may not be in that channel, or Slack asks Roster to slow down: a DM still reaches the person.
    }
  }
  await nowOrLater(jobs, client, { method: 'chat.postMessage', args: { channel: user, text } });
}

/**
 * Makes the change a form asked for once the form is closed (acknowledged), and tells its submitter the
 * outcome by DM: the confirmation `work` returns (nothing when it returns undefined), a refusal found
 * only now (a DomainError), or, for anything else, that nothing was changed, with a reference to the
 * logged error. The DM waits for Slack when Slack asks Roster to slow down, rather than being dropped.
 */
export async function afterAck(
  deps: { jobs: JobQueue; logger: Logger },
  client: WebClient,
  user: string,
  work: () => Promise<string | undefined>,
  refused: (message: string) => string,
): Promise<void> {
  let text: string | undefined;
  try {
    text = await work();
  } catch (err) {
    // A refusal found only now, the database's seat-limit check included (as the global handler reads it).
    const refusal = asDomainError(err);
    if (refusal) {
      // A refusal's words are plain text and may name people as they were typed (a name like
      // `<https://…|Click here>`): escaped, they read as typed rather than as a link or a mention.
      text = refused(esc(refusal.message));
    } else {
      const ref = referenceId();
      deps.logger.error({ err, ref, user }, 'a form failed after it was acknowledged');
      text = `:warning: Something went wrong on Roster's side and nothing was changed. Please try again in a moment; if it keeps happening, give your admin this reference: \`${ref}\`.`;
    }
  }
  if (text)
    await nowOrLater(deps.jobs, client, { method: 'chat.postMessage', args: { channel: user, text } });
}
