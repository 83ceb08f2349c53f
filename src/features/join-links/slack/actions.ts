import type { App, BlockButtonAction, RespondFn } from '@slack/bolt';
import type { WebClient } from '@slack/web-api';
import { z } from 'zod';
import { DomainError } from '../../../shared/errors.ts';
import type { Logger } from '../../../shared/logger.ts';
import { esc } from '../../../slack/blocks.ts';
import { roster } from '../../../slack/context.ts';
import { slackErrorCode } from '../../../slack/errors.ts';
import { nowOrLater } from '../../../slack/later.ts';
import { readPage } from '../../../slack/paging.ts';
import type { IAccount } from '../../accounts/account.entity.ts';
import { atDomains } from '../../accounts/allowed-domains.ts';
import { auditRefusal } from '../../audit/audit.service.ts';
import { guestKind, isOfWorkspace } from '../../directory/directory.service.ts';
import type { Deps } from '../../feature.ts';
import { INVITEE_ROLE } from '../../people/labels.ts';
import type { IJoinLink } from '../join-link.entity.ts';
import { requestedText, standing } from '../join-link.messages.ts';
import type { JoinLinkService } from '../join-link.service.ts';
import { onlyFor } from '../join-link.terms.ts';
import {
  accountName,
  JOIN_ACTIONS,
  joinLinkMessage,
  type LinkPage,
  linkListBlocks,
  type MessageUpdate,
  NOT_ADMIN,
  revokedText,
} from './blocks.ts';

const uuid = z.uuid();

/**
 * Replaces a link's channel message by its current notice; the link's state is already committed, so when
 * Slack asks Roster to slow down the message is redrawn by a job once Slack allows, not left showing Join.
 */
export async function updateLinkMessage(
  deps: Pick<Deps, 'jobs'>,
  client: WebClient,
  log: Logger,
  link: IJoinLink,
  account: IAccount,
): Promise<MessageUpdate> {
  if (!link.channelId || !link.messageTs) return 'none';
  try {
    const now = await nowOrLater(deps.jobs, client, {
      method: 'chat.update',
      args: {
        channel: link.channelId,
        ts: link.messageTs,
        ...joinLinkMessage(link, null, accountName(account)),
      },
    });
    return now ? 'updated' : 'later';
  } catch (err) {
    log.warn({ err, linkId: link.id }, 'could not update a join link message');
    const code = slackErrorCode(err);
    if (code === 'not_in_channel' || code === 'channel_not_found') return 'left';
    if (code === 'is_archived') return 'archived';
    return 'failed';
  }
}

/** Shows the account's join links with their Revoke buttons, under `note` if given. */
export async function showLinkList(
  links: JoinLinkService,
  respond: RespondFn,
  em: Parameters<JoinLinkService['list']>[0],
  account: IAccount,
  note?: string,
  replace = false,
  at?: LinkPage,
): Promise<void> {
  // A page cursor that is no link of this account (a forged value) falls back to the first page.
  const onPage = at ? await links.list(em, account, at.a) : null;
  const from = onPage ? at : undefined;
  const page = onPage ?? (await links.list(em, account))!;
  await respond({
    response_type: 'ephemeral',
    replace_original: replace,
    text: note ?? 'Join links',
    blocks: linkListBlocks(page.links, new Date(), note, page.total, {
      more: page.more,
      shownBefore: from?.n ?? 0,
      after: from?.a,
    }),
  });
}

/** A Show more button's value under `/joinlink list` (see LinkPage), as Slack sends it back. */
const linkPage = z.object({ a: z.uuid(), n: z.number().int().min(1).max(1_000_000) });

/** A Revoke button's value: the link's id on the first page, with its page after that (see RevokeOnPage). */
function readRevoke(value: string | undefined): { id: string; at?: LinkPage } | null {
  const plain = uuid.safeParse(value);
  if (plain.success) return { id: plain.data };
  const paged = readPage(linkPage.extend({ l: z.uuid() }), value);
  return paged ? { id: paged.l, at: { a: paged.a, n: paged.n } } : null;
}

/** Revoke on the list (admins), and the Join button on a link's message (everyone). */
export function registerJoinLinkActions(app: App, deps: Deps, links: JoinLinkService): void {
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
          subjectId: readRevoke(action.value)?.id ?? null,
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
      const revoking = readRevoke(action.value);
      if (!revoking) throw new DomainError('not_found', 'That join link no longer exists.');
      const { link, already } = await links.revoke(
        em,
        account,
        { slackUserId: body.user.id, isAdmin, surface: 'slack' },
        revoking.id,
      );
      const updated = await updateLinkMessage(deps, client, log, link, account);
      // The page of the list the button was on is redrawn, so the revoked link is shown closed there too.
      await showLinkList(links, respond, em, account, revokedText(link, already, updated), true, revoking.at);
    },
  );

  // Show more under `/joinlink list`: the next page, for admins only (the list is theirs alone).
  app.action<BlockButtonAction>(JOIN_ACTIONS.more, async ({ ack, action, body, context, respond }) => {
    await ack();
    const { em, account } = roster(context);
    if (!(await deps.admins.isAdmin(em, account, body.user.id))) {
      await respond({ response_type: 'ephemeral', replace_original: false, text: NOT_ADMIN });
      return;
    }
    const at = readPage(linkPage, action.value);
    const page = at ? await links.list(em, account, at.a) : null;
    if (!at || !page) {
      throw new DomainError(
        'not_found',
        'Those links have changed since they were listed. Type `/joinlink list` to list them again.',
      );
    }
    await respond({
      response_type: 'ephemeral',
      replace_original: false,
      text: 'Join links',
      blocks: linkListBlocks(page.links, new Date(), undefined, page.total, {
        more: page.more,
        shownBefore: at.n,
        after: at.a,
      }),
    });
  });

  app.action<BlockButtonAction>(JOIN_ACTIONS.join, async ({ ack, action, body, context, respond }) => {
    await ack();
    const { em, account } = roster(context);
    const id = uuid.safeParse(action.value);
    // A member the mirror recorded before it kept Slack's guest flags is asked of Slack once.
    const person = await deps.admins.member(em, account, body.user.id, { guestFlags: true });
    if (person && !isOfWorkspace(person, account.teamId)) {
      // Someone of another organisation, in a channel shared through Slack Connect: a join link admits
      // members of this workspace, so they take no seat and no use of the link, and learn why.
      await auditRefusal(em, {
        account,
        actor: body.user.id,
        action: 'join_link.join_refused',
        subjectType: 'join_link',
        subjectId: id.data ?? null,
        surface: 'slack',
        data: { reason: 'another organisation (Slack Connect)', teams: person.teamIds },
      });
      await respond({
        response_type: 'ephemeral',
        replace_original: false,
        text: `:no_entry_sign: This join link is for members of this Slack workspace${account.name ? ` (${esc(account.name)})` : ''}. You are in this channel through Slack Connect, from another organisation, so you cannot join with it: nothing changed. If you should be in it, ask one of its admins to invite you.`,
      });
      return;
    }
    if (!person?.email) {
      throw new DomainError(
        'invalid_input',
        'Slack did not give Roster your email address, so you cannot join with the button. Open the link in the message instead, or ask an admin to invite you.',
      );
    }
    const kind = guestKind(person);
    if (kind === 'unknown') {
      // Slack would not say whether they are a guest: no paid seat is given on a guess.
      throw new DomainError(
        'not_allowed',
        'Roster could not learn from Slack whether you are a full member of this workspace or a guest, so you cannot join with the button right now: nothing changed. Try again in a few minutes, or ask an admin to invite you.',
      );
    }
    const result = id.success
      ? await links.join(
          em,
          id.data,
          { email: person.email, name: person.name ?? undefined, slackUserId: body.user.id, guest: kind },
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
        text = esc(standing(result.user.status, result.user.email, accountName(account)).text);
        break;
      case 'requested':
        text = `:hourglass_flowing_sand: ${esc(requestedText(result.reason, accountName(account), 'You will get a message when they decide.', result.guest))}`;
        break;
      case 'domain_not_allowed':
        text = result.allowed.length
          ? `This link is only for ${esc(atDomains(result.allowed))} addresses, and your Slack email is ${esc(person.email)}. Ask an admin to invite you.`
          : `${esc(onlyFor(result.allowed))} Ask an admin to invite you.`;
        break;
      case 'link_full':
        text =
          'This join link is full: all its places have been used (each join, and each request to join, takes one). Ask an admin in your workspace for a new one.';
        break;
      default:
        text = 'This join link is no longer valid. Ask an admin in your workspace for a new one.';
    }
    await respond({ response_type: 'ephemeral', replace_original: false, text });
  });
}
