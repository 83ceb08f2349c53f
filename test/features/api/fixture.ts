import { Writable } from 'node:stream';
import { query, sql } from '../../../src/db/sql.ts';
import { Account, type IAccount, PermissionSet } from '../../../src/features/accounts/account.entity.ts';
import { ensureAccount } from '../../../src/features/accounts/account.service.ts';
import { Contact } from '../../../src/features/contacts/contact.entity.ts';
import { type Role, User, type UserStatus } from '../../../src/features/people/user.entity.ts';
import { createLogger } from '../../../src/shared/logger.ts';
import { startTestApp, type TestApp } from '../../support/app.ts';
import { ApiClient, allPages, tokenFor } from './support.ts';

/**
 * The running app for an API test file, with two accounts (the workspace's, and another) and a token for
 * each; the app's log lines are kept in `logLines`. Filled in by the file's beforeAll.
 */
export type ApiApp = {
  t: TestApp;
  api: ApiClient;
  account: IAccount;
  other: IAccount;
  token: string;
  otherToken: string;
  logLines: string[];
};

export async function startApiApp(rateLimit: number): Promise<ApiApp> {
  const logLines: string[] = [];
  const sink = new Writable({
    write(chunk, _enc, done) {
      logLines.push(String(chunk));
      if (process.env.API_TEST_LOG) process.stderr.write(String(chunk));
      done();
    },
  });
  const t = await startTestApp({
    seatLimit: 1000,
    env: { API_RATE_LIMIT: String(rateLimit) },
    logger: createLogger('debug', sink),
  });
  const account = await t.account();
  const other = await newAccount(t, 'T0OTHER');
  return {
    t,
    api: new ApiClient(t),
    account,
    other,
    token: await tokenFor(t, account, 'Reader'),
    otherToken: await tokenFor(t, other, 'Other reader'),
    logLines,
  };
}

/** Another workspace's account, with seats to spare. */
export async function newAccount(t: TestApp, teamId: string): Promise<IAccount> {
  const created = await ensureAccount(t.em(), teamId, `${teamId} Co`);
  await query(t.em(), sql`update account set seat_limit = 1000 where id = ${created.id}`);
  return created;
}

export async function addPerson(
  t: TestApp,
  owner: IAccount,
  email: string,
  role: Role = 'employee',
  status: UserStatus = 'active',
  extra: Partial<{ firstName: string; loginMissing: boolean; permissionSet: string }> = {},
): Promise<string> {
  const em = t.em();
  const permissionSet = extra.permissionSet
    ? await em.findOneOrFail(PermissionSet, { account: owner.id, name: extra.permissionSet })
    : null;
  const user = em.create(User, {
    account: em.getReference(Account, owner.id),
    email,
    role,
    status,
    firstName: extra.firstName ?? null,
    loginMissing: extra.loginMissing ?? false,
    permissionSet,
  });
  await em.flush();
  return user.id;
}

export async function addContact(
  t: TestApp,
  owner: IAccount,
  name: string,
  email: string | null = null,
): Promise<string> {
  const em = t.em();
  const contact = em.create(Contact, { account: em.getReference(Account, owner.id), name, email });
  await em.flush();
  return contact.id;
}

/** A change made with plain SQL, as a set-based statement or a manual fix would make it. */
export const rename = (t: TestApp, id: string, firstName: string) =>
  query(t.em(), sql`update app_user set first_name = ${firstName} where id = ${id}`);

/** The ids, in order, of every row a token lists from the start. */
export async function idsOf(a: ApiApp, path: string, token = a.token): Promise<string[]> {
  const { rows } = await allPages(a.api, path, token, {});
  return rows.map((r) => r.id);
}
