import { slackDate } from '../../slack/blocks.ts';
import { messageGone, slackErrorCode } from '../../slack/errors.ts';
import type { Deps, Feature } from '../feature.ts';
import { JoinLink } from './join-link.entity.ts';
import { JOIN_JOBS } from './join-link.service.ts';
import { defineJoinMail } from './join-mail.delivery.ts';
import { registerJoinLinkActions } from './slack/actions.ts';
import { joinLinkMessage } from './slack/blocks.ts';
import { registerJoinLinkCommand } from './slack/commands.ts';
import { registerJoinLinkView } from './slack/views.ts';
import { JOIN_RATE_LIMITS, type RateLimits, registerJoinPages } from './web/join.pages.ts';
import { SharedRateLimiter } from './web/rate-limit.ts';

/**
 * Redraws a link's channel message as its current notice (revoked, expired, full). A message someone
 * deleted, or a channel archived or left, is let be: its button already says the link no longer works.
 */
async function refreshMessage(deps: Deps, linkId: string): Promise<void> {
  const link = await deps.orm.em.fork().findOne(JoinLink, linkId, { populate: ['account'] });
  if (!link?.channelId || !link.messageTs) return;
  try {
    await deps.slack.chat.update({
      channel: link.channelId,
      ts: link.messageTs,
      ...joinLinkMessage(link, null, link.account.getEntity().name ?? 'the account'),
    });
  } catch (err) {
    if (!messageGone(err)) throw err;
    const code = slackErrorCode(err);
    deps.logger.info(
      { joinLink: link.id, slackError: code },
      'join link message no longer in Slack; left as it is',
    );
  }
}

/** Tells the admin who made a link that Roster closed it, its message never having been posted. */
async function tellUnposted(deps: Deps, linkId: string): Promise<void> {
  const link = await deps.orm.em.fork().findOne(JoinLink, linkId);
  if (!link) return;
  const where = link.channelId ? ` in <#${link.channelId}>` : '';
  await deps.slack.chat.postMessage({
    channel: link.createdBy,
    text: `:warning: The join link you made${where} ${slackDate(link.createdAt)} was never posted: Roster stopped before its message was posted. Roster closed it, so nobody can join through it; should its message show up${where} anyway, its Join button says the link no longer works. Post a new one with \`/joinlink\`.`,
  });
}

/** Join links with the join pages' rate limits given; tests use small ones. */
export function createJoinLinksFeature(limits: RateLimits = JOIN_RATE_LIMITS): Feature {
  return {
    name: 'join-links',
    async jobs(deps) {
      await defineJoinMail(deps);
      await deps.jobs.define<{ linkId: string }>(
        JOIN_JOBS.refreshMessage,
        ({ linkId }) => refreshMessage(deps, linkId),
        { retryLimit: 5, retryDelay: 5, retryBackoff: true },
      );
      await deps.jobs.define<{ linkId: string }>(
        JOIN_JOBS.tellUnposted,
        ({ linkId }) => tellUnposted(deps, linkId),
        { retryLimit: 5, retryDelay: 5, retryBackoff: true },
      );
      await deps.jobs.define(JOIN_JOBS.expireLinks, async () => {
        await expireLinks(deps);
        await closeUnpostedLinks(deps);
      });
      await deps.jobs.boss.schedule(JOIN_JOBS.expireLinks, '*/5 * * * *');
    },
    slack(app, deps) {
      registerJoinLinkCommand(app, deps, deps.joinLinks);
      registerJoinLinkView(app, deps, deps.joinLinks);
      registerJoinLinkActions(app, deps, deps.joinLinks);
    },
    web: (router, deps) =>
      registerJoinPages(router, deps.csrf, deps.outcomes, deps.joinLinks, {
        limits,
        // In the database, so that every instance on it counts together.
        limiter: new SharedRateLimiter(deps.orm.em, limits.windowMs),
      }),
  };
}

/**
 * Marks links past their expiry; their messages are replaced by a notice by a job each, retried while Slack
 * is busy or down. Runs every five minutes.
 */
export async function expireLinks(deps: Deps): Promise<number> {
  const expired = await deps.joinLinks.expireDue(deps.orm.em.fork());
  if (expired.length) deps.logger.info({ expired: expired.length }, 'join links expired');
  return expired.length;
}

/**
 * Closes links whose message was never posted, their maker told by a job; runs with the expiry, every five
 * minutes, so such a link is closed at most UNPOSTED_MINUTES and five minutes after it was made.
 */
export async function closeUnpostedLinks(deps: Deps): Promise<number> {
  const closed = await deps.joinLinks.closeUnposted(deps.orm.em.fork());
  if (closed.length) deps.logger.info({ closed: closed.length }, 'unposted join links closed');
  return closed.length;
}

/** Join links: /joinlink for admins, the Join button and the join pages for everyone. */
export const joinLinksFeature: Feature = createJoinLinksFeature();
