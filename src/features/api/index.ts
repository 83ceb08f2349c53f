import type { Feature } from '../feature.ts';
import { registerApiTokenSlack } from './slack/actions.ts';
import { registerApiRoutes } from './web/routes.ts';

/** The read API (/api/v1) and its tokens, managed by admins from App Home. */
export const apiFeature: Feature = {
  name: 'api',
  slack: registerApiTokenSlack,
  web: registerApiRoutes,
};
