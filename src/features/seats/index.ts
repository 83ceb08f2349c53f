import type { Feature } from '../feature.ts';
import { registerSeatJobs } from './seat.jobs.ts';
import { registerSeatActions } from './slack/actions.ts';
import { registerSeatsCommand } from './slack/commands.ts';
import { registerUserChange } from './slack/events.ts';
import { registerSeatViews } from './slack/views.ts';

/** Seats and approvals: /seats, the request messages with their buttons, expiry, deactivation from Slack. */
export const seatsFeature: Feature = {
  name: 'seats',
  jobs: registerSeatJobs,
  slack(app, deps) {
    registerSeatActions(app, deps);
    registerSeatsCommand(app, deps);
    registerUserChange(app, deps);
    registerSeatViews(app, deps, deps.settings);
  },
};
