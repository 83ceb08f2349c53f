import type { Feature } from '../feature.ts';
import { registerPeopleActions } from './slack/actions.ts';
import { registerPeopleCommand } from './slack/commands.ts';
import { registerPeopleForms } from './slack/views.ts';

/** People: `/people` and the person card, with the lifecycle changes an admin makes from it. */
export const peopleFeature: Feature = {
  name: 'people',
  slack(app, deps) {
    registerPeopleCommand(app, deps, deps.person);
    registerPeopleActions(app, deps, deps.person);
    registerPeopleForms(app, deps, deps.person);
  },
};
