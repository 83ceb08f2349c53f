import type { App, ViewSubmitAction } from '@slack/bolt';
import type { View } from '@slack/types';
import { ErrorCode, type WebClient } from '@slack/web-api';
import { z } from 'zod';
import { plain } from '../../../slack/blocks.ts';
import { roster } from '../../../slack/context.ts';
import { slackErrorCode, slackRefusal } from '../../../slack/errors.ts';
import { roleInput } from '../../../slack/inputs.ts';
import { afterAck } from '../../../slack/notify.ts';
import { firstTime } from '../../../slack/once.ts';
import { atDomains } from '../../accounts/allowed-domains.ts';
import { auditRefusal } from '../../audit/audit.service.ts';
import type { Deps } from '../../feature.ts';
import { ROLE_LABEL } from '../../people/labels.ts';
import type { IJoinLink } from '../join-link.entity.ts';
import type { CreateInput, JoinLinkService } from '../join-link.service.ts';
import { domainsText, MAX_DOMAINS_TEXT, parseDomains } from '../join-link.terms.ts';
import { accountName, joinLinkMessage, NOT_ADMIN } from './blocks.ts';

export const JOINLINK_VIEW = 'joinlink_modal';
/** Slack's ids of public and private channels (a direct message's start with D). */
const CHANNEL_ID = /^[CG][A-Z0-9]{2,30}$/;

/** The form that posts a join link, filled with the account's default terms. */
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
        hint: plain(
          "For example acme.com, acme.co.uk. Empty: anyone with the link. The account's allowed email domains apply too.",
        ),
        element: {
          type: 'plain_text_input',
          action_id: 'domains',
          max_length: MAX_DOMAINS_TEXT,
          ...(opts.defaultDomains.length ? { initial_value: domainsText(opts.defaultDomains) } : {}),
        },
      },
      {
        type: 'input',
        block_id: 'channel',
        label: plain('Post it in'),
        element: {
          type: 'conversations_select',
          action_id: 'channel',
          filter: { include: ['public', 'private'], exclude_bot_users: true },
          // Typed in a direct message, the command chooses nothing: a link is posted in a channel.
          ...(opts.channelId && CHANNEL_ID.test(opts.channelId)
            ? { initial_conversation: opts.channelId, default_to_current_conversation: true }
            : {}),
        },
      },
    ],
  };
}

const modalValues = z.object({
  role: z.enum(['employee', 'contractor', 'client'], { message: 'Choose a role.' }),
  expiry: z.coerce
    .number({ message: 'A whole number of days.' })
    .int('A whole number of days.')
    .min(1, 'At least 1 day.')
    .max(365, 'At most 365 days.'),
  max_uses: z.string().transform((text, ctx) => {
    if (text.trim() === '') return null;
    const n = Number(text);
    const problem = !Number.isInteger(n)
      ? 'A whole number, or empty.'
      : n < 1
        ? 'At least 1, or empty for no limit.'
        : n > 100_000
          ? 'At most 100000.'
          : null;
    if (problem) ctx.addIssue({ code: 'custom', message: problem });
    return n;
  }),
  // Slack's own ids for public and private channels; a direct message is no place for a link.
  channel: z
    .string({ message: 'Choose a channel.' })
    .refine((id) => !id.startsWith('D'), {
      message: 'A join link is posted in a channel, not a direct message. Choose a channel.',
    })
    .regex(CHANNEL_ID, 'Choose a channel.'),
});

/** The modal's values as the service's input, or the errors to show on its fields. */
function readModal(
  values: ViewSubmitAction['view']['state']['values'],
): { ok: true; input: CreateInput } | { ok: false; errors: Record<string, string> } {
  const parsed = modalValues.safeParse({
    role: values.role?.role?.selected_option?.value,
    expiry: values.expiry?.expiry?.value ?? '30',
    max_uses: values.max_uses?.max_uses?.value ?? '',
    channel: values.channel?.channel?.selected_conversation ?? undefined,
  });
  const domains = parseDomains(values.domains?.domains?.value ?? '');
  const errors: Record<string, string> = {};
  if (!parsed.success) for (const i of parsed.error.issues) errors[String(i.path[0])] ??= i.message;
  if (!domains.ok) errors.domains = domains.error;
  if (!parsed.success || !domains.ok) return { ok: false, errors };
  return {
    ok: true,
    input: {
      role: parsed.data.role,
      expiryDays: parsed.data.expiry,
      maxUses: parsed.data.max_uses,
      allowedDomains: domains.domains,
      channelId: parsed.data.channel,
    },
  };
}

/** Whether people of another organisation are in the channel, or invited to it, through Slack Connect. */
async function sharedWithOtherOrganisations(client: WebClient, channel: string): Promise<boolean> {
  const res = await client.conversations.info({ channel });
  const c = res.channel as { is_ext_shared?: boolean; is_pending_ext_shared?: boolean } | undefined;
  return Boolean(c?.is_ext_shared || c?.is_pending_ext_shared);
}

/** What the admin should know of a link posted where another organisation sees it. */
function sharedChannelWarning(link: IJoinLink): string {
  const who = link.allowedEmailDomains.length
    ? `anyone with an address at ${atDomains(link.allowedEmailDomains)}`
    : 'anyone with any address';
  return `\n:warning: <#${link.channelId}> is shared with another organisation through Slack Connect, whose people see this link too. Its Join button refuses them, but its URL lets ${who} join. If that is not what you want, revoke it and post one with your own email domains, or post it in a channel of this workspace only.`;
}

/** What the admin is told when Slack would not take the link's message: why, and what to do; null if not Slack. */
function notPostedText(channel: string, err: unknown): string | null {
  const code = slackErrorCode(err);
  const refusal = slackRefusal(err);
  const again = 'then post again with `/joinlink`.';
  let why: string;
  if (code === 'not_in_channel' || code === 'channel_not_found') {
    why = `Roster cannot post in <#${channel}>: it is a private channel Roster is not in, or it no longer exists. Add Roster to it (channel details, then Integrations, then Add an app) or choose a public channel, ${again}`;
  } else if (code === 'is_archived') {
    why = `<#${channel}> is archived. Choose another channel, ${again}`;
  } else if (refusal) {
    why = refusal.text.replace(/^:[a-z_]+: /, '');
  } else if (code) {
    why = `Slack refused the message in <#${channel}> (${code}). Choose another channel, ${again}`;
  } else {
    const e = err as { code?: string };
    if (e?.code !== ErrorCode.RequestError && e?.code !== ErrorCode.HTTPError) return null;
    why = `Slack did not answer when Roster posted it in <#${channel}>. Should a Join message show up there anyway, its button says the link is no longer valid. Post again with \`/joinlink\`.`;
  }
  return `:no_entry: No join link was made. ${why}`;
}

/**
 * The join link form's submission. What reading alone can tell (the fields, the admin's rights, the
 * account's domains) is shown on the form; the form is then closed at once, and the link is made and
 * posted after that, its outcome coming by DM: posted (and where), or why not. Slack's answer to the post
 * can take seconds, longer than Slack waits for the form's answer.
 */
export function registerJoinLinkView(app: App, deps: Deps, links: JoinLinkService): void {
  app.view<ViewSubmitAction>(JOINLINK_VIEW, async ({ ack, view, body, context, client }) => {
    const { em, account, log } = roster(context);
    const read = readModal(view.state.values);
    const isAdmin = await deps.admins.isAdmin(em, account, body.user.id);
    if (!isAdmin) {
      await ack({ response_action: 'errors', errors: { role: NOT_ADMIN } });
      await auditRefusal(em, {
        account,
        actor: body.user.id,
        action: 'join_link.create_refused',
        subjectType: 'join_link',
        surface: 'slack',
        data: { reason: 'not an admin' },
      });
      return;
    }
    if (!read.ok) {
      await ack({ response_action: 'errors', errors: read.errors });
      return;
    }
    const { input } = read;
    // A link domain outside the account's: said on the form's field.
    const problem = await links.createProblem(em, account, input);
    if (problem) {
      await ack({ response_action: 'errors', errors: { [problem.field ?? 'domains']: problem.message } });
      return;
    }
    await ack();
    // A submission Slack sends again (same view, same state) posts once.
    if (!(await firstTime(em, `view:${view.id}:${view.hash}`))) return;
    const name = accountName(account);
    await afterAck(
      deps,
      client,
      body.user.id,
      async () => {
        let link: IJoinLink;
        try {
          // Posting is part of creating: the message is the only place the link's URL ever exists, so the
          // link is kept only if the message was posted.
          link = await links.create(
            em,
            account,
            { slackUserId: body.user.id, isAdmin, surface: 'slack' },
            input,
            async (created, token) => {
              const res = await client.chat.postMessage({
                channel: input.channelId,
                ...joinLinkMessage(created, `${deps.config.publicUrl}/join/${token}`, name),
              });
              return { channel: res.channel ?? input.channelId, ts: res.ts ?? '' };
            },
          );
        } catch (err) {
          const text = notPostedText(input.channelId, err);
          if (!text) throw err;
          log.info(
            { code: slackErrorCode(err) ?? slackRefusal(err)?.code, channel: input.channelId },
            'join link not posted',
          );
          return text;
        }
        log.info({ linkId: link.id, channel: link.channelId }, 'join link posted');
        const shared = await sharedWithOtherOrganisations(client, link.channelId ?? input.channelId).catch(
          (err: unknown) => {
            log.warn(
              { err, channel: link.channelId },
              'could not tell whether the join link channel is shared',
            );
            return false;
          },
        );
        return `:white_check_mark: Posted a join link in <#${link.channelId}>: people join as ${ROLE_LABEL[link.role]}, for ${input.expiryDays} days${link.maxUses ? `, up to ${link.maxUses} people` : ''}${link.allowedEmailDomains.length ? `, with ${atDomains(link.allowedEmailDomains)} addresses` : ''}. \`/joinlink list\` shows it with a Revoke button.${shared ? sharedChannelWarning(link) : ''}`;
      },
      (m) => `:no_entry: No join link was made. ${m}`,
    );
  });
}
