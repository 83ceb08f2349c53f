import { initORM, type ORM } from '../../../src/db/orm.ts';
import { query, sql } from '../../../src/db/sql.ts';
import { ensureAccount } from '../../../src/features/accounts/account.service.ts';
import { ScimClient } from '../../../src/features/scim/scim.client.ts';
import { type IScimConnection, ScimConnection } from '../../../src/features/scim/scim.entity.ts';
import { createTestDatabase } from '../../support/database.ts';
import { type ScimServer, startScimServer } from '../../support/scim-server.ts';

/**
 * A database of its own with one account connected to a SCIM test service (started with `opts`), for tests
 * of the sync below the Slack surface: the connection as saved, and a client to the service.
 */
export async function connectedService(
  teamId: string,
  opts: Parameters<typeof startScimServer>[0] = {},
): Promise<{
  orm: ORM;
  server: ScimServer;
  accountId: string;
  client: ScimClient;
  connection(): Promise<IScimConnection>;
  close(): Promise<void>;
}> {
  const db = await createTestDatabase();
  const orm = await initORM(db.url);
  const server = await startScimServer(opts);
  const accountId = (await ensureAccount(orm.em.fork(), teamId)).id;
  await query(
    orm.em.fork(),
    sql`insert into scim_connection (id, account_id, base_url, token)
      values (gen_random_uuid(), ${accountId}, ${server.url}, ${server.token})`,
  );
  return {
    orm,
    server,
    accountId,
    client: new ScimClient(server.url, server.token, { allowPrivate: true }),
    connection: () => orm.em.fork().findOneOrFail(ScimConnection, { account: accountId }),
    async close() {
      await orm.close(true);
      await server.close();
      await db.drop();
    },
  };
}
