import type { Feature } from '../feature.ts';
import { resetPositionsFromElsewhere } from './api.positions.ts';
import { registerApiTokenSlack } from './slack/actions.ts';
import { registerApiRoutes } from './web/routes.ts';

/** The read API (/api/v1) and its tokens, managed by admins from App Home. */
export const apiFeature: Feature = {
  name: 'api',
  // No queue of its own: at start, before any request, positions a restore brought are put right.
  async jobs(deps) {
    await resetPositionsFromElsewhere(deps.orm.em.fork(), deps.logger);
  },
  slack: registerApiTokenSlack,
  web: registerApiRoutes,
};
