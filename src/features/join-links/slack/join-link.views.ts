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
import { ROLE_LABEL } from '../../seats/slack/request.message.ts';
import type { IJoinLink } from '../join-link.entity.ts';

export const JOINLINK_VIEW = 'joinlink_modal';
export const JOIN_ACTIONS = { join: 'joinlink_join', revoke: 'joinlink_revoke' } as const;

export function joinLinkModal(opts: { channelId?: string; defaultDomains: string[] }): View {
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
          initial_value: '30',
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

function terms(link: IJoinLink): string {
  const left = link.maxUses
    ? `${link.maxUses - link.uses} of ${link.maxUses} places left`
    : 'no limit on people';
  const domains = link.allowedEmailDomains.length
    ? ` · only ${link.allowedEmailDomains.map(esc).join(', ')} addresses`
    : '';
  return `${ROLE_LABEL[link.role]} · expires ${slackDate(link.expiresAt)} · ${left}${domains}`;
}

/** The message in the channel: Join button and URL while the link works, a plain notice after. */
export function joinLinkMessage(
  link: IJoinLink,
  url: string | null,
  accountName: string,
): { text: string; blocks: Block[] } {
  if (link.revokedAt || !url) {
    const why = link.revokedAt
      ? `revoked by <@${link.revokedBy}> ${slackDate(link.revokedAt)}`
      : `expired ${slackDate(link.expiresAt)}`;
    return {
      text: `This join link was ${link.revokedAt ? 'revoked' : 'expired'}.`,
      blocks: [
        section(
          `:no_entry_sign: This join link for *${esc(accountName)}* was ${why}. Ask an admin for a new one.`,
        ),
      ],
    };
  }
  return {
    text: `Join ${accountName} on Roster`,
    blocks: [
      section(
        `:wave: *Join ${esc(accountName)}*\n<@${link.createdBy}> invites this channel to join. Click *Join* to get access with your Slack email, or open <${url}|the join page>.`,
      ),
      actions(`joinlink:${link.id}`, button('Join', JOIN_ACTIONS.join, link.id, 'primary')),
      context(terms(link)),
    ],
  };
}

export function linkListBlocks(links: IJoinLink[], now: Date): Block[] {
  if (links.length === 0) return [section('No join links yet. `/joinlink` posts one in a channel.')];
  const blocks: Block[] = [section('*Join links*')];
  for (const link of links) {
    const state = link.revokedAt
      ? 'revoked'
      : link.expiresAt <= now
        ? 'expired'
        : link.maxUses && link.uses >= link.maxUses
          ? 'full'
          : 'active';
    const line = `${ROLE_LABEL[link.role]}${link.channelId ? ` in <#${link.channelId}>` : ''}: ${link.uses}${link.maxUses ? ` of ${link.maxUses}` : ''} joined, ${state}, expires ${slackDate(link.expiresAt)}`;
    blocks.push(
      state === 'active'
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
