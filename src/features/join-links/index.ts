import { html as escapeText } from '../../web/html.ts';
import { Account } from '../accounts/account.entity.ts';
import type { Feature } from '../index.ts';
import { perApp } from '../per-app.ts';
import { JOIN_JOBS, JoinLinkService } from './join-link.service.ts';
import { registerJoinLinkListeners } from './slack/join-link.listeners.ts';
import { joinLinkMessage } from './slack/join-link.views.ts';
import { registerJoinPages } from './web/join.pages.ts';

const linksOf = perApp((deps) => new JoinLinkService(deps.seats, deps.jobs));

/** Join links: /joinlink for admins, the Join button and the join pages for everyone. */
export const joinLinksFeature: Feature = {
  name: 'join-links',
  async jobs(deps) {
    const links = linksOf(deps);
    await deps.jobs.define<{ confirmationId: string }>(
      JOIN_JOBS.sendConfirmation,
      async ({ confirmationId }) => {
        const ready = await links.prepareConfirmation(deps.orm.em.fork(), confirmationId);
        if (!ready) return;
        const accountName = ready.account.name ?? 'the account';
        const url = `${deps.config.publicUrl}/join/confirm/${ready.token}`;
        const mail = ready.existing
          ? {
              subject: `You already have access to ${accountName}`,
              text: `Someone asked to join ${accountName} with this address, but you already have access. If it was not you, ignore this email.`,
              html: escapeText`<p>Someone asked to join ${accountName} with this address, but you already have access.</p><p>If it was not you, ignore this email.</p>`
                .value,
            }
          : {
              subject: `Confirm your email to join ${accountName}`,
              text: `Hello ${ready.confirmation.name},\n\nOpen this link within 24 hours to finish joining ${accountName}:\n${url}\n\nIf you did not ask to join, ignore this email.`,
              html: escapeText`<p>Hello ${ready.confirmation.name},</p><p><a href="${url}">Confirm your email and join ${accountName}</a></p><p>Or open ${url} within 24 hours. If you did not ask to join, ignore this email.</p>`
                .value,
            };
        await deps.mailer.send({ to: ready.confirmation.email, ...mail });
        await links.markSent(deps.orm.em.fork(), confirmationId);
      },
      { retryLimit: 8, retryDelay: 2, retryBackoff: true },
    );
    await deps.jobs.define(JOIN_JOBS.expireLinks, async () => {
      const em = deps.orm.em.fork();
      for (const link of await links.expireDue(em)) {
        if (!link.channelId || !link.messageTs) continue;
        const account = await em.findOne(Account, link.account.id);
        await deps.slack.chat
          .update({
            channel: link.channelId,
            ts: link.messageTs,
            ...joinLinkMessage(link, null, account?.name ?? 'the account'),
          })
          .catch((err) =>
            deps.logger.warn({ err, linkId: link.id }, 'could not mark a join link message expired'),
          );
      }
    });
    await deps.jobs.boss.schedule(JOIN_JOBS.expireLinks, '*/10 * * * *');
  },
  slack: (app, deps) => registerJoinLinkListeners(app, deps, linksOf(deps)),
  web: (router, deps) => registerJoinPages(router, deps.csrf, linksOf(deps)),
};
