import type { App, BlockButtonAction, ViewSubmitAction } from '@slack/bolt';
import { z } from 'zod';
import { DomainError } from '../../../shared/errors.ts';
import { esc } from '../../../slack/blocks.ts';
import { roster } from '../../../slack/context.ts';
import { Account } from '../../accounts/account.entity.ts';
import type { Deps } from '../../index.ts';
import { statusText } from '../../invites/invite.service.ts';
import { ROLES, type Role } from '../../people/user.entity.ts';
import { ROLE_LABEL } from '../../seats/slack/request.message.ts';
import { type JoinLinkService, parseDomains } from '../join-link.service.ts';
import {
  JOIN_ACTIONS,
  JOINLINK_VIEW,
  joinLinkMessage,
  joinLinkModal,
  linkListBlocks,
} from './join-link.views.ts';

const NOT_ADMIN = 'Only admins can post join links.';
const uuid = z.uuid();

/** `/joinlink` (create, list, revoke) for admins, and the Join button for everyone. */
export function registerJoinLinkListeners(app: App, deps: Deps, links: JoinLinkService): void {
  const accountName = async (context: Parameters<typeof roster>[0]) => {
    const { em, account } = roster(context);
    return (await em.findOne(Account, account.id))?.name ?? 'the account';
  };

  app.command('/joinlink', async ({ ack, command, context, client, respond }) => {
    await ack();
    const { em, account } = roster(context);
    if (!(await deps.admins.isAdmin(em, account, command.user_id))) {
      await respond({ response_type: 'ephemeral', text: NOT_ADMIN });
      return;
    }
    const text = command.text.trim().toLowerCase();
    if (text === 'list' || text === 'revoke') {
      const all = await links.list(em, account);
      await respond({
        response_type: 'ephemeral',
        text: 'Join links',
        blocks: linkListBlocks(all, new Date()),
      });
      return;
    }
    if (text !== '' && text !== 'create') {
      await respond({
        response_type: 'ephemeral',
        text: 'Use `/joinlink` to post a join link, `/joinlink list` to see them and revoke one.',
      });
      return;
    }
    await client.views.open({
      trigger_id: command.trigger_id,
      view: joinLinkModal({ channelId: command.channel_id, defaultDomains: account.allowedEmailDomains }),
    });
  });

  app.view<ViewSubmitAction>(JOINLINK_VIEW, async ({ ack, view, body, context, client }) => {
    const v = view.state.values;
    const role = v.role?.role?.selected_option?.value as Role;
    const expiry = Number(v.expiry?.expiry?.value ?? '30');
    const maxRaw = v.max_uses?.max_uses?.value;
    const maxUses = maxRaw ? Number(maxRaw) : null;
    const domains = parseDomains(v.domains?.domains?.value ?? '');
    const channelId = v.channel?.channel?.selected_conversation ?? null;
    const errors: Record<string, string> = {};
    if (!(ROLES as readonly string[]).includes(role)) errors.role = 'Choose a role.';
    if (!Number.isInteger(expiry) || expiry < 1 || expiry > 365) errors.expiry = 'Between 1 and 365 days.';
    if (maxUses !== null && (!Number.isInteger(maxUses) || maxUses < 1))
      errors.max_uses = 'A whole number of at least 1, or empty.';
    if (!domains.ok) errors.domains = domains.error;
    if (!channelId) errors.channel = 'Choose a channel.';
    const { em, account } = roster(context);
    const actor = {
      slackUserId: body.user.id,
      isAdmin: await deps.admins.isAdmin(em, account, body.user.id),
      surface: 'slack' as const,
    };
    if (!actor.isAdmin) errors.role = NOT_ADMIN;
    if (Object.keys(errors).length || !domains.ok || !channelId) {
      await ack({ response_action: 'errors', errors });
      return;
    }
    const name = await accountName(context);
    try {
      await links.create(
        em,
        account,
        actor,
        { role, expiryDays: expiry, maxUses, allowedDomains: domains.domains, channelId },
        async (link, token) => {
          const res = await client.chat.postMessage({
            channel: channelId,
            ...joinLinkMessage(link, `${deps.config.publicUrl}/join/${token}`, name),
          });
          return { channel: res.channel ?? channelId, ts: res.ts ?? '' };
        },
      );
    } catch (err) {
      const code = (err as { data?: { error?: string } }).data?.error;
      if (code) {
        await ack({
          response_action: 'errors',
          errors: {
            channel:
              code === 'not_in_channel' || code === 'channel_not_found'
                ? 'Roster cannot post there. Add Roster to that channel (or pick a public one) and try again.'
                : `Slack refused the message (${code}). Try another channel.`,
          },
        });
        return;
      }
      throw err;
    }
    await ack();
    await client.chat.postMessage({
      channel: body.user.id,
      text: `:white_check_mark: Posted a join link in <#${channelId}>: people join as ${ROLE_LABEL[role]}, for ${expiry} days${maxUses ? `, up to ${maxUses} people` : ''}. \`/joinlink list\` shows it with a Revoke button.`,
    });
  });

  app.action<BlockButtonAction>(
    JOIN_ACTIONS.revoke,
    async ({ ack, action, body, context, client, respond }) => {
      await ack();
      const { em, account } = roster(context);
      const id = uuid.safeParse(action.value);
      if (!id.success) throw new DomainError('not_found', 'That join link no longer exists.');
      const isAdmin = await deps.admins.isAdmin(em, account, body.user.id);
      if (!isAdmin) {
        await respond({
          response_type: 'ephemeral',
          replace_original: false,
          text: 'Only admins can revoke join links.',
        });
        return;
      }
      const link = await links.revoke(
        em,
        account,
        { slackUserId: body.user.id, isAdmin, surface: 'slack' },
        id.data,
      );
      if (link.channelId && link.messageTs) {
        await client.chat.update({
          channel: link.channelId,
          ts: link.messageTs,
          ...joinLinkMessage(link, null, await accountName(context)),
        });
      }
      await respond({
        response_type: 'ephemeral',
        replace_original: false,
        text: ':no_entry_sign: Revoked. The link no longer works and its message says so.',
      });
    },
  );

  app.action<BlockButtonAction>(JOIN_ACTIONS.join, async ({ ack, action, body, context, respond }) => {
    await ack();
    const id = uuid.safeParse(action.value);
    const person = await deps.admins.slackPerson(body.user.id);
    if (!person.email) {
      throw new DomainError(
        'invalid_input',
        'Slack did not give Roster your email address, so you cannot join this way. Ask an admin to invite you.',
      );
    }
    const result = id.success
      ? await links.join(
          roster(context).em,
          id.data,
          { email: person.email, name: person.name, slackUserId: body.user.id },
          'slack',
        )
      : { status: 'link_invalid' as const };
    const name = esc(await accountName(context));
    const text = {
      joined: `:tada: You joined ${name}. Welcome!`,
      exists:
        result.status === 'exists' ? `You are already in ${name}: ${statusText(result.user.status)}.` : '',
      requested: `:hourglass_flowing_sand: No paid seat is free right now, so an admin has been asked to approve your place in ${name}. You will get a message when they decide.`,
      domain_not_allowed:
        result.status === 'domain_not_allowed'
          ? `This link is only for ${result.allowed.map((d) => `@${d}`).join(', ')} addresses, and your Slack email is ${esc(person.email)}. Ask an admin to invite you.`
          : '',
      link_invalid: 'This join link is no longer valid. Ask an admin in your workspace for a new one.',
    }[result.status];
    await respond({ response_type: 'ephemeral', replace_original: false, text });
  });
}
