import { roster } from '../../slack/context.ts';
import type { Feature } from '../feature.ts';
import { homeView } from './slack/views.ts';

/** The App Home tab, rendered when someone opens it. */
export const homeFeature: Feature = {
  name: 'home',
  slack(app, deps) {
    app.event('app_home_opened', async ({ event, context, client }) => {
      if (event.tab !== 'home') return;
      const { em, account } = roster(context);
      const person = await deps.admins.slackPerson(event.user);
      const isAdmin = await deps.admins.isAdmin(em, account, event.user);
      const usage = await deps.seats.usage(em, account);
      const view = await homeView(
        em,
        account,
        { slackUserId: event.user, email: person.email, isAdmin },
        usage,
      );
      await client.views.publish({ user_id: event.user, view });
    });
  },
};
