import type { EntityManager } from '@mikro-orm/postgresql';
import type { App } from '@slack/bolt';
import type { WebClient } from '@slack/web-api';
import { roster } from '../../../slack/context.ts';
import type { IAccount } from '../../accounts/account.entity.ts';
import { isOfWorkspace } from '../../directory/directory.service.ts';
import type { Deps } from '../../feature.ts';
import { homeData } from '../home.service.ts';
import { homeView, outsiderHomeView } from './views.ts';

/** Draws `slackUserId`'s Home tab from the database as it is now, and publishes it. */
export async function publishHome(
  deps: Deps,
  em: EntityManager,
  account: IAccount,
  client: WebClient,
  slackUserId: string,
): Promise<void> {
  const person = await deps.admins.member(em, account, slackUserId);
  const isAdmin = await deps.admins.isAdminMember(em, account, person);
  if (person && !isOfWorkspace(person, account.teamId)) {
    // Someone of another organisation (Slack Connect) is nobody here, whatever their address or a Slack id
    // linked before this was checked: they see no one's row and nothing of the account.
    await client.views.publish({ user_id: slackUserId, view: outsiderHomeView(account) });
    return;
  }
  const usage = await deps.seats.usage(em, account);
  const data = await homeData(em, account, {
    slackUserId,
    email: person?.email ?? undefined,
    isAdmin,
  });
  const scim = isAdmin ? await deps.scim.status(em, account.id) : undefined;
  await client.views.publish({
    user_id: slackUserId,
    view: homeView(data, account, { isAdmin }, usage, scim),
  });
}

/** Publishes the Home tab each time someone opens it, drawn from the database as it is now. */
export function registerHomeEvents(app: App, deps: Deps): void {
  app.event('app_home_opened', async ({ event, context, client }) => {
    if (event.tab !== 'home') return;
    const { em, account } = roster(context);
    await publishHome(deps, em, account, client, event.user);
  });
}
