import type { Feature } from '../feature.ts';
import { registerScimJobs } from './scim.jobs.ts';
import { registerScimActions } from './slack/actions.ts';

/** SCIM 2.0 provisioning: keeps the connected service's users equal to Roster's. */
export const scimFeature: Feature = {
  name: 'scim',
  jobs: registerScimJobs,
  slack: registerScimActions,
};
