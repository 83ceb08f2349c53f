import type { MikroORM } from '@mikro-orm/postgresql';
import type { WebClient } from '@slack/web-api';
import { SettingsService } from './features/accounts/settings.service.ts';
import { ApiTokenService } from './features/api/api-token.service.ts';
import { ContactService } from './features/contacts/contact.service.ts';
import { CsvImportService } from './features/csv-import/csv-import.service.ts';
import {
  DirectoryService,
  guestKind,
  isOfWorkspace,
  type Member,
} from './features/directory/directory.service.ts';
import { DIRECTORY_JOBS } from './features/directory/index.ts';
import type { Services } from './features/feature.ts';
import { InviteService } from './features/invites/invite.service.ts';
import { JOIN_JOBS, JoinLinkService } from './features/join-links/join-link.service.ts';
import { PEOPLE_CHANGES, PeopleChanges } from './features/people/people.changes.ts';
import { PersonService } from './features/people/person.service.ts';
import { ScimService } from './features/scim/scim.service.ts';
import { AdminDirectory } from './features/seats/admins.ts';
import { SeatService } from './features/seats/seat.service.ts';
import { SEAT_REQUEST_KINDS, type SeatRequestKind } from './features/seats/seat-request.entity.ts';
import type { JobQueue } from './shared/jobs.ts';

/**
 * Seat requests no flow answers: an import is started by an admin only, whose paid additions take a
 * seat at once or fail, so no request of that kind is ever filed.
 */
export const KINDS_WITHOUT_FLOW: readonly SeatRequestKind[] = ['import'];

/**
 * Builds every service once and registers what approving each kind of seat request does, so an
 * approval never depends on which features happen to be loaded.
 */
export function buildServices(infra: {
  orm: MikroORM;
  jobs: JobQueue;
  slack: WebClient;
  /** For lookups a person may be waiting on (users.info on a mirror miss): never paced, never sleeps on a 429. */
  prompt?: WebClient;
  /** The SCIM service set by the deployment, if any (SCIM_URL, SCIM_TOKEN). */
  scim?: { url: string; token: string };
  /** The secret invitation and join confirmation links are derived from (the Slack signing secret). */
  tokenSecret?: string;
  /** Whether webhook and SCIM URLs may be on this machine or a private network (ALLOW_PRIVATE_URLS). */
  allowPrivateUrls?: boolean;
}): Services {
  const { orm, jobs, slack } = infra;
  const seats = new SeatService(jobs);
  const directory = new DirectoryService();
  const people = new PeopleChanges(seats, jobs);
  const invites = new InviteService(seats, jobs, undefined, { tokenSecret: infra.tokenSecret });
  const contacts = new ContactService(seats, jobs);
  const admins = new AdminDirectory(slack, directory, Date.now, infra.prompt, async () => {
    if (!jobs.has(DIRECTORY_JOBS.sync)) return false;
    await jobs.sendUnlessQueued(DIRECTORY_JOBS.sync, {});
    return true;
  });
  // An approval re-checks whom a request names: one filed before Roster refused people of other
  // organisations may be by or for one of them.
  seats.checkOutsiders(async (em, account, ids) => {
    const outsiders: string[] = [];
    for (const id of ids) {
      // Slack not answering leaves the person as the mirror knows them, or unknown: not refused on a guess.
      const person = await admins.member(em, account, id).catch(() => directory.byId(em, account, id));
      if (person && !isOfWorkspace(person, account.teamId)) outsiders.push(id);
    }
    return outsiders;
  });
  const joinLinks = new JoinLinkService(seats, jobs, {
    // Before the join's transaction opens, so no pooled connection waits on Slack: a poster the mirror never
    // saw, and on the web a member whose guest flags it has not learnt yet (seen before guests were
    // recorded), are asked of Slack once and remembered in the mirror.
    prefetch: async (em, account, { poster, email }) => {
      // Slack failing leaves the poster unknown: their approval is not assumed, and an admin decides.
      let posterNow = await admins.member(em, account, poster).catch(() => null);
      // A guest is no admin, and inside the transaction a poster whose guest flags the mirror lacks counts
      // as one: they are asked now, and if Slack cannot say, the join goes to an admin.
      if (posterNow && guestKind(posterNow) === 'unknown') {
        posterNow = await admins.member(em, account, poster, { guestFlags: true }).catch(() => posterNow);
      }
      const asked = new Map<string, Member | null>([[poster, posterNow]]);
      const member = email ? await directory.byEmail(em, account, email) : null;
      if (member && guestKind(member) === 'unknown') {
        const found = await admins
          .member(em, account, member.slackUserId, { guestFlags: true })
          .catch(() => null);
        if (found) asked.set(found.slackUserId, found);
      }
      return asked;
    },
    isAdmin: (em, account, slackUserId, asked) =>
      admins.isAdminInDatabase(em, account, slackUserId, asked.get(slackUserId)),
    guestByEmail: async (em, account, email, asked) => {
      const member = await directory.byEmail(em, account, email);
      if (!member) return null;
      let kind = guestKind(member);
      const said = asked.get(member.slackUserId);
      if (kind === 'unknown' && said) kind = guestKind(said);
      // If Slack could not say, the address is treated as a guest's, so an admin decides.
      return kind === 'unknown' ? 'multi_channel' : kind;
    },
    deletedInSlack: async (em, account, slackUserId) =>
      (await directory.byId(em, account, slackUserId))?.deleted === true,
    tokenSecret: infra.tokenSecret,
    // Queued with the invitations' retry policy, so a mail server down for hours loses no decision.
    tellJoiner: async (request) => {
      await jobs.send(JOIN_JOBS.tellJoiner, { requestId: request.id }, { singletonKey: request.id });
    },
  });
  const person = new PersonService(seats);
  person.checkGuests((em, account, who, opts) => admins.guestOf(em, account, who, opts));
  invites.checkGuests((em, account, who, opts) => admins.guestOf(em, account, who, opts));
  contacts.checkGuests((em, account, who, opts) => admins.guestOf(em, account, who, opts));
  seats.register('invite', invites.seatFlow());
  seats.register('convert', contacts.seatFlow());
  seats.register('join', joinLinks.seatFlow());
  for (const kind of PEOPLE_CHANGES) seats.register(kind, people.seatFlow(kind));
  const missing = SEAT_REQUEST_KINDS.filter((k) => !seats.flow(k) && !KINDS_WITHOUT_FLOW.includes(k));
  if (missing.length) throw new Error(`no seat flow for requests of kind ${missing.join(', ')}`);
  return {
    seats,
    admins,
    directory,
    people,
    invites,
    contacts,
    joinLinks,
    csvImports: new CsvImportService({ orm, jobs, seats }),
    person,
    settings: new SettingsService(seats),
    scim: new ScimService(jobs, infra.scim, { allowPrivate: infra.allowPrivateUrls ?? false }),
    apiTokens: new ApiTokenService(),
  };
}
