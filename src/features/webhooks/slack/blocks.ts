import type { View } from '@slack/types';
import { hostOnlyUrl } from '../../../shared/outbound.ts';
import {
  type Block,
  button,
  context,
  esc,
  escFit,
  plain,
  section,
  slackDate,
} from '../../../slack/blocks.ts';
import type { Attempt, Endpoint } from '../webhook.endpoints.ts';
import { MAX_ENDPOINTS, MAX_URL_LENGTH } from '../webhook.endpoints.ts';
import { WEBHOOK_EVENT_TYPES, WEBHOOK_EVENTS } from '../webhook.events.ts';

/**
 * An endpoint's URL as the list shows it. The deployment's (WEBHOOK_URL) serves every workspace and is set by
 * whoever runs Roster: each workspace's admins see its scheme and host only, not a key its path or query may hold.
 */
export const shownUrl = (e: Pick<Endpoint, 'managed' | 'url'>) =>
  escFit(e.managed ? hostOnlyUrl(e.url) : e.url, 300);

export const WEBHOOK_ACTIONS = {
  open: 'webhooks_open',
  add: 'webhooks_add',
  log: 'webhooks_log',
  test: 'webhooks_test',
  disable: 'webhooks_disable',
  enable: 'webhooks_enable',
  remove: 'webhooks_delete',
} as const;

export const WEBHOOK_VIEWS = {
  list: 'webhooks_modal',
  add: 'webhooks_add_modal',
  secret: 'webhooks_secret_modal',
  log: 'webhooks_log_modal',
} as const;

const DOCS =
  'Receivers verify each request with the endpoint’s signing secret: README, “Connect your product”.';

function statusLine(e: Endpoint): string {
  if (!e.enabled) return `:red_circle: Off${e.disabledReason ? ` (${escFit(e.disabledReason, 200)})` : ''}`;
  if (e.failingSince) return `:warning: On, failing since ${slackDate(e.failingSince)}`;
  return ':large_green_circle: On';
}

function lastLine(e: Endpoint): string {
  if (!e.lastAttemptAt) return 'nothing sent yet';
  const answer = e.lastResponseStatus ? `HTTP ${e.lastResponseStatus}` : 'no answer';
  return `last attempt ${slackDate(e.lastAttemptAt)}: ${e.lastOutcome ?? ''} (${answer})`;
}

function eventsLine(e: Endpoint): string {
  return e.events?.length ? e.events.map((t) => `\`${t}\``).join(', ') : 'every event';
}

/** The Webhooks modal: each endpoint with its state and buttons; `notice` says what just happened. */
export function endpointsModal(endpoints: Endpoint[], notice?: string): View {
  const own = endpoints.filter((e) => !e.managed).length;
  const blocks: Block[] = [
    {
      type: 'section',
      text: {
        type: 'mrkdwn',
        text: '*Webhook endpoints* receive every people change, signed (Standard Webhooks).',
      },
      ...(own < MAX_ENDPOINTS
        ? { accessory: button('Add endpoint', WEBHOOK_ACTIONS.add, 'add', 'primary') }
        : {}),
    },
    context(DOCS),
  ];
  if (notice) blocks.push(section(notice));
  if (endpoints.length === 0)
    blocks.push(section('No endpoints yet. *Add endpoint* to connect your product.'));
  for (const e of endpoints) {
    const lines = [
      `*${shownUrl(e)}*`,
      `${statusLine(e)} · ${eventsLine(e)}`,
      `${e.pending} waiting · ${lastLine(e)}`,
      e.managed
        ? '_Managed by the deployment (WEBHOOK_URL): change or remove it there._'
        : `_Added by <@${e.createdBy}> ${slackDate(e.createdAt)}_`,
    ];
    blocks.push({ type: 'divider' }, section(lines.join('\n')));
    const buttons = [
      button('Delivery log', WEBHOOK_ACTIONS.log, e.id),
      button('Send test event', WEBHOOK_ACTIONS.test, e.id),
      // The deployment's endpoint serves every workspace: turned off only where it is set.
      ...(e.enabled
        ? e.managed
          ? []
          : [button('Disable', WEBHOOK_ACTIONS.disable, e.id)]
        : [button('Enable', WEBHOOK_ACTIONS.enable, e.id, 'primary')]),
    ];
    const remove = e.managed
      ? []
      : [
          {
            ...button('Delete', WEBHOOK_ACTIONS.remove, e.id, 'danger'),
            confirm: {
              title: plain('Delete this endpoint?'),
              text: plain('Roster stops sending to it and forgets its log. This cannot be undone.'),
              confirm: plain('Delete'),
              deny: plain('Keep it'),
              style: 'danger' as const,
            },
          },
        ];
    blocks.push({ type: 'actions', block_id: `endpoint_${e.id}`, elements: [...buttons, ...remove] });
  }
  return {
    type: 'modal',
    callback_id: WEBHOOK_VIEWS.list,
    title: plain('Webhooks'),
    close: plain('Close'),
    blocks,
  };
}

/** The form that adds an endpoint: its URL and the events it takes. */
export function addEndpointModal(): View {
  return {
    type: 'modal',
    callback_id: WEBHOOK_VIEWS.add,
    title: plain('Add webhook endpoint'),
    submit: plain('Add'),
    close: plain('Back'),
    blocks: [
      {
        type: 'input',
        block_id: 'url',
        label: plain('URL'),
        hint: plain('Where Roster POSTs each event. https:// only.'),
        element: {
          type: 'plain_text_input',
          action_id: 'url',
          max_length: MAX_URL_LENGTH,
          placeholder: plain('https://example.com/roster-webhooks'),
        },
      },
      {
        type: 'input',
        block_id: 'events',
        optional: true,
        label: plain('Events'),
        hint: plain('Empty: every event, including any Roster adds later.'),
        element: {
          type: 'multi_static_select',
          action_id: 'events',
          placeholder: plain('Every event'),
          options: WEBHOOK_EVENT_TYPES.map((t) => ({
            text: plain(t),
            description: plain(WEBHOOK_EVENTS[t].slice(0, 75)),
            value: t,
          })),
        },
      },
    ],
  };
}

/** Shown once, right after the endpoint is added: its signing secret. */
export function secretModal(endpoint: Endpoint, secret: string): View {
  return {
    type: 'modal',
    callback_id: WEBHOOK_VIEWS.secret,
    title: plain('Signing secret'),
    close: plain('Done'),
    blocks: [
      section(
        `:white_check_mark: Roster now sends ${eventsLine(endpoint)} to *${escFit(endpoint.url, 300)}*.`,
      ),
      section('*Copy the signing secret now.* Roster will not show it again:'),
      section(`\`\`\`${secret}\`\`\``),
      context(`${DOCS} Lost it? Delete the endpoint and add it again for a new secret.`),
    ],
  };
}

const OUTCOME_ICON: Record<Attempt['outcome'], string> = {
  delivered: ':white_check_mark:',
  retrying: ':repeat:',
  failed: ':x:',
};

/** The latest attempts for an endpoint: when, which event, the answer and how long it took. */
export function logModal(endpoint: Endpoint, attempts: Attempt[]): View {
  const blocks: Block[] = [
    section(`*${shownUrl(endpoint)}*\n${statusLine(endpoint)} · ${endpoint.pending} waiting`),
  ];
  if (attempts.length === 0) blocks.push(context('No attempts yet.'));
  for (const a of attempts) {
    const answer = a.responseStatus ? `HTTP ${a.responseStatus}` : escFit(a.error ?? 'no answer', 150);
    blocks.push(
      context(
        `${OUTCOME_ICON[a.outcome]} ${slackDate(a.at, '{date_short} {time_secs}')} · \`${a.eventType}\` · ${answer} · ${a.durationMs} ms · attempt ${a.attempt} · ${a.outcome} · \`${a.msgId}\``,
      ),
    );
  }
  return {
    type: 'modal',
    callback_id: WEBHOOK_VIEWS.log,
    title: plain('Delivery log'),
    close: plain('Back'),
    blocks,
  };
}

/** The DM admins get when Roster turns an endpoint off after it failed for too long. */
export function webhookDisabledText(
  url: string,
  reason: string | null,
  last?: { response_status: number | null; error: string | null },
): string {
  const answer = last ? (last.response_status ? `HTTP ${last.response_status}` : (last.error ?? '')) : '';
  return [
    `:warning: Roster turned off the webhook endpoint ${esc(url)}: it has answered nothing but failures${reason ? ` (${esc(reason)})` : ''}${answer ? `, the last one ${esc(answer)}` : ''}.`,
    'Events are no longer queued for it. Fix the receiver, then enable it again in Roster’s App Home → Webhooks: what was still waiting is sent then.',
  ].join('\n');
}

/** The App Home's entry to the webhooks, under Settings. */
export function webhooksHomeBlock(): Block {
  return {
    type: 'section',
    text: { type: 'mrkdwn', text: '*Webhooks*: send every people change to your product, signed.' },
    accessory: button('Webhooks', WEBHOOK_ACTIONS.open, 'webhooks'),
  };
}
