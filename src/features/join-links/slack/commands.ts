import type { App, BlockButtonAction, RespondFn, ViewSubmitAction } from '@slack/bolt';
import type { WebClient } from '@slack/web-api';
import { z } from 'zod';
import { DomainError } from '../../../shared/errors.ts';
import type { Logger } from '../../../shared/logger.ts';
import { esc } from '../../../slack/blocks.ts';
import { roster } from '../../../slack/context.ts';
import type { IAccount } from '../../accounts/account.entity.ts';
import { auditRefusal } from '../../audit/audit.service.ts';
import type { Deps } from '../../feature.ts';
import { INVITEE_ROLE, ROLE_LABEL, statusText } from '../../people/labels.ts';
import type { IJoinLink } from '../join-link.entity.ts';
import { type CreateInput, type JoinLinkService, parseDomains } from '../join-link.service.ts';
import { JOIN_ACTIONS, JOINLINK_VIEW, joinLinkMessage, joinLinkModal, linkListBlocks } from './blocks.ts';

const NOT_ADMIN = 'Only admins can post join links.';
const HELP =
  '`/joinlink` or `/joinlink create` posts a join link in a channel; `/joinlink list` shows your links with a Revoke button; `/joinlink revoke` does the same.';
/** Slack wants a view submission answered within 3 seconds; the post must fit inside that. */
const POST_TIMEOUT_MS = 2500;
const uuid = z.uuid();

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

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(Object.assign(new Error('timed out'), { data: { error: 'timeout' } })),
      ms,
    );
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

function slackError(err: unknown): string | undefined {
  return (err as { data?: { error?: string } }).data?.error;
}

/** `/joinlink` (create, list, revoke) for admins, and the Join button for everyone. */
export function registerJoinLinkListeners(app: App, deps: Deps, links: JoinLinkService): void {
  const accountName = (account: IAccount) => account.name ?? 'the account';

  /** Replaces a link's channel message by its current notice; the link's state is already committed. */
  async function updateMessage(client: WebClient, log: Logger, link: IJoinLink, account: IAccount) {
    if (!link.channelId || !link.messageTs) return true;
    try {
      await client.chat.update({
        channel: link.channelId,
        ts: link.messageTs,
        ...joinLinkMessage(link, null, accountName(account)),
      });
      return true;
    } catch (err) {
      log.warn({ err, linkId: link.id }, 'could not update a join link message');
      return false;
    }
  }

  async function showList(
    respond: RespondFn,
    em: Parameters<JoinLinkService['list']>[0],
    account: IAccount,
    note?: string,
    replace = false,
  ) {
    const all = await links.list(em, account);
    await respond({
      response_type: 'ephemeral',
      replace_original: replace,
      text: note ?? 'Join links',
      blocks: linkListBlocks(all, new Date(), note),
    });
  }

  app.command('/joinlink', async ({ ack, command, context, client, respond }) => {
    await ack();
    const { em, account } = roster(context);
    const [sub = '', arg] = command.text.trim().split(/\s+/);
    if (sub.toLowerCase() === 'help') {
      await respond({
        response_type: 'ephemeral',
        text: `${HELP} (Admins only: anyone can join through a posted link.)`,
      });
      return;
    }
    if (!(await deps.admins.isAdmin(em, account, command.user_id))) {
      await respond({ response_type: 'ephemeral', text: NOT_ADMIN });
      return;
    }
    switch (sub.toLowerCase()) {
      case '':
      case 'create':
        await client.views.open({
          trigger_id: command.trigger_id,
          view: joinLinkModal({
            channelId: command.channel_id,
            defaultDomains: account.allowedEmailDomains,
            expiryDays: account.joinLinkExpiryDays,
            maxUses: account.joinLinkMaxUses,
          }),
        });
        return;
      case 'list':
        await showList(respond, em, account);
        return;
      case 'revoke': {
        const id = uuid.safeParse(arg);
        if (!id.success) {
          await showList(respond, em, account, 'Which link? Click *Revoke* next to it.');
          return;
        }
        const { link, already } = await links.revoke(
          em,
          account,
          { slackUserId: command.user_id, isAdmin: true, surface: 'slack' },
          id.data,
        );
        const updated = await updateMessage(client, roster(context).log, link, account);
        await respond({ response_type: 'ephemeral', text: revokedText(link, already, updated) });
        return;
      }
      default:
        await respond({
          response_type: 'ephemeral',
          text: `I did not understand \`${esc(command.text)}\`. ${HELP}`,
        });
    }
  });

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
    const name = accountName(account);
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
          const res = await withTimeout(
            client.chat.postMessage({
              channel: input.channelId,
              ...joinLinkMessage(created, `${deps.config.publicUrl}/join/${token}`, name),
            }),
            POST_TIMEOUT_MS,
          );
          return { channel: res.channel ?? input.channelId, ts: res.ts ?? '' };
        },
      );
    } catch (err) {
      const code = slackError(err);
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
    await client.chat.postMessage({
      channel: body.user.id,
      text: `:white_check_mark: Posted a join link in <#${link.channelId}>: people join as ${ROLE_LABEL[link.role]}, for ${input.expiryDays} days${link.maxUses ? `, up to ${link.maxUses} people` : ''}${link.allowedEmailDomains.length ? `, with ${link.allowedEmailDomains.map((d) => `@${d}`).join(', ')} addresses` : ''}. \`/joinlink list\` shows it with a Revoke button.`,
    });
  });

  app.action<BlockButtonAction>(
    JOIN_ACTIONS.revoke,
    async ({ ack, action, body, context, client, respond }) => {
      await ack();
      const { em, account, log } = roster(context);
      const isAdmin = await deps.admins.isAdmin(em, account, body.user.id);
      if (!isAdmin) {
        await auditRefusal(em, {
          account,
          actor: body.user.id,
          action: 'join_link.revoke_refused',
          subjectType: 'join_link',
          subjectId: uuid.safeParse(action.value).data ?? null,
          surface: 'slack',
          data: { reason: 'not an admin' },
        });
        await respond({
          response_type: 'ephemeral',
          replace_original: false,
          text: 'Only admins can revoke join links.',
        });
        return;
      }
      const id = uuid.safeParse(action.value);
      if (!id.success) throw new DomainError('not_found', 'That join link no longer exists.');
      const { link, already } = await links.revoke(
        em,
        account,
        { slackUserId: body.user.id, isAdmin, surface: 'slack' },
        id.data,
      );
      const updated = await updateMessage(client, log, link, account);
      // The list the button was on is redrawn, so the revoked link shows as revoked there too.
      await showList(respond, em, account, revokedText(link, already, updated), true);
    },
  );

  app.action<BlockButtonAction>(JOIN_ACTIONS.join, async ({ ack, action, body, context, respond }) => {
    await ack();
    const { em, account } = roster(context);
    const id = uuid.safeParse(action.value);
    const person = await deps.admins.slackPerson(body.user.id);
    if (!person.email) {
      throw new DomainError(
        'invalid_input',
        'Slack did not give Roster your email address, so you cannot join with the button. Open the link in the message instead, or ask an admin to invite you.',
      );
    }
    const result = id.success
      ? await links.join(
          em,
          id.data,
          { email: person.email, name: person.name, slackUserId: body.user.id },
          'slack',
          account,
        )
      : ({ status: 'link_invalid' } as const);
    const name = esc(accountName(account));
    let text: string;
    switch (result.status) {
      case 'joined':
        text = `:tada: You joined ${name} as ${INVITEE_ROLE[result.user.role]}. Welcome!`;
        break;
      case 'exists':
        text = `You are already in ${name} (${esc(result.user.email)}): ${statusText(result.user.status)}. Nothing changed.`;
        break;
      case 'requested':
        text = `:hourglass_flowing_sand: No paid seat is free right now, so an admin has been asked to approve your place in ${name}. You will get a message when they decide.`;
        break;
      case 'domain_not_allowed':
        text = `This link is only for ${result.allowed.map((d) => `@${esc(d)}`).join(', ')} addresses, and your Slack email is ${esc(person.email)}. Ask an admin to invite you.`;
        break;
      case 'link_full':
        text =
          'This join link is full: everyone it admits has joined. Ask an admin in your workspace for a new one.';
        break;
      default:
        text = 'This join link is no longer valid. Ask an admin in your workspace for a new one.';
    }
    await respond({ response_type: 'ephemeral', replace_original: false, text });
  });
}

function revokedText(link: IJoinLink, already: boolean, messageUpdated: boolean): string {
  const where = link.channelId ? ` in <#${link.channelId}>` : '';
  const head = already
    ? `That join link${where} was already revoked.`
    : `:no_entry_sign: Revoked the join link${where}: its button and URL no longer work.`;
  return messageUpdated
    ? `${head} Its message says so.`
    : `${head} Roster could not update its message (it may have been deleted); the link is revoked all the same.`;
}
