import type { Deps, Feature } from '../index.ts';
import { defineDelivery } from './invite.delivery.ts';
import { InviteService } from './invite.service.ts';
import { registerInviteActions } from './slack/invite.actions.ts';
import { registerInviteCommand } from './slack/invite.command.ts';
import { registerAcceptPage } from './web/accept.page.ts';

const services = new WeakMap<Deps, InviteService>();
/** One service per running app (tests run several in one process). */
function invitesOf(deps: Deps): InviteService {
  let service = services.get(deps);
  if (!service) {
    service = new InviteService(deps.seats, deps.jobs);
    services.set(deps, service);
  }
  return service;
}

/** Invitations: /invite, its modal and shortcuts, delivery by DM or email, the accept page, resend and cancel. */
export const invitesFeature: Feature = {
  name: 'invites',
  jobs: (deps) => defineDelivery(deps, invitesOf(deps)),
  slack(app, deps) {
    registerInviteCommand(app, deps, invitesOf(deps));
    registerInviteActions(app, deps, invitesOf(deps));
  },
  web: (router, deps) => registerAcceptPage(router, deps.csrf, invitesOf(deps)),
};
