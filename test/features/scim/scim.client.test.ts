import { initORM, type ORM } from '../../../src/db/orm.ts';
import { query, sql } from '../../../src/db/sql.ts';
import { ensureAccount } from '../../../src/features/accounts/account.service.ts';
import { retryAfterMs, ScimClient, ScimError } from '../../../src/features/scim/scim.client.ts';
import { ScimConnection } from '../../../src/features/scim/scim.entity.ts';
import { drain } from '../../../src/features/scim/scim.sync.ts';
import { createTestDatabase, type TestDatabase } from '../../support/database.ts';
import { type ScimServer, startScimServer } from '../../support/scim-server.ts';

let db: TestDatabase;
let orm: ORM;
let server: ScimServer;
let accountId: string;

beforeAll(async () => {
  db = await createTestDatabase();
  orm = await initORM(db.url);
  server = await startScimServer();
  accountId = (await ensureAccount(orm.em.fork(), 'T_SCIM_CLIENT')).id;
});
afterAll(async () => {
  await orm.close(true);
  await server.close();
  await db.drop();
});

describe('the SCIM client', () => {
  it('gives up on a call the service does not answer in time, as a failure worth retrying', async () => {
    server.slow(1500);
    const client = new ScimClient(server.url, server.token, { timeoutMs: 300, allowPrivate: true });
    const err = await client.findByUserName('nobody@acme.test').catch((e) => e);
    expect(err).toBeInstanceOf(ScimError);
    expect(err).toMatchObject({ kind: 'transient', status: 0 });
    expect(err.message).toContain('no answer within 0.3 s');
  });

  it('reads Retry-After as seconds or as a date', () => {
    expect(retryAfterMs('7')).toBe(7000);
    expect(retryAfterMs(new Date(Date.now() + 5000).toUTCString(), Date.now())).toBeGreaterThan(3000);
    expect(retryAfterMs('soon')).toBeUndefined();
    expect(retryAfterMs(null)).toBeUndefined();
  });

  it('encodes userNames in the filter, so + and & reach the service as written', async () => {
    const plus = server.add({ userName: 'ana+roster&co@acme.test', active: true });
    server.add({ userName: 'ana roster', active: true });
    const client = new ScimClient(server.url, server.token, { allowPrivate: true });
    expect((await client.findByUserName('ana+roster&co@acme.test'))?.id).toBe(plus.id);
    expect(await client.findByUserName('ana+nobody@acme.test')).toBeNull();
  });

  it('never puts the token in an error', async () => {
    const client = new ScimClient(server.url, 'secret-token-value', { allowPrivate: true });
    const err = await client.check().catch((e) => e);
    expect(err).toMatchObject({ kind: 'unauthorized', status: 401 });
    expect(JSON.stringify({ message: err.message, stack: err.stack })).not.toContain('secret-token-value');
  });
});

describe('the sync of pending people', () => {
  it('backs off after a timeout and pushes the person once the service answers', async () => {
    const em = orm.em.fork();
    await query(
      em,
      sql`insert into scim_connection (id, account_id, base_url, token)
        values (gen_random_uuid(), ${accountId}, ${server.url}, ${server.token})`,
    );
    await query(
      em,
      sql`insert into app_user (id, account_id, email, first_name, role, status)
        values (gen_random_uuid(), ${accountId}, 'slow@acme.test', 'Slow', 'client', 'active')`,
    );
    const connection = await em.findOneOrFail(ScimConnection, { account: accountId });
    const client = new ScimClient(server.url, server.token, { timeoutMs: 300, allowPrivate: true });
    server.slow(1500);
    const first = await drain(em, connection, client);
    expect(first.synced).toBe(0);
    expect(first.wakeAt!.getTime()).toBeGreaterThan(Date.now());
    const [state] = await query<{ state: string; attempts: number; lastError: string }>(
      em,
      sql`select state, attempts, last_error as "lastError" from scim_sync where account_id = ${accountId}`,
    );
    // The service answered its list just after (the slowness was once): the attempt counts, one of twelve.
    expect(state).toEqual({
      state: 'pending',
      attempts: 1,
      lastError: expect.stringContaining('no answer within'),
    });
    // Paused: a drain now calls nothing.
    const calls = server.calls.length;
    const paused = await orm.em.fork().findOneOrFail(ScimConnection, { account: accountId });
    expect((await drain(orm.em.fork(), paused, client)).synced).toBe(0);
    expect(server.calls.length).toBe(calls);

    await new Promise((r) => setTimeout(r, Math.max(0, first.wakeAt!.getTime() - Date.now()) + 50));
    // The person's own backoff may end a little after the connection's pause.
    let synced = 0;
    for (let i = 0; i < 20 && !synced; i++) {
      const fresh = await orm.em.fork().findOneOrFail(ScimConnection, { account: accountId });
      synced = (await drain(orm.em.fork(), fresh, client)).synced;
      if (!synced) await new Promise((r) => setTimeout(r, 200));
    }
    expect(synced).toBe(1);
    expect(server.byUserName('slow@acme.test')).toMatchObject({ active: true, name: { givenName: 'Slow' } });
    expect((await orm.em.fork().findOneOrFail(ScimConnection, { account: accountId })).failures).toBe(0);
  });
});
