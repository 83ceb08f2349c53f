import type { Feature } from '../feature.ts';
import { registerHomeEvents } from './slack/events.ts';

/** The App Home tab, rendered when someone opens it. */
export const homeFeature: Feature = {
  name: 'home',
  slack: registerHomeEvents,
};
