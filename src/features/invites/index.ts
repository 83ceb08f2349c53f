import type { Feature } from '../feature.ts';
import { defineDelivery, inviterName } from './invite.delivery.ts';
import { registerInviteActions } from './slack/invite.actions.ts';
import { registerInviteCommand } from './slack/invite.command.ts';
import { registerAcceptPage } from './web/accept.page.ts';

/** Invitations: /invite, its modal and shortcuts, delivery by DM or email, the accept page, resend and cancel. */
export const invitesFeature: Feature = {
  name: 'invites',
  jobs: (deps) => defineDelivery(deps, deps.invites),
  slack(app, deps) {
    registerInviteCommand(app, deps, deps.invites);
    registerInviteActions(app, deps, deps.invites);
  },
  web: (router, deps) => registerAcceptPage(router, deps.csrf, deps.invites, (id) => inviterName(deps, id)),
};
