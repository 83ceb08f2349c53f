/**
 * A full SCIM reconciliation (Sync now) of 10,000 users against a real SCIM 2.0 server (SCIMMY, the one
 * the tests use) on this machine, next to a reference: the same number of plain `POST /Users` from one
 * process with the same number of calls in flight, which is the least any client must spend to create them.
 *
 *   node bench/scim-sync.ts            (with node_modules/.bin on PATH, for Node 24)
 *
 * Cases: the first reconciliation (every user created), a second one with 10% of the users changed in
 * the service behind Roster's back (names changed, half of those deactivated), and one with nothing to
 * do. Also the cost of the change-detection triggers on a bulk insert of the same users.
 *
 * It creates its own database on DATABASE_URL's server (default postgres://postgres@127.0.0.1:5432), runs
 * the migrations, and drops the database at the end. BENCH_USERS sets the number of users (default 10,000).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import type { MikroORM } from '@mikro-orm/postgresql';
import pg from 'pg';
import { initORM } from '../src/db/orm.ts';
import { query, sql } from '../src/db/sql.ts';
import { ScimClient } from '../src/features/scim/scim.client.ts';
import { ScimConnection } from '../src/features/scim/scim.entity.ts';
import { createBody, desiredShape, type SyncedUser } from '../src/features/scim/scim.mapping.ts';
import { reconcile } from '../src/features/scim/scim.reconcile.ts';
import { CONCURRENCY } from '../src/features/scim/scim.sync.ts';

/**
 * The SCIM server runs in a process of its own, as a product's service would: its work does not share
 * Roster's event loop. A fresh one for each run that needs an empty service.
 */
async function startServer(): Promise<{ url: string; token: string; stop(): Promise<void> }> {
  const code = `import { startScimServer } from ${JSON.stringify(new URL('../test/support/scim-server.ts', import.meta.url).href)};
const s = await startScimServer();
console.log(JSON.stringify({ url: s.url, token: s.token }));`;
  const child: ChildProcess = spawn(process.execPath, ['--input-type=module', '-e', code], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const [first] = (await once(createInterface({ input: child.stdout! }), 'line')) as [string];
  const { url, token } = JSON.parse(first) as { url: string; token: string };
  return {
    url,
    token,
    async stop() {
      child.kill();
      await once(child, 'exit');
    },
  };
}

const users = Number(process.env.BENCH_USERS ?? 10_000);
/** The target: a reconciliation that creates everyone costs at most this many times the plain POSTs. */
const TARGET_RATIO = 1.5;
const adminUrl = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const dbName = `roster_bench_scim_${randomBytes(4).toString('hex')}`;
const admin = new pg.Client({ connectionString: adminUrl });
await admin.connect();
await admin.query(`create database "${dbName}"`);
const url = new URL(adminUrl);
url.pathname = `/${dbName}`;

let server = await startServer();
let orm: MikroORM | undefined;
const seconds = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
const rate = (n: number, ms: number) => `${Math.round(n / (ms / 1000)).toLocaleString('en-US')} users/s`;
const line = (label: string, ms: number, n = users) =>
  console.log(`  ${label.padEnd(52)} ${seconds(ms).padStart(9)}  ${rate(n, ms).padStart(14)}`);

try {
  orm = await initORM(url.toString(), { migrate: true });
  const em = orm.em.fork();
  const newAccount = async (teamId: string) =>
    (
      await query<{ id: string }>(
        em,
        sql`insert into account (id, team_id, seat_limit) values (gen_random_uuid(), ${teamId}, ${users}) returning id`,
      )
    )[0]!.id;
  const account = await newAccount('T_BENCH');
  const other = await newAccount('T_BENCH_NOSCIM');
  await query(
    em,
    sql`insert into scim_connection (id, account_id, base_url, token)
      values (gen_random_uuid(), ${account}, ${server.url}, ${server.token})`,
  );
  const insertUsers = (acct: string) =>
    query(
      em,
      sql`insert into app_user (id, account_id, email, first_name, last_name, title, role, status)
       select gen_random_uuid(), ${acct}, 'person' || g || '@acme.test', 'First' || g, 'Last' || g, 'Title ' || (g % 50),
         (array['employee', 'contractor', 'client'])[1 + g % 3], (array['active', 'invited', 'locked', 'deactivated'])[1 + g % 4]
       from generate_series(1, ${users}::int) g`,
    );
  console.log(
    `SCIM reconciliation of ${users.toLocaleString('en-US')} users, ${CONCURRENCY} calls in flight, SCIMMY on 127.0.0.1`,
  );

  let started = performance.now();
  await insertUsers(other);
  const withoutTrigger = performance.now() - started;
  started = performance.now();
  await insertUsers(account);
  const withTrigger = performance.now() - started;
  line('bulk insert, account without SCIM', withoutTrigger);
  line('bulk insert, account with SCIM (marks all pending)', withTrigger);

  const connection = await em.findOneOrFail(ScimConnection, { account });
  const client = new ScimClient(server.url, server.token, { allowPrivate: true });
  started = performance.now();
  const first = await reconcile(orm.em.fork(), connection, client);
  const firstMs = performance.now() - started;
  if (first.created.count !== users) throw new Error(`expected ${users} created, got ${first.created.count}`);
  line('Sync now, empty service (creates everyone)', firstMs);

  // Drift behind Roster's back, through the service's own API: 10% renamed, half of those also turned
  // active or inactive the wrong way.
  const remote = await client.listUsers(1, users);
  let next = 0;
  const drifted = remote.users.filter((_, i) => i % 10 === 0);
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < drifted.length) {
        const i = next++;
        const u = drifted[i]!;
        await client.patch(u.id, [
          { op: 'replace', path: 'name', value: { givenName: 'Changed' } },
          ...(i % 2 ? [{ op: 'replace' as const, path: 'active', value: !u.active }] : []),
        ]);
      }
    }),
  );
  started = performance.now();
  const second = await reconcile(orm.em.fork(), connection, client);
  const secondMs = performance.now() - started;
  line(
    `Sync now, ${second.updated.count.toLocaleString('en-US')} drifted (${second.deactivated.count + second.reactivated.count} activity)`,
    secondMs,
  );

  started = performance.now();
  const third = await reconcile(orm.em.fork(), connection, client);
  const thirdMs = performance.now() - started;
  if (third.unchanged !== users) throw new Error(`expected no differences, got ${JSON.stringify(third)}`);
  line('Sync now, nothing to do (lists and compares)', thirdMs);

  // The reference: the same users POSTed to an empty server, nothing else, same calls in flight.
  await server.stop();
  server = await startServer();
  const rows = await query<SyncedUser>(
    em,
    sql`select id, email, first_name as "firstName", last_name as "lastName", title, phone, role, status,
       login_missing as "loginMissing" from app_user where account_id = ${account}`,
  );
  const plain = new ScimClient(server.url, server.token, { allowPrivate: true });
  next = 0;
  started = performance.now();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < rows.length) {
        const row = rows[next++]!;
        await plain.create(createBody(row.id, desiredShape(row)));
      }
    }),
  );
  const postsMs = performance.now() - started;
  line(`reference: ${users.toLocaleString('en-US')} plain POST /Users`, postsMs);
  const ratio = firstMs / postsMs;
  console.log(
    `  ratio Sync now (creating) / plain POSTs: ${ratio.toFixed(2)} (target ≤ ${TARGET_RATIO}) ${ratio <= TARGET_RATIO ? 'met' : 'NOT met'}`,
  );
} finally {
  await orm?.close(true);
  await server.stop();
  await admin.query(`drop database if exists "${dbName}" with (force)`);
  await admin.end();
}
