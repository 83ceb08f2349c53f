import type { Feature } from '../index.ts';
import { perApp } from '../per-app.ts';
import { ContactService } from './contact.service.ts';
import { registerContactListeners } from './slack/contact.listeners.ts';

const contactsOf = perApp((deps) => new ContactService(deps.seats, deps.jobs));

/** Contacts: /contact, add and edit, find alongside users, convert into users. */
export const contactsFeature: Feature = {
  name: 'contacts',
  jobs: async (deps) => {
    contactsOf(deps);
  },
  slack: (app, deps) => registerContactListeners(app, deps, contactsOf(deps)),
};
