import type { Feature } from '../feature.ts';
import { defineHomeJobs, registerHomeEvents } from './slack/events.ts';

/** The App Home tab, rendered when someone opens it (by a job when Slack is busy). */
export const homeFeature: Feature = {
  name: 'home',
  slack: registerHomeEvents,
  jobs: defineHomeJobs,
};
