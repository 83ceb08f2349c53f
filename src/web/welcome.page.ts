import type { Config } from '../config.ts';
import { html, page } from './html.ts';
import type { Router } from './router.ts';

/**
 * The server's own address: whoever opens it (someone who just started Roster, or a person who trimmed a
 * link) learns that Roster works in Slack, not here, and where Slack reaches it. Nothing about the account.
 */
export function addWelcomePage(router: Router, config: Config): void {
  const socketMode = Boolean(config.slack.appToken);
  router.add('GET', '/', async () => ({
    html: page(
      // The page names Roster itself: the tab reads "Running · Roster", not "Roster · Roster".
      'Running',
      html`<h1>Roster is running</h1>
<p>Roster works inside Slack: type <code>/invite</code> in any channel, or open Roster's <strong>Home</strong> tab.</p>
<p>Were you sent a link to an invitation or a join link? Open it from the email or Slack message it came in; this page does nothing by itself.</p>
<p class="muted">${
        socketMode
          ? 'Setting Roster up: it reaches Slack over Socket Mode, so Slack needs no address for it.'
          : html`Setting Roster up: Slack's Request URL for it (slash commands, interactivity, events) is <code>${config.publicUrl}/slack/events</code>.`
      }</p>`,
    ),
  }));
}
