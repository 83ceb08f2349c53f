import type { EntityManager } from '@mikro-orm/postgresql';
import type { WebClient } from '@slack/web-api';
import type { Mailer } from '../../shared/mailer.ts';
import { esc } from '../../slack/blocks.ts';
import { emailHtml, html, lines } from '../../web/html.ts';
import type { IAccount } from '../accounts/account.entity.ts';
import type { DirectoryService } from '../directory/directory.service.ts';
import type { ISeatRequest } from '../seats/seat-request.entity.ts';
import { joinDecision } from './join-link.messages.ts';

/** Tells the person behind a join's seat request the decision: a DM when they joined from Slack, else email. */
export async function tellJoiner(slack: WebClient, mailer: Mailer, request: ISeatRequest): Promise<void> {
  const account = request.account.isInitialized() ? request.account.getEntity() : null;
  const name = account?.name ?? 'the account';
  const { text, subject } = joinDecision(request, name);
  const slackUserId = request.payload.slackUserId as string | null | undefined;
  if (slackUserId) {
    const icon =
      { approved: ':tada:', rejected: ':x:', expired: ':hourglass:' }[request.status as string] ?? '';
    await slack.chat.postMessage({ channel: slackUserId, text: `${icon} ${esc(text)}`.trim() });
    return;
  }
  await mailer.send({ to: request.email, subject, text, html: emailHtml(html`<p>${lines(text)}</p>`) });
}

/**
 * Whether the person behind a join that was not approved has left Slack (the join closed for it, or refused
 * for it when an admin approved): there is nobody to tell, and Slack takes no DM to them.
 */
export async function joinerLeft(
  directory: Pick<DirectoryService, 'byId'>,
  em: EntityManager,
  account: IAccount,
  request: ISeatRequest,
): Promise<boolean> {
  const joiner = request.payload.slackUserId;
  if (request.kind !== 'join' || request.status === 'approved' || typeof joiner !== 'string') return false;
  if (request.payload.closedBecause === 'deactivated') return true;
  return !!(await directory.byId(em, account, joiner))?.deleted;
}
