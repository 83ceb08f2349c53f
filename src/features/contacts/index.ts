import type { Feature } from '../feature.ts';
import { registerContactActions } from './slack/actions.ts';
import { registerContactCommand } from './slack/commands.ts';
import { registerContactShortcuts } from './slack/shortcuts.ts';
import { registerContactViews } from './slack/views.ts';

/** Contacts: /contact, add and edit, find alongside users, convert into users. */
export const contactsFeature: Feature = {
  name: 'contacts',
  slack(app, deps) {
    registerContactCommand(app, deps, deps.contacts);
    registerContactShortcuts(app, deps);
    registerContactViews(app, deps, deps.contacts);
    registerContactActions(app, deps, deps.contacts);
  },
};
