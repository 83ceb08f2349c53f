import type { MikroORM } from '@mikro-orm/postgresql';
import type { WebClient } from '@slack/web-api';
import type { Config } from '../config.ts';
import type { JobQueue } from '../shared/jobs.ts';
import type { Logger } from '../shared/logger.ts';
import type { Mailer } from '../shared/mailer.ts';
import type { RosterApp } from '../slack/app.ts';
import type { Outcomes } from '../web/outcome.ts';
import type { Csrf, Router } from '../web/router.ts';
import type { SettingsService } from './accounts/settings.service.ts';
import type { ApiTokenService } from './api/api-token.service.ts';
import type { ContactService } from './contacts/contact.service.ts';
import type { CsvImportService } from './csv-import/csv-import.service.ts';
import type { DirectoryService } from './directory/directory.service.ts';
import type { InviteService } from './invites/invite.service.ts';
import type { JoinLinkService } from './join-links/join-link.service.ts';
import type { PeopleChanges } from './people/people.changes.ts';
import type { PersonService } from './people/person.service.ts';
import type { ScimService } from './scim/scim.service.ts';
import type { AdminDirectory } from './seats/admins.ts';
import type { SeatService } from './seats/seat.service.ts';

/** Every service of Roster, built once with its seat flows registered (src/services.ts). */
export type Services = {
  seats: SeatService;
  admins: AdminDirectory;
  people: PeopleChanges;
  invites: InviteService;
  contacts: ContactService;
  joinLinks: JoinLinkService;
  csvImports: CsvImportService;
  person: PersonService;
  directory: DirectoryService;
  settings: SettingsService;
  scim: ScimService;
  apiTokens: ApiTokenService;
};

/** What every feature is built from; made once in the composition root (src/app.ts). */
export type Deps = Services & {
  config: Config;
  logger: Logger;
  orm: MikroORM;
  jobs: JobQueue;
  mailer: Mailer;
  slack: WebClient;
  router: Router;
  csrf: Csrf;
  /** The answer pages of the forms that act, shown after a redirect (Post/Redirect/Get). */
  outcomes: Outcomes;
};

/** A capability of Roster and the surfaces it adds: Slack listeners, web routes, background jobs. */
export type Feature = {
  name: string;
  /** Defines the feature's jobs; may return a stop for what it keeps running (run when Roster stops). */
  jobs?(deps: Deps): Promise<void | (() => Promise<void>)>;
  slack?(app: RosterApp, deps: Deps): void;
  web?(router: Router, deps: Deps): void;
};
