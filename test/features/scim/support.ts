import { query, sql } from '../../../src/db/sql.ts';
import { User } from '../../../src/features/people/user.entity.ts';
import { ScimSync } from '../../../src/features/scim/scim.entity.ts';
import { eventually, type TestApp } from '../../support/app.ts';
import type { ScimServer, StoredUser } from '../../support/scim-server.ts';
import { textOf } from '../../support/views.ts';

/** The Home tab as `user` sees it after opening it. */
export async function openHome(t: TestApp, user: string) {
  // The tab is published (unless it shows this already) before Slack's request is answered.
  await t.slack.event({ type: 'app_home_opened', user, tab: 'home', channel: `D${user}` });
  return t.standin.homeView(user)!;
}

/** Opens the SCIM form from the Home tab as an admin. */
export async function openScimForm(t: TestApp, user = 'UADMIN') {
  const home = await openHome(t, user);
  await t.slack.clickButton(home, { actionId: 'scim_open' }, { user });
  const view = t.standin.lastOpenedView();
  expect(view.callback_id).toBe('scim_connect_modal');
  return view;
}

/** Connects the service from Slack and waits for the first reconciliation's report. */
export async function connect(t: TestApp, server: ScimServer, token = server.token) {
  const view = await openScimForm(t);
  const res = await t.slack.submitView(view, { url: server.url, token }, { user: 'UADMIN' });
  expect(res.status).toBe(200);
  return t.standin.lastOpenedView();
}

/** The service's user for this email, once `check` holds for it. */
export function remoteUser(
  server: ScimServer,
  email: string,
  check: (u: StoredUser) => boolean = () => true,
) {
  return eventually(() => {
    const u = server.byUserName(email);
    return u && check(u) ? u : undefined;
  });
}

/** The sync row of a Roster user, once `check` holds. */
export async function syncState(
  t: TestApp,
  email: string,
  check: (s: any) => boolean = (s) => s.state === 'synced',
) {
  const user = await t.em().findOneOrFail(User, { email });
  return eventually(async () => {
    const row = await t.em().findOne(ScimSync, { userId: user.id });
    return row && check(row) ? row : undefined;
  });
}

/** Once the connection's reconciliation (the one Connect starts) has run: when it did. */
export function reconciled(t: TestApp): Promise<Date> {
  return eventually(async () => {
    const [c] = await query<{ at: Date | null }>(
      t.em(),
      sql`select last_reconciled_at as at from scim_connection`,
    );
    return c?.at ?? undefined;
  }, 20_000);
}

/** The last DM to `user` whose text matches. */
export function dmTo(t: TestApp, user: string, pattern: RegExp) {
  return eventually(
    () => t.standin.messages.filter((m) => m.channel === `D${user}` && pattern.test(textOf(m))).at(-1),
    15_000,
  );
}
