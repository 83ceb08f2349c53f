import { apiFeature } from './api/index.ts';
import { contactsFeature } from './contacts/index.ts';
import { csvImportFeature } from './csv-import/index.ts';
import { directoryFeature } from './directory/index.ts';
import type { Feature } from './feature.ts';
import { homeFeature } from './home/index.ts';
import { invitesFeature } from './invites/index.ts';
import { joinLinksFeature } from './join-links/index.ts';
import { peopleFeature } from './people/index.ts';
import { scimFeature } from './scim/index.ts';
import { seatsFeature } from './seats/index.ts';
import { webhooksFeature } from './webhooks/index.ts';

/** Every feature of Roster, in the order their jobs, listeners and pages are registered. */
export const features: Feature[] = [
  directoryFeature,
  seatsFeature,
  invitesFeature,
  contactsFeature,
  joinLinksFeature,
  csvImportFeature,
  peopleFeature,
  scimFeature,
  homeFeature,
  apiFeature,
  webhooksFeature,
];
