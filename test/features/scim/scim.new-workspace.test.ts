/**
 * Roster moved to another Slack workspace (a new bot token: a new account in the same database, the old one
 * kept) and connected to the same SCIM service: a person of the new workspace whose email the service
 * holds, from the user Roster created for them under the old account, is the same human, and is linked to
 * it rather than refused as another person's.
 */
import { query, sql } from '../../../src/db/sql.ts';
import { ensureAccount } from '../../../src/features/accounts/account.service.ts';
import { ScimConnection } from '../../../src/features/scim/scim.entity.ts';
import { drain } from '../../../src/features/scim/scim.sync.ts';
import { connectedService } from './service.ts';

let service: Awaited<ReturnType<typeof connectedService>>;
beforeAll(async () => {
  service = await connectedService('T_ZZ_OLD_WORKSPACE');
});
afterAll(() => service.close());

const addPerson = (accountId: string, email: string) =>
  query(
    service.orm.em.fork(),
    sql`insert into app_user (id, account_id, email, first_name, role, status)
      values (gen_random_uuid(), ${accountId}, ${email}, 'Ann', 'client', 'active')`,
  );

it('a person of the new workspace is linked to the user Roster made for them under the old one', async () => {
  const { orm, server, accountId: oldAccount, client } = service;
  await addPerson(oldAccount, 'ann@acme.test');
  await drain(orm.em.fork(), await service.connection(), client);
  const original = server.byUserName('ann@acme.test');
  expect(original).toBeDefined();

  // The new workspace, on the same database and the same service.
  const newAccount = (await ensureAccount(orm.em.fork(), 'T_ZZ_NEW_WORKSPACE')).id;
  await query(
    orm.em.fork(),
    sql`insert into scim_connection (id, account_id, base_url, token)
      values (gen_random_uuid(), ${newAccount}, ${server.url}, ${server.token})`,
  );
  await addPerson(newAccount, 'ann@acme.test');
  const connection = await orm.em.fork().findOneOrFail(ScimConnection, { account: newAccount });
  await drain(orm.em.fork(), connection, client);

  const [link] = await query<{ state: string; remoteId: string | null; lastError: string | null }>(
    orm.em.fork(),
    sql`select s.state, s.remote_id as "remoteId", s.last_error as "lastError"
        from scim_sync s where s.account_id = ${newAccount}`,
  );
  expect(link).toMatchObject({ state: 'synced', remoteId: original!.id });
}, 60_000);
