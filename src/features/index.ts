import type { MikroORM } from '@mikro-orm/postgresql';
import type { App } from '@slack/bolt';
import type { WebClient } from '@slack/web-api';
import type { Config } from '../config.ts';
import type { JobQueue } from '../shared/jobs.ts';
import type { Logger } from '../shared/logger.ts';
import type { Mailer } from '../shared/mailer.ts';
import type { Csrf, Router } from '../web/router.ts';
import { contactsFeature } from './contacts/index.ts';
import { csvImportFeature } from './csv-import/index.ts';
import { homeFeature } from './home/index.ts';
import { invitesFeature } from './invites/index.ts';
import { joinLinksFeature } from './join-links/index.ts';
import { peopleFeature } from './people/index.ts';
import type { PeopleChanges } from './people/people.changes.ts';
import type { AdminDirectory } from './seats/admins.ts';
import { seatsFeature } from './seats/index.ts';
import type { SeatService } from './seats/seat.service.ts';

/** What every feature is built from; made once in the composition root. */
export type Deps = {
  config: Config;
  logger: Logger;
  orm: MikroORM;
  jobs: JobQueue;
  mailer: Mailer;
  slack: WebClient;
  router: Router;
  csrf: Csrf;
  seats: SeatService;
  admins: AdminDirectory;
  people: PeopleChanges;
};

/** A capability of Roster and the surfaces it adds: Slack listeners, web routes, background jobs. */
export type Feature = {
  name: string;
  jobs?(deps: Deps): Promise<void>;
  slack?(app: App, deps: Deps): void;
  web?(router: Router, deps: Deps): void;
};

export const features: Feature[] = [
  seatsFeature,
  invitesFeature,
  contactsFeature,
  joinLinksFeature,
  csvImportFeature,
  peopleFeature,
  homeFeature,
];
