import type { View } from '@slack/types';
import { type Block, clip, context, divider, esc, plain, section, slackDate } from '../../../slack/blocks.ts';
import type { IApiToken } from '../api-token.entity.ts';
import { MAX_TOKENS, TOKEN_NAME_MAX } from '../api-token.service.ts';
import {
  API_TOKEN_ACTIONS,
  API_TOKEN_EXPIRES_BLOCK,
  API_TOKEN_NAME_BLOCK,
  API_TOKENS_VIEW,
} from './blocks.ts';

const LIFETIME_LABEL: Record<string, string> = {
  '30': '30 days',
  '90': '90 days',
  '365': '1 year',
  never: 'Until revoked',
};
/** What the form's Expires menu starts with. */
const DEFAULT_LIFETIME = '365';

function tokenLine(token: IApiToken, now: Date): string {
  const used = token.lastUsedAt ? `last used ${slackDate(token.lastUsedAt)}` : 'never used';
  const expiry = !token.expiresAt
    ? ''
    : token.expiresAt <= now
      ? `\n:hourglass: Expired ${slackDate(token.expiresAt)}: requests with it fail. Revoke it to reuse its name.`
      : `\nWorks until ${slackDate(token.expiresAt)}.`;
  const origin = token.managed
    ? 'Managed by the deployment (`API_TOKEN`): change or remove it there'
    : `created by <@${token.createdBy}> ${slackDate(token.createdAt)}`;
  return `*${esc(token.name)}*  \`${esc(token.hint)}…\`\n${origin}; ${used}.${expiry}`;
}

/**
 * The account's working API tokens, each with Revoke (except the deployment's), and a field to create one.
 * `notice` is a line at the top saying what just happened or why something was refused.
 */
export function tokensModal(tokens: IApiToken[], apiUrl: string, notice?: string, now = new Date()): View {
  const blocks: Block[] = [];
  if (notice) blocks.push(section(notice));
  blocks.push(
    section(
      `API tokens let your product read this account's people, contacts and audit trail: \`GET ${esc(apiUrl)}/api/v1/people\` with \`Authorization: Bearer <token>\`. Tokens only read; each sees this account alone.`,
    ),
    divider(),
  );
  if (tokens.length === 0) blocks.push(context('No tokens yet.'));
  for (const token of tokens) {
    blocks.push(
      token.managed
        ? section(tokenLine(token, now))
        : {
            type: 'section',
            text: { type: 'mrkdwn', text: tokenLine(token, now) },
            accessory: {
              type: 'button',
              text: plain('Revoke'),
              action_id: API_TOKEN_ACTIONS.revoke,
              value: token.id,
              style: 'danger',
              confirm: {
                title: plain('Revoke this token?'),
                text: plain(
                  `Requests with “${clip(token.name, 200)}” fail from now on. This cannot be undone.`,
                ),
                confirm: plain('Revoke'),
                deny: plain('Keep it'),
                style: 'danger',
              },
            },
          },
    );
  }
  blocks.push(divider(), {
    type: 'input',
    block_id: API_TOKEN_NAME_BLOCK,
    label: plain('New token name'),
    hint: plain(
      `What it is for, e.g. Product sync. The token is shown once, right after you create it. At most ${MAX_TOKENS} tokens.`,
    ),
    element: {
      type: 'plain_text_input',
      action_id: API_TOKEN_NAME_BLOCK,
      max_length: TOKEN_NAME_MAX,
    },
  });
  const option = (value: string) => ({ text: plain(LIFETIME_LABEL[value]!), value });
  blocks.push({
    type: 'input',
    block_id: API_TOKEN_EXPIRES_BLOCK,
    label: plain('Works for'),
    element: {
      type: 'static_select',
      action_id: API_TOKEN_EXPIRES_BLOCK,
      options: Object.keys(LIFETIME_LABEL).map(option),
      initial_option: option(DEFAULT_LIFETIME),
    },
  });
  return {
    type: 'modal',
    callback_id: API_TOKENS_VIEW,
    title: plain('API tokens'),
    submit: plain('Create token'),
    close: plain('Close'),
    blocks,
  };
}

/** The new token, shown this once: Roster keeps only its hash. */
export function createdModal(name: string, token: string, expiresAt: Date | null): View {
  return {
    type: 'modal',
    title: plain('API token created'),
    close: plain('Done'),
    blocks: [
      section(
        `:key: *${esc(name)}* is ready${expiresAt ? ` and works until ${slackDate(expiresAt)}` : ''}. Copy it now: Roster keeps only a fingerprint of it and cannot show it again.`,
      ),
      section(`\`\`\`${token}\`\`\``),
      context(
        'Send it as `Authorization: Bearer <token>`. Keep it in a secret store, never in code. Revoke it from App Home → API tokens when it is no longer needed.',
      ),
    ],
  };
}
