import type { WebClient } from '@slack/web-api';

type AnyBody = Record<string, any>;

/**
 * Tells the person behind a Slack request something only they should see: through the request's
 * response_url when it has one, else an ephemeral message in the channel, else a DM from the bot.
 */
export async function tellPerson(client: WebClient, body: AnyBody, text: string): Promise<void> {
  const responseUrl: string | undefined = body.response_url ?? body.response_urls?.[0]?.response_url;
  const user: string | undefined = body.user_id ?? body.user?.id;
  if (responseUrl) {
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
      // The bot may not be in that channel; a DM still reaches the person.
    }
  }
  await client.chat.postMessage({ channel: user, text });
}
