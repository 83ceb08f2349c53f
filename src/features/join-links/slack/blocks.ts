import type { View } from '@slack/types';
import {
  actions,
  type Block,
  button,
  context,
  esc,
  plain,
  section,
  slackDate,
} from '../../../slack/blocks.ts';
import { roleInput } from '../../../slack/inputs.ts';
import { ROLE_LABEL } from '../../people/labels.ts';
import type { IJoinLink } from '../join-link.entity.ts';
import { linkState, MAX_DOMAINS_TEXT } from '../join-link.service.ts';

export const JOINLINK_VIEW = 'joinlink_modal';
export const JOIN_ACTIONS = { join: 'joinlink_join', revoke: 'joinlink_revoke' } as const;

export function joinLinkModal(opts: {
  channelId?: string;
  defaultDomains: string[];
  /** The account's default terms for new links. */
  expiryDays?: number;
  maxUses?: number | null;
}): View {
  return {
    type: 'modal',
    callback_id: JOINLINK_VIEW,
    title: plain('Post a join link'),
    submit: plain('Post'),
    close: plain('Cancel'),
    blocks: [
      roleInput('People join as'),
      {
        type: 'input',
        block_id: 'expiry',
        label: plain('Expires after (days)'),
        element: {
          type: 'number_input',
          action_id: 'expiry',
          is_decimal_allowed: false,
          min_value: '1',
          max_value: '365',
          initial_value: String(opts.expiryDays ?? 30),
        },
      },
      {
        type: 'input',
        block_id: 'max_uses',
        optional: true,
        label: plain('Maximum number of people'),
        hint: plain('Leave empty for no limit.'),
        element: {
          type: 'number_input',
          action_id: 'max_uses',
          is_decimal_allowed: false,
          min_value: '1',
          max_value: '100000',
          ...(opts.maxUses ? { initial_value: String(opts.maxUses) } : {}),
        },
      },
      {
        type: 'input',
        block_id: 'domains',
        optional: true,
        label: plain('Allowed email domains'),
        hint: plain('For example acme.com, acme.co.uk. Empty: anyone with the link.'),
        element: {
          type: 'plain_text_input',
          action_id: 'domains',
          max_length: MAX_DOMAINS_TEXT,
          ...(opts.defaultDomains.length ? { initial_value: opts.defaultDomains.join(', ') } : {}),
        },
      },
      {
        type: 'input',
        block_id: 'channel',
        label: plain('Post it in'),
        element: {
          type: 'conversations_select',
          action_id: 'channel',
          default_to_current_conversation: true,
          filter: { include: ['public', 'private'], exclude_bot_users: true },
          ...(opts.channelId ? { initial_conversation: opts.channelId } : {}),
        },
      },
    ],
  };
}

function places(link: IJoinLink): string {
  return link.maxUses
    ? `up to ${link.maxUses} ${link.maxUses === 1 ? 'person' : 'people'}`
    : 'no limit on people';
}

function terms(link: IJoinLink): string {
  const domains = link.allowedEmailDomains.length
    ? ` · only ${link.allowedEmailDomains.map((d) => `@${esc(d)}`).join(', ')} addresses`
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
      revoked: `was revoked by <@${link.revokedBy}> ${link.revokedAt ? slackDate(link.revokedAt) : ''}`,
      expired: `expired ${slackDate(link.expiresAt)}`,
      full: `is full (${link.uses} of ${link.maxUses} joined)`,
      active: 'no longer works',
    }[state];
    return {
      text: `This join link ${notice.replace(/<[^>]*\|([^>]*)>/g, '$1')}.`,
      blocks: [
        section(
          `:no_entry_sign: This join link for *${esc(accountName)}* ${notice}. Ask an admin for a new one.`,
        ),
        context(`${ROLE_LABEL[link.role]} · ${link.uses} joined`),
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

/** `/joinlink list`: each link with its channel, uses, state and expiry, and Revoke while it works. */
export function linkListBlocks(links: IJoinLink[], now: Date, note?: string): Block[] {
  const blocks: Block[] = note ? [section(note)] : [];
  if (links.length === 0)
    return [...blocks, section('No join links yet. `/joinlink` posts one in a channel.')];
  blocks.push(section('*Join links*'));
  for (const link of links) {
    const state = linkState(link, now);
    const line = `${ROLE_LABEL[link.role]}${link.channelId ? ` in <#${link.channelId}>` : ''}: ${link.uses}${link.maxUses ? ` of ${link.maxUses}` : ''} joined · *${state}* · ${state === 'expired' ? 'expired' : 'expires'} ${slackDate(link.expiresAt)}`;
    blocks.push(
      state === 'active' || state === 'full'
        ? {
            type: 'section',
            text: { type: 'mrkdwn', text: line },
            accessory: button('Revoke', JOIN_ACTIONS.revoke, link.id, 'danger'),
          }
        : section(line),
    );
  }
  return blocks;
}
