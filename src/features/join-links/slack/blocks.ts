import { actions, type Block, button, context, esc, section, slackDate } from '../../../slack/blocks.ts';
import { showMore } from '../../../slack/paging.ts';
import type { IAccount } from '../../accounts/account.entity.ts';
import { atDomains } from '../../accounts/allowed-domains.ts';
import { ROLE_LABEL } from '../../people/labels.ts';
import type { IJoinLink } from '../join-link.entity.ts';
import { UNPOSTED_MINUTES } from '../join-link.service.ts';
import { linkState } from '../join-link.terms.ts';

export const JOIN_ACTIONS = {
  join: 'joinlink_join',
  revoke: 'joinlink_revoke',
  more: 'joinlink_more',
} as const;

/** A Show more button's value under `/joinlink list`: the last working link shown, and how many were shown. */
export type LinkPage = { a: string; n: number };

/** A Revoke button's value on a page after the first: the link (`l`) and the page it is on (see LinkPage). */
export type RevokeOnPage = { l: string } & LinkPage;

export const NOT_ADMIN = 'Only admins can post join links.';

/** The account's name as messages say it. */
export const accountName = (account: IAccount): string => account.name ?? 'the account';

function places(link: IJoinLink): string {
  return link.maxUses
    ? `up to ${link.maxUses} ${link.maxUses === 1 ? 'person' : 'people'}`
    : 'no limit on people';
}

function terms(link: IJoinLink): string {
  const domains = link.allowedEmailDomains.length
    ? ` · only ${esc(atDomains(link.allowedEmailDomains))} addresses`
    : '';
  return `Joins as ${ROLE_LABEL[link.role]} · expires ${slackDate(link.expiresAt)} · ${places(link)}${domains}`;
}

/**
 * The message in the channel: the Join button, the URL and the terms while the link works; a plain
 * notice once it is revoked, expired or full. The URL exists only in the first version (its token is
 * not stored), so a notice never shows it.
 */
export function joinLinkMessage(
  link: IJoinLink,
  url: string | null,
  accountName: string,
  now = new Date(),
): { text: string; blocks: Block[] } {
  const state = linkState(link, now);
  if (state !== 'active' || !url) {
    const notice = {
      // No admin revoked it: Roster closed it as its message had not been recorded (see closeUnposted).
      revoked: link.revokedBy
        ? `was revoked by <@${link.revokedBy}> ${link.revokedAt ? slackDate(link.revokedAt) : ''}`
        : 'was closed by Roster',
      expired: `expired ${slackDate(link.expiresAt)}`,
      // Places, not people: a join waiting for an admin (or turned down) holds one too.
      full: `is full (${link.uses} of ${link.maxUses} places used)`,
      active: 'no longer works',
    }[state];
    return {
      text: `This join link ${notice.replace(/<[^>]*\|([^>]*)>/g, '$1')}.`,
      blocks: [
        section(
          `:no_entry_sign: This join link for *${esc(accountName)}* ${notice}. Ask an admin for a new one.`,
        ),
        context(`${ROLE_LABEL[link.role]} · ${link.uses} ${link.uses === 1 ? 'place' : 'places'} used`),
      ],
    };
  }
  return {
    text: `Join ${accountName}: ${url}`,
    blocks: [
      section(
        `:wave: *Join ${esc(accountName)}*\n<@${link.createdBy}> invites this channel to join. Click *Join* to get access with your Slack email.\nNot in Slack, or want another address? Open ${url}`,
      ),
      actions(`joinlink:${link.id}`, button('Join', JOIN_ACTIONS.join, link.id, 'primary')),
      context(terms(link)),
    ],
  };
}

/**
 * `/joinlink list`: each link with its channel, uses, state and expiry, and Revoke while it works; `total`,
 * when more links exist than are shown, says how many are left out.
 */
export function linkListBlocks(
  links: IJoinLink[],
  now: Date,
  note?: string,
  total = links.length,
  page: { more: number; shownBefore: number; after?: string } = { more: 0, shownBefore: 0 },
): Block[] {
  // Past the first page, Revoke carries its page, so the page it was on is the one redrawn.
  const revokeValue = (id: string) =>
    page.after ? JSON.stringify({ l: id, a: page.after, n: page.shownBefore } satisfies RevokeOnPage) : id;
  const blocks: Block[] = note ? [section(note)] : [];
  if (links.length === 0)
    return [...blocks, section('No join links yet. `/joinlink` posts one in a channel.')];
  blocks.push(section('*Join links*'));
  for (const link of links) {
    const state = linkState(link, now);
    const where = `${ROLE_LABEL[link.role]}${link.channelId ? ` in <#${link.channelId}>` : ''}`;
    if (!link.messageTs) {
      // Its message was never recorded: it is being posted this moment, or Roster stopped on the way, and
      // then nobody may have its URL and its message could never be redrawn. It is not shown as working.
      blocks.push(
        section(
          state === 'revoked'
            ? `${where}: *not posted* · closed, nobody can join through it · made ${slackDate(link.createdAt)}`
            : `${where}: *not posted* · made ${slackDate(link.createdAt)}. Unless it is being posted this moment, Roster stopped before posting it: Roster closes it within ${UNPOSTED_MINUTES + 5} minutes of being made and tells you. Post a new one with \`/joinlink\`.`,
        ),
      );
      continue;
    }
    const line = `${where}: ${link.uses}${link.maxUses ? ` of ${link.maxUses}` : ''} ${link.uses === 1 && !link.maxUses ? 'place' : 'places'} used · *${state}* · ${state === 'expired' ? 'expired' : 'expires'} ${slackDate(link.expiresAt)}`;
    blocks.push(
      state === 'active' || state === 'full'
        ? {
            type: 'section',
            text: { type: 'mrkdwn', text: line },
            accessory: button('Revoke', JOIN_ACTIONS.revoke, revokeValue(link.id), 'danger'),
          }
        : section(line),
    );
  }
  const last = links.at(-1);
  if (page.more && last) {
    // Older links that still work, each of which may need revoking: one click away, never out of reach.
    blocks.push(
      context(
        `…and ${page.more} older ${page.more === 1 ? 'link that still works' : 'links that still work'}, then any revoked or expired.`,
      ),
      showMore('joinlink_more', JOIN_ACTIONS.more, {
        a: last.id,
        n: page.shownBefore + links.length,
      } satisfies LinkPage),
    );
    return blocks;
  }
  if (total > page.shownBefore + links.length) {
    // Every link that still works has been shown by now: those left out are closed.
    const left = total - page.shownBefore - links.length;
    blocks.push(context(`…and ${left} more ${left === 1 ? 'link' : 'links'}, revoked or expired.`));
  }
  return blocks;
}

/**
 * Whether a link's channel message was redrawn: now, by a job once Slack allows, or not at all (Roster no
 * longer in its channel, the channel archived, or for another reason).
 */
export type MessageUpdate = 'updated' | 'later' | 'left' | 'archived' | 'failed' | 'none';

/** What the admin reads after revoking: whether it was already revoked, and whether its message says so. */
export function revokedText(link: IJoinLink, already: boolean, message: MessageUpdate): string {
  const where = link.channelId ? ` in <#${link.channelId}>` : '';
  const head = already
    ? `That join link${where} was already revoked.`
    : `:no_entry_sign: Revoked the join link${where}: its button and URL no longer work.`;
  if (message === 'updated') return `${head} Its message says so.`;
  // Never posted (Roster stopped before its message went out): there is no message to say anything.
  if (message === 'none') return head;
  if (message === 'later')
    return `${head} Slack asked Roster to slow down, so its message will say so in a moment.`;
  // The message still shows the button and the URL, which no longer work: the admin may want it gone.
  const stale = 'Clicking Join there tells people the link no longer works.';
  if (message === 'left')
    return `${head} Roster is no longer in <#${link.channelId}>, so its message there still shows them: delete it yourself if you want it gone. ${stale}`;
  if (message === 'archived')
    return `${head} <#${link.channelId}> is archived, so its message there still shows them. ${stale}`;
  return `${head} Roster could not update its message (it may have been deleted); the link is revoked all the same.`;
}
