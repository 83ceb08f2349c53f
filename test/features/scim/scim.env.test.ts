import { query, sql } from '../../../src/db/sql.ts';
import { User } from '../../../src/features/people/user.entity.ts';
import { ScimConnection, ScimSync } from '../../../src/features/scim/scim.entity.ts';
import { SCIM_JOBS, ScimService } from '../../../src/features/scim/scim.service.ts';
import { eventually, jobsDrained, startTestApp, type TestApp } from '../../support/app.ts';
import { type ScimServer, startScimServer } from '../../support/scim-server.ts';
import { textOf } from '../../support/views.ts';
import { openHome, openScimForm, remoteUser } from './support.ts';

let t: TestApp;
let server: ScimServer;

beforeAll(async () => {
  server = await startScimServer();
  t = await startTestApp({ seatLimit: 50, env: { SCIM_URL: server.url, SCIM_TOKEN: server.token } });
});
afterAll(async () => {
  await t.stop();
  await server.close();
});

const accountId = async () => (await t.account()).id;

describe('a SCIM service set by SCIM_URL and SCIM_TOKEN', () => {
  it('connects at start without storing the token, and shows as managed by the deployment', async () => {
    const connection = await eventually(() => t.em().findOne(ScimConnection, { managed: true }));
    expect(connection.baseUrl).toBe(server.url);
    expect(connection.token).toBeNull();
    const home = await openHome(t, 'UADMIN');
    expect(textOf(home)).toContain('Managed by the deployment (SCIM_URL)');
    const form = await openScimForm(t);
    expect(textOf(form)).toContain('cannot be changed here');
    expect(form.submit).toBeUndefined();
    expect(JSON.stringify(form)).not.toContain('scim_disconnect');
    expect(JSON.stringify(form)).not.toContain(server.token);
  });

  it('refuses a forged connect or disconnect, even from an admin', async () => {
    const form = await openScimForm(t);
    const forged = {
      ...form,
      blocks: [
        { type: 'input', block_id: 'url', element: { type: 'url_text_input', action_id: 'url' } },
        { type: 'input', block_id: 'token', element: { type: 'plain_text_input', action_id: 'token' } },
      ],
    };
    await t.slack.submitView(
      forged,
      { url: 'https://evil.example/scim/v2', token: 'stolen' },
      { user: 'UADMIN' },
    );
    await t.slack.blockAction({
      user: 'UADMIN',
      actions: [{ type: 'button', action_id: 'scim_disconnect', value: 'disconnect' }],
      view: form,
    });
    await jobsDrained(t.em());
    const connection = await t.em().findOneOrFail(ScimConnection, { account: await accountId() });
    expect(connection).toMatchObject({ baseUrl: server.url, managed: true });
    expect(textOf(t.standin.lastOpenedView())).not.toContain('Disconnected');
  });

  it('marks people through raw SQL too, coalescing repeated changes into one push of the latest values', async () => {
    const id = await accountId();
    const em = t.em();
    // Held in one transaction: the job wakes at commit and sees only the last values.
    await em.transactional(async (tx) => {
      await query(
        tx,
        sql`insert into app_user (id, account_id, email, first_name, role, status)
          select gen_random_uuid(), ${id}, 'bulk' || n || '@acme.test', 'Bulk', 'client', 'locked'
          from generate_series(1, 30) n`,
      );
      for (const name of ['Second', 'Third', 'Last']) {
        await query(tx, sql`update app_user set first_name = ${name} where email like 'bulk%'`);
      }
      // A change to a column the service does not hold marks nobody again.
      await query(tx, sql`update app_user set added_by = 'psql' where email like 'bulk%'`);
      const [row] = await query<{ n: number; v: number }>(
        tx,
        sql`select count(*)::int as n, max(version)::int as v from scim_sync where account_id = ${id}`,
      );
      expect(row).toEqual({ n: 30, v: 4 });
    });
    await eventually(
      () => [...server.users.values()].filter((u) => u.userName.startsWith('bulk')).length === 30,
    );
    await jobsDrained(t.em(), { queues: [SCIM_JOBS.sync] });
    const bulk = [...server.users.values()].filter((u) => u.userName.startsWith('bulk'));
    expect(new Set(bulk.map((u) => u.name?.givenName))).toEqual(new Set(['Last']));
    // Each was created once, with its latest values: no update followed.
    expect(server.calls.filter((c) => c.method === 'PATCH')).toHaveLength(0);
    expect(await t.em().count(ScimSync, { accountId: id, state: 'synced' })).toBe(30);
  });

  it('pushes the changes of one person in order, the last one winning', async () => {
    const user = await t.em().findOneOrFail(User, { email: 'bulk1@acme.test' });
    for (const name of ['A', 'B', 'C', 'D', 'E']) {
      await query(t.em(), sql`update app_user set first_name = ${name} where id = ${user.id}`);
    }
    await remoteUser(server, 'bulk1@acme.test', (u) => u.name?.givenName === 'E');
    await jobsDrained(t.em(), { queues: [SCIM_JOBS.sync] });
    expect(server.byUserName('bulk1@acme.test')!.name.givenName).toBe('E');
    const row = await t.em().findOneOrFail(ScimSync, { userId: user.id });
    expect(row.state).toBe('synced');
  });

  it('tries a refused SCIM_TOKEN again after a restart, once', async () => {
    const id = await accountId();
    await query(
      t.em(),
      sql`update scim_connection set refused_at = now(), problem = 'refused' where account_id = ${id}`,
    );
    // The service as a restarted process builds it.
    const restarted = new ScimService(
      t.roster.jobs,
      { url: server.url, token: server.token },
      { allowPrivate: true },
    );
    await restarted.applyEnvironment(t.em(), id);
    expect((await t.em().findOneOrFail(ScimConnection, { account: id })).refusedAt).toBeNull();
    await query(
      t.em(),
      sql`update scim_connection set refused_at = now(), problem = 'refused' where account_id = ${id}`,
    );
    await restarted.applyEnvironment(t.em(), id);
    expect((await t.em().findOneOrFail(ScimConnection, { account: id })).refusedAt).not.toBeNull();
  });

  it('opening the SCIM view only reads: a restarted process applies SCIM_URL in its jobs, not in the view', async () => {
    const id = await accountId();
    const restarted = new ScimService(
      t.roster.jobs,
      { url: server.url, token: server.token },
      { allowPrivate: true },
    );
    await query(
      t.em(),
      sql`update scim_connection set refused_at = now(), problem = 'refused' where account_id = ${id}`,
    );
    // In a read-only transaction any write fails: the status a view shows is read, nothing more.
    const status = await t.em().transactional(async (tx) => {
      await query(tx, sql`set transaction read only`);
      return restarted.status(tx, id);
    });
    expect(status).toMatchObject({ connected: true, managed: true, managedByEnv: true, refused: 'refused' });
    // Not yet reached by the environment (a first start): shown as the deployment's, and written by the jobs.
    await query(t.em(), sql`delete from scim_connection where account_id = ${id}`);
    const before = await t.em().transactional(async (tx) => {
      await query(tx, sql`set transaction read only`);
      return restarted.status(tx, id);
    });
    expect(before).toMatchObject({ connected: false, managedByEnv: true, baseUrl: server.url });
    await restarted.applyEnvironment(t.em(), id);
    expect(await t.em().findOne(ScimConnection, { account: id })).toMatchObject({
      managed: true,
      refusedAt: null,
    });
  });
});
