import { createHash } from 'node:crypto';
import type { EntityManager } from '@mikro-orm/postgresql';
import type { App } from '@slack/bolt';
import type { WebClient } from '@slack/web-api';
import type { Logger } from '../../../shared/logger.ts';
import { roster } from '../../../slack/context.ts';
import { busyFor } from '../../../slack/later.ts';
import { isSlackBusy } from '../../../slack/pacing.ts';
import { Account, type IAccount } from '../../accounts/account.entity.ts';
import { isOfWorkspace } from '../../directory/directory.service.ts';
import type { Deps } from '../../feature.ts';
import { homeData } from '../home.service.ts';
import { homeView, outsiderHomeView } from './views.ts';

/** The job that publishes a Home tab Slack did not take at once (rate-limited), drawn when it runs. */
export const HOME_PUBLISH_JOB = 'home.publish';

/** Marks a published tab with a digest of what it shows, kept by Slack in the view's private_metadata. */
const DRAWN = 'home:';

/**
 * Draws `slackUserId`'s Home tab from the database as it is now, and publishes it, unless `shown` (the
 * private_metadata of the tab Slack shows them, given with app_home_opened) says it shows just that already:
 * opening the tab again and again costs Slack calls only when something changed.
 */
export async function publishHome(
  deps: Deps,
  em: EntityManager,
  account: IAccount,
  client: WebClient,
  slackUserId: string,
  shown?: string,
): Promise<void> {
  const view = await drawHome(deps, em, account, slackUserId);
  const drawn = DRAWN + createHash('sha256').update(JSON.stringify(view)).digest('base64url');
  if (shown === drawn) return;
  await client.views.publish({ user_id: slackUserId, view: { ...view, private_metadata: drawn } });
}

/**
 * {@link publishHome}, and when Slack asks Roster to slow down (many people opening the tab in the same
 * minute), a job publishes the tab once Slack allows: one job per person, however often they open it.
 */
export async function publishHomeOrLater(
  deps: Deps,
  em: EntityManager,
  account: IAccount,
  client: WebClient,
  slackUserId: string,
  log: Logger,
  shown?: string,
): Promise<void> {
  try {
    await publishHome(deps, em, account, client, slackUserId, shown);
  } catch (err) {
    const waitMs = isSlackBusy(err) ? busyFor(err) : undefined;
    if (waitMs === undefined || !deps.jobs.has(HOME_PUBLISH_JOB)) throw err;
    const seconds = Math.ceil(waitMs / 1000);
    await deps.jobs.send(
      HOME_PUBLISH_JOB,
      { accountId: account.id, slackUserId },
      { singletonKey: `${account.id}:${slackUserId}`, startAfter: seconds },
    );
    log.info({ user: slackUserId, seconds }, 'Slack is busy: the Home tab is published by a job');
  }
}

/** What `slackUserId`'s Home tab shows now: an admin's, a member's, or an outsider's (nothing of the account). */
async function drawHome(
  deps: Deps,
  em: EntityManager,
  account: IAccount,
  slackUserId: string,
): Promise<ReturnType<typeof homeView>> {
  const person = await deps.admins.member(em, account, slackUserId);
  const isAdmin = await deps.admins.isAdminMember(em, account, person);
  if (person && !isOfWorkspace(person, account.teamId)) {
    // Someone of another organisation (Slack Connect) is nobody here, whatever their address or a Slack id
    // linked before this was checked: they see no one's row and nothing of the account.
    return outsiderHomeView(account);
  }
  const usage = await deps.seats.usage(em, account);
  const data = await homeData(em, account, {
    slackUserId,
    email: person?.email ?? undefined,
    isAdmin,
  });
  const scim = isAdmin ? await deps.scim.status(em, account.id) : undefined;
  return homeView(data, account, { isAdmin }, usage, scim);
}

/** Publishes, through the paced client, a Home tab Slack did not take when it was opened. */
export async function defineHomeJobs(deps: Deps): Promise<void> {
  await deps.jobs.define<{ accountId: string; slackUserId: string }>(
    HOME_PUBLISH_JOB,
    async ({ accountId, slackUserId }) => {
      const em = deps.orm.em.fork();
      const account = await em.findOne(Account, accountId);
      if (!account) return;
      await publishHome(deps, em, account, deps.slack, slackUserId);
    },
    { policy: 'stately', retryLimit: 3, retryDelay: 30, expireInSeconds: 300 },
  );
}

/** Publishes the Home tab each time someone opens it, drawn from the database as it is now. */
export function registerHomeEvents(app: App, deps: Deps): void {
  app.event('app_home_opened', async ({ event, context, client }) => {
    if (event.tab !== 'home') return;
    const { em, account, log } = roster(context);
    const shown = (event as { view?: { private_metadata?: string } }).view?.private_metadata;
    await publishHomeOrLater(deps, em, account, client, event.user, log, shown);
  });
}
