import type { Feature } from '../feature.ts';
import { INVITE_JOBS, queueRedeliveries } from './invitation.service.ts';
import { defineDelivery, inviterName } from './invite.delivery.ts';
import { defineProgress } from './invite.progress.ts';
import { EXPIRE_BATCH } from './invite.service.ts';
import { registerInviteActions } from './slack/actions.ts';
import { registerInviteCommand } from './slack/commands.ts';
import { registerInviteShortcuts } from './slack/shortcuts.ts';
import { registerInviteView } from './slack/views.ts';
import { registerAcceptPage } from './web/accept.page.ts';

/** Invitations: /invite, its modal and shortcuts, delivery by DM or email, the accept page, resend and cancel. */
export const invitesFeature: Feature = {
  name: 'invites',
  async jobs(deps) {
    await defineDelivery(deps, deps.invites);
    // Invitations an upgrade voided (a DM that reached the wrong person) go again, once.
    const redelivered = await queueRedeliveries(deps.orm.em.fork(), deps.jobs);
    if (redelivered)
      deps.logger.info({ invitations: redelivered }, 'invitations queued to be delivered again');
    await defineProgress(deps);
    // Expired invitations give their seats back within minutes of their expiry: every one that is due, a
    // batch per transaction, so a round of thousands sent together (an import) all expire on one run.
    await deps.jobs.define(INVITE_JOBS.expire, async () => {
      while ((await deps.invites.expire(deps.orm.em.fork(), EXPIRE_BATCH)) === EXPIRE_BATCH);
    });
    await deps.jobs.boss.schedule(INVITE_JOBS.expire, '*/5 * * * *');
  },
  slack(app, deps) {
    registerInviteCommand(app, deps, deps.invites);
    registerInviteShortcuts(app, deps);
    registerInviteView(app, deps, deps.invites);
    registerInviteActions(app, deps, deps.invites);
  },
  web: (router, deps) =>
    registerAcceptPage(router, deps.csrf, deps.outcomes, deps.invites, (account, id) =>
      // A delivery job waits for Slack when it is busy; a person opening their invitation does not: the
      // page names no one rather than failing.
      inviterName(deps, account, id).catch((err) => {
        deps.logger.warn(
          { err: { name: (err as Error)?.name, message: (err as Error)?.message } },
          'invitation page: could not name the inviter',
        );
        return 'Someone';
      }),
    ),
};
