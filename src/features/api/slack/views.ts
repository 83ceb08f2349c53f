import type { View } from '@slack/types';
import { type Block, context, divider, esc, plain, section, slackDate } from '../../../slack/blocks.ts';
import type { IApiToken } from '../api-token.entity.ts';
import { MAX_TOKENS, TOKEN_NAME_MAX } from '../api-token.service.ts';
import { API_TOKEN_ACTIONS, API_TOKEN_NAME_BLOCK, API_TOKENS_VIEW } from './blocks.ts';

function tokenLine(token: IApiToken): string {
  const used = token.lastUsedAt ? `last used ${slackDate(token.lastUsedAt)}` : 'never used';
  const origin = token.managed
    ? 'Managed by the deployment (`API_TOKEN`): change or remove it there'
    : `created by <@${token.createdBy}> ${slackDate(token.createdAt)}`;
  return `*${esc(token.name)}*  \`${esc(token.hint)}…\`\n${origin}; ${used}.`;
}

/**
 * The account's working API tokens, each with Revoke (except the deployment's), and a field to create one.
 * `notice` is a line at the top saying what just happened or why something was refused.
 */
export function tokensModal(tokens: IApiToken[], apiUrl: string, notice?: string): View {
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
        ? section(tokenLine(token))
        : {
            type: 'section',
            text: { type: 'mrkdwn', text: tokenLine(token) },
            accessory: {
              type: 'button',
              text: plain('Revoke'),
              action_id: API_TOKEN_ACTIONS.revoke,
              value: token.id,
              style: 'danger',
              confirm: {
                title: plain('Revoke this token?'),
                text: plain(
                  `Requests with “${token.name.slice(0, 200)}” fail from now on. This cannot be undone.`,
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
export function createdModal(name: string, token: string): View {
  return {
    type: 'modal',
    title: plain('API token created'),
    close: plain('Done'),
    blocks: [
      section(
        `:key: *${esc(name)}* is ready. Copy it now: Roster keeps only a fingerprint of it and cannot show it again.`,
      ),
      section(`\`\`\`${token}\`\`\``),
      context(
        'Send it as `Authorization: Bearer <token>`. Keep it in a secret store, never in code. Revoke it from App Home → API tokens when it is no longer needed.',
      ),
    ],
  };
}
