import type { App } from '@slack/bolt';
import type { Logger } from '../shared/logger.ts';
import { surfaceOf, teamIdOf, userIdOf } from './context.ts';

type AnyBody = Record<string, any>;

/**
 * Whether `url` is one of Slack's response_urls: on https://hooks.slack.com, or on the host Roster reaches
 * Slack's Web API at (SLACK_API_URL: a stand-in in tests, or https://hooks.<that host> for a Slack of
 * its own such as GovSlack). Anything else would have Roster post wherever a payload pointed it.
 */
export function isSlackResponseUrl(url: unknown, apiUrl: string): boolean {
  if (typeof url !== 'string') return false;
  let target: URL;
  let api: URL;
  try {
    target = new URL(url);
    api = new URL(apiUrl);
  } catch {
    return false;
  }
  if (target.username || target.password) return false;
  return (
    target.origin === 'https://hooks.slack.com' ||
    target.origin === api.origin ||
    (api.protocol === 'https:' && target.origin === `https://hooks.${api.host}`)
  );
}

/** Every response_url a request carries: a command's or a click's, and a form's `response_urls`. */
export function responseUrlsOf(body: AnyBody): unknown[] {
  const urls: unknown[] = [body.response_url];
  if (Array.isArray(body.response_urls)) for (const r of body.response_urls) urls.push(r?.response_url);
  return urls.filter((url) => url !== undefined && url !== null && url !== '');
}

/** Only the origin, for the log: the rest of a response_url is as good as a token for 30 minutes. */
function originOf(url: unknown): string {
  try {
    return new URL(String(url)).origin;
  } catch {
    return 'not a URL';
  }
}

/**
 * A request whose response_url is not Slack's is acknowledged and otherwise ignored, with a warning:
 * Bolt's respond() and Roster's own replies post to that URL, and Slack never sends any other. Registered
 * first, so nothing reads or writes anything for such a request.
 */
export function refuseForeignResponseUrls(app: App, apiUrl: string, logger: Logger): void {
  app.use(async (args) => {
    const body = args.body as AnyBody;
    const urls = responseUrlsOf(body);
    const foreign = urls.findIndex((url) => !isSlackResponseUrl(url, apiUrl));
    if (foreign < 0) {
      await args.next();
      return;
    }
    logger.warn(
      {
        team: teamIdOf(body) ?? null,
        user: userIdOf(body) ?? null,
        surface: surfaceOf(body),
        host: originOf(urls[foreign]),
      },
      'a Slack request whose response_url is not on Slack was ignored',
    );
    const ack = (args as { ack?: (response?: unknown) => Promise<void> }).ack;
    await ack?.();
  });
}
