import type { Feature } from '../index.ts';
import { perApp } from '../per-app.ts';
import { INVITE_JOBS } from './invitation.service.ts';
import { defineDelivery, inviterName } from './invite.delivery.ts';
import { InviteService } from './invite.service.ts';
import { registerInviteActions } from './slack/invite.actions.ts';
import { registerInviteCommand } from './slack/invite.command.ts';
import { registerAcceptPage } from './web/accept.page.ts';

export const invitesOf = perApp((deps) => new InviteService(deps.seats, deps.jobs));

/** Invitations: /invite, its modal and shortcuts, delivery by DM or email, the accept page, resend and cancel. */
export const invitesFeature: Feature = {
  name: 'invites',
  async jobs(deps) {
    await defineDelivery(deps, invitesOf(deps));
    // Expired invitations give their seats back within minutes of their expiry.
    await deps.jobs.define(INVITE_JOBS.expire, async () => {
      await invitesOf(deps).expire(deps.orm.em.fork());
    });
    await deps.jobs.boss.schedule(INVITE_JOBS.expire, '*/5 * * * *');
  },
  slack(app, deps) {
    registerInviteCommand(app, deps, invitesOf(deps));
    registerInviteActions(app, deps, invitesOf(deps));
  },
  web: (router, deps) =>
    registerAcceptPage(router, deps.csrf, invitesOf(deps), (id) => inviterName(deps, id)),
};
