import type { App, ViewSubmitAction } from '@slack/bolt';
import type { View } from '@slack/types';
import type { WebClient } from '@slack/web-api';
import { z } from 'zod';
import { DomainError } from '../../../shared/errors.ts';
import { plain } from '../../../slack/blocks.ts';
import { roster } from '../../../slack/context.ts';
import { slackErrorCode } from '../../../slack/errors.ts';
import { roleInput } from '../../../slack/inputs.ts';
import { nowOrLater } from '../../../slack/later.ts';
import { auditRefusal } from '../../audit/audit.service.ts';
import type { Deps } from '../../feature.ts';
import { ROLE_LABEL } from '../../people/labels.ts';
import type { IJoinLink } from '../join-link.entity.ts';
import type { CreateInput, JoinLinkService } from '../join-link.service.ts';
import { MAX_DOMAINS_TEXT, parseDomains } from '../join-link.terms.ts';
import { accountName, joinLinkMessage, NOT_ADMIN } from './blocks.ts';

export const JOINLINK_VIEW = 'joinlink_modal';
/** Slack wants a view submission answered within 3 seconds; the post must fit inside that. */
/**
 * How long after a submission arrives Roster stops waiting for its post, whatever ran before it (the admin
 * check, the link's checks): Slack wants the form's answer within 3 seconds.
 */
const POST_DEADLINE_MS = 2500;
/** The least time the post is given, however late it starts. */
const MIN_POST_MS = 300;

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
  channel: z.string({ message: 'Choose a channel.' }).min(1, 'Choose a channel.'),
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

/** Roster stopped waiting for Slack's answer to a post (see withTimeout). */
class PostTimedOut extends Error {}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new PostTimedOut('timed out')), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
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
    ? `anyone with an address at ${link.allowedEmailDomains.map((d) => `@${d}`).join(', ')}`
    : 'anyone with any address';
  return `\n:warning: <#${link.channelId}> is shared with another organisation through Slack Connect, whose people see this link too. Its Join button refuses them, but its URL lets ${who} join. If that is not what you want, revoke it and post one with your own email domains, or post it in a channel of this workspace only.`;
}

/** `/joinlink` (create, list, revoke) for admins, and the Join button for everyone. */

/** The join link form's submission: the link is made only if its message was posted in the channel. */
export function registerJoinLinkView(app: App, deps: Deps, links: JoinLinkService): void {
  app.view<ViewSubmitAction>(JOINLINK_VIEW, async ({ ack, view, body, context, client }) => {
    const arrived = performance.now();
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
    const name = accountName(account);
    const deleteLatePost = async (posting: Promise<{ channel?: string; ts?: string }>) => {
      const late = await posting.catch(() => null);
      if (!late?.ts) return;
      const channel = late.channel ?? input.channelId;
      log.warn({ channel, ts: late.ts }, 'a join link post came after its timeout; deleting it');
      // Deleted later if Slack asks to wait.
      await nowOrLater(deps.jobs, client, { method: 'chat.delete', args: { channel, ts: late.ts } }).catch(
        (err: unknown) =>
          log.error({ err, channel, ts: late.ts }, 'could not delete a join link post that came too late'),
      );
    };
    let link: IJoinLink;
    try {
      // Posting is part of creating: the message is the only place the link's URL ever exists, so the
      // link is kept only if the message was posted, and the admin hears why not on the form.
      link = await links.create(
        em,
        account,
        { slackUserId: body.user.id, isAdmin, surface: 'slack' },
        input,
        async (created, token) => {
          const posting = client.chat.postMessage({
            channel: input.channelId,
            ...joinLinkMessage(created, `${deps.config.publicUrl}/join/${token}`, name),
          });
          try {
            const left = POST_DEADLINE_MS - (performance.now() - arrived);
            const res = await withTimeout(posting, Math.max(MIN_POST_MS, left));
            return { channel: res.channel ?? input.channelId, ts: res.ts ?? '' };
          } catch (err) {
            // The admin is told no link was made, and none is kept: a post that lands after all is taken
            // down, or people would see a Join button for a link that does not exist.
            if (err instanceof PostTimedOut) void deleteLatePost(posting);
            throw err;
          }
        },
      );
    } catch (err) {
      // A link domain outside the account's: said on the form's field.
      if (err instanceof DomainError && err.field) {
        await ack({ response_action: 'errors', errors: { [err.field]: err.message } });
        return;
      }
      const code = err instanceof PostTimedOut ? 'timeout' : slackErrorCode(err);
      if (!code) throw err;
      log.info({ code, channel: input.channelId }, 'join link not posted');
      await ack({
        response_action: 'errors',
        errors: {
          channel:
            code === 'not_in_channel' || code === 'channel_not_found'
              ? 'Roster cannot post in that channel. Add Roster to it (channel details, then Integrations, then Add an app) or choose a public channel, then post again.'
              : code === 'is_archived'
                ? 'That channel is archived. Choose another one.'
                : code === 'timeout'
                  ? 'Slack took too long to post the message, so no link was made. Please post again.'
                  : `Slack refused the message (${code}), so no link was made. Try another channel.`,
        },
      });
      return;
    }
    await ack();
    log.info({ linkId: link.id, channel: link.channelId }, 'join link posted');
    const shared = await sharedWithOtherOrganisations(client, link.channelId ?? input.channelId).catch(
      (err: unknown) => {
        log.warn({ err, channel: link.channelId }, 'could not tell whether the join link channel is shared');
        return false;
      },
    );
    await nowOrLater(deps.jobs, client, {
      method: 'chat.postMessage',
      args: {
        channel: body.user.id,
        text: `:white_check_mark: Posted a join link in <#${link.channelId}>: people join as ${ROLE_LABEL[link.role]}, for ${input.expiryDays} days${link.maxUses ? `, up to ${link.maxUses} people` : ''}${link.allowedEmailDomains.length ? `, with ${link.allowedEmailDomains.map((d) => `@${d}`).join(', ')} addresses` : ''}. \`/joinlink list\` shows it with a Revoke button.${shared ? sharedChannelWarning(link) : ''}`,
      },
    });
  });
}
