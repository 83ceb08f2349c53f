import type { Feature } from '../feature.ts';
import { registerContactListeners } from './slack/commands.ts';

/** Contacts: /contact, add and edit, find alongside users, convert into users. */
export const contactsFeature: Feature = {
  name: 'contacts',
  slack: (app, deps) => registerContactListeners(app, deps, deps.contacts),
};
