import type { Deps, Feature } from '../index.ts';
import { ContactService } from './contact.service.ts';
import { registerContactListeners } from './slack/contact.listeners.ts';

const services = new WeakMap<Deps, ContactService>();
function contactsOf(deps: Deps): ContactService {
  let service = services.get(deps);
  if (!service) {
    service = new ContactService(deps.seats, deps.jobs);
    services.set(deps, service);
  }
  return service;
}

/** Contacts: /contact, add and edit, find alongside users, convert into users. */
export const contactsFeature: Feature = {
  name: 'contacts',
  jobs: async (deps) => {
    contactsOf(deps);
  },
  slack: (app, deps) => registerContactListeners(app, deps, contactsOf(deps)),
};
