import { createHash } from 'node:crypto';
import { query, sql } from '../../db/sql.ts';
import { TryLater } from '../../shared/jobs.ts';
import type { RosterApp } from '../../slack/app.ts';
import { Account } from '../accounts/account.entity.ts';
import type { Deps, Feature } from '../feature.ts';
import { deactivateDeletedInSlack, deactivateFromSlack } from '../people/people.service.ts';
import { isOfWorkspace, STALE_MS } from './directory.service.ts';
import { registerDirectoryEvents } from './slack/events.ts';

export const DIRECTORY_JOBS = { sync: 'slack.directory-sync' } as const;

/** How soon a sync job that found another sync running looks again whether it finished or lapsed. */
const HOLDER_CHECK_MS = 10_000;

/**
 * The Slack directory mirror: synced at start when it is empty or stale and every night, kept fresh by
 * team_join and user_change; after each sync, everyone the mirror knows as deleted in Slack and Roster still
 * does not is deactivated in Roster, whether no event brought the deletion or its job gave up. One sync per workspace at a time across every instance (a lease in
 * slack_directory_sync): a job that finds another sync running looks again shortly, and ends once that one
 * has finished, or syncs itself once its lease lapsed (its holder stopped or died).
 */
export const directoryFeature: Feature = {
  name: 'directory',
  async jobs(deps) {
    const { jobs, orm, slack, logger, directory } = deps;
    await jobs.define<{ force?: boolean }>(
      DIRECTORY_JOBS.sync,
      async ({ force }, { dueOn, signal }) => {
        const em = orm.em.fork();
        // users.list reads the bot token's workspace: only its account's mirror is written, never that of
        // another workspace the database knows (one an earlier bot token served).
        const { team_id: teamId } = await slack.auth.test();
        const installed = await query<{ id: string }>(
          em,
          sql`select a.id from slack_installation i join account a on a.team_id = i.team_id
              where i.team_id = ${teamId ?? null}`,
        );
        for (const { id } of installed) {
          const account = await em.findOneOrFail(Account, id);
          const synced = await directory.syncedAt(em, account);
          if (!force && synced && Date.now() - synced.getTime() < STALE_MS) continue;
          // A sync that finished since this job was due did its work (one it waited for, below). Since it
          // was due, not queued: a catch-up queued to start an hour later reads what Slack dropped meanwhile.
          if (synced && synced >= dueOn) continue;
          const log = logger.child({ job: DIRECTORY_JOBS.sync, team: account.teamId });
          const result = await directory.sync(em, account, slack, log, {
            signal,
            // Someone Slack deactivated while its user_change did not reach Roster (Roster down for longer
            // than Slack retries, events turned off): deactivated as the event would have, once, as of when
            // the page was read, so an admin's reactivation since stands.
            async onDeleted(tx, members, asOf) {
              for (const member of members) {
                if (!isOfWorkspace(member, account.teamId)) continue;
                const count = await deactivateFromSlack(
                  tx,
                  deps.seats,
                  account,
                  member.slackUserId,
                  member.email ?? undefined,
                  { asOf, log },
                );
                if (count) {
                  log.info(
                    { slackUser: member.slackUserId, count },
                    'deactivated in Slack, found by the directory sync: deactivated in Roster',
                  );
                }
              }
            },
          });
          // Another sync holds the workspace. It reconciles when it ends, unless its holder stopped or died
          // (its lease then lapses): this job looks again, and syncs itself if nothing has finished by then.
          if (result.running) {
            throw new TryLater(
              Math.min(result.leaseLeftMs + 1000, HOLDER_CHECK_MS),
              'another Slack directory sync holds the workspace',
            );
          }
          // Whoever the mirror knows as deleted and Roster still does not (the event's job gave up, or the
          // mirror learnt of it before this sync): deactivated now, unless an admin brought them back since.
          const count = await deactivateDeletedInSlack(em, deps.seats, account, { log });
          if (count) log.info({ count }, 'deleted in Slack: deactivated in Roster by the directory sync');
        }
      },
      { localConcurrency: 1, retryLimit: 10, retryDelay: 30, retryBackoff: true },
    );
    await jobs.boss.schedule(DIRECTORY_JOBS.sync, '23 4 * * *', { force: true });
  },
  slack(app, deps) {
    registerDirectoryEvents(app, deps);
    catchUpOnDroppedEvents(app, deps);
  },
};

/**
 * The id of the sync that catches up on a workspace's events Slack dropped, for the notices of the clock hour
 * `window`: the same for every notice of that hour, whichever instance gets it, so they queue one sync.
 */
export function catchUpJobId(teamId: string, window: Date): string {
  const h = createHash('sha256').update(`directory catch-up:${teamId}:${window.toISOString()}`).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-8${h.slice(13, 16)}-a${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

/**
 * Slack dropped the workspace's events for up to an hour (a joiner, a promotion, a deactivation, an email
 * changed): a full directory sync once that hour has passed reads everyone as they are then,
 * so the mirror does not stay wrong until the night, and the reconciliation after it deactivates in Roster
 * whoever Slack deleted meanwhile. One sync per clock hour however many notices come in it.
 */
function catchUpOnDroppedEvents(app: RosterApp, deps: Deps): void {
  app.rateLimits.on(async ({ teamId, until, window }) => {
    const id = await deps.jobs.send(
      DIRECTORY_JOBS.sync,
      { force: true },
      { id: catchUpJobId(teamId, window), startAfter: until },
    );
    const at = until.toISOString().slice(11, 16);
    return {
      again: id === null,
      action: `a full directory sync is queued for ${at} UTC, an hour after Slack began dropping them, so the mirror catches up on them`,
    };
  });
}
