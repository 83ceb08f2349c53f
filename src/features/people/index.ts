import type { Feature } from '../index.ts';
import { perApp } from '../per-app.ts';
import { PersonService } from './person.service.ts';
import { registerPeopleActions } from './slack/actions.ts';
import { registerPeopleCommand } from './slack/commands.ts';

export const personServiceOf = perApp((deps) => new PersonService(deps.seats));

/** People: `/people` and the person card, with the lifecycle changes an admin makes from it. */
export const peopleFeature: Feature = {
  name: 'people',
  slack(app, deps) {
    registerPeopleCommand(app, deps, personServiceOf(deps));
    registerPeopleActions(app, deps, personServiceOf(deps));
  },
};
