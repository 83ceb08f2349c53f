import type { Feature } from '../feature.ts';
import { registerSeatJobs } from './seat.jobs.ts';
import { registerSeatActions } from './slack/approval.actions.ts';
import { registerSeatsCommand } from './slack/seats.command.ts';
import { registerSettings } from './slack/settings.ts';
import { registerUserChange } from './slack/user-change.event.ts';

/** Seats and approvals: /seats, the request messages with their buttons, expiry, deactivation from Slack. */
export const seatsFeature: Feature = {
  name: 'seats',
  jobs: registerSeatJobs,
  slack(app, deps) {
    registerSeatActions(app, deps);
    registerSeatsCommand(app, deps);
    registerUserChange(app, deps);
    registerSettings(app, deps, deps.settings);
  },
};
