import { AuditEvent } from '../../../src/features/audit/audit-event.entity.ts';
import { User } from '../../../src/features/people/user.entity.ts';
import { ScimConnection, ScimSync } from '../../../src/features/scim/scim.entity.ts';
import { eventually, jobsDrained, startTestApp, type TestApp } from '../../support/app.ts';
import { type ScimServer, startScimServer } from '../../support/scim-server.ts';
import { textOf } from '../../support/views.ts';
import { connect, dmTo, openHome, openScimForm, remoteUser, syncState } from './support.ts';

let t: TestApp;
let server: ScimServer;

beforeAll(async () => {
  server = await startScimServer();
  t = await startTestApp({ seatLimit: 50 });
});
afterAll(async () => {
  await t.stop();
  await server.close();
});

async function invite(email: string, role = 'employee') {
  await t.slack.command('/invite', `${email} ${role}`, { user: 'UADMIN' });
  const view = t.standin.lastOpenedView();
  expect(view.callback_id).toBe('invite_modal');
  const res = await t.slack.submitView(view, {}, { user: 'UADMIN' });
  expect(res.status).toBe(200);
  return eventually(() => t.em().findOne(User, { email }));
}

/** `/people EMAIL` as an admin: the card Roster answered with. */
async function card(email: string, user = 'UADMIN') {
  const before = t.standin.responses.length;
  await t.slack.command('/people', email, { user });
  return (await eventually(() => t.standin.responses.slice(before).at(-1))).body;
}

async function change(email: string, buttonText: string, values: Record<string, any> = {}) {
  await t.slack.clickButton(await card(email), buttonText, { user: 'UADMIN' });
  const view = t.standin.lastOpenedView();
  return t.slack.submitView(view, values, { user: 'UADMIN' });
}

const invitationDms = (member: string) =>
  t.standin.messages.filter(
    (m) => m.channel === `D${member}` && JSON.stringify(m.blocks ?? []).includes('invite_accept'),
  );

/** Clicks Accept in the invitation DM `member` receives after `seen` earlier ones. */
async function accept(member: string, seen = 0) {
  const dm = await eventually(() => invitationDms(member)[seen]);
  await t.slack.clickButton(dm, { actionId: 'invite_accept' }, { user: member });
}

describe('connecting from the App Home', () => {
  it('refuses a non-admin on every path, forged payloads included', async () => {
    const home = await openHome(t, 'UMEMBER');
    expect(JSON.stringify(home.blocks)).not.toContain('scim_open');
    const opened = t.standin.callsTo('views.open').length;
    // A forged click on the admins' button.
    await t.slack.blockAction({
      user: 'UMEMBER',
      actions: [{ type: 'button', action_id: 'scim_open', value: 'scim' }],
      container: { type: 'view', view_id: home.id },
      view: home,
    });
    expect(t.standin.callsTo('views.open').length).toBe(opened);
    // A forged form submission and forged Sync now / Disconnect clicks.
    const form = await openScimForm(t, 'UADMIN');
    const res = await t.slack.submitView(form, { url: server.url, token: server.token }, { user: 'UMEMBER' });
    expect(res.json).toEqual({
      response_action: 'errors',
      errors: { url: 'Only admins can manage SCIM provisioning.' },
    });
    for (const action_id of ['scim_sync_now', 'scim_disconnect']) {
      await t.slack.blockAction({
        user: 'UMEMBER',
        actions: [{ type: 'button', action_id, value: 'x' }],
        view: form,
      });
    }
    expect(await t.em().count(ScimConnection, {})).toBe(0);
    expect(await t.em().count(AuditEvent, { action: 'scim.refused', actor: 'UMEMBER' })).toBe(4);
    expect(server.calls).toHaveLength(0);
  });

  it('refuses a base URL with a user name, password, query or fragment, saying why, before calling anything', async () => {
    const calls = server.calls.length;
    const submit = async (url: string) =>
      (await t.slack.submitView(await openScimForm(t), { url, token: server.token }, { user: 'UADMIN' })).json
        ?.errors?.url;
    const queryAnswer =
      'The URL must not have a ?query or #fragment: Roster adds /Users and other paths after it, which they would break. Enter the base URL alone, e.g. https://app.example.com/scim/v2; a key the service gave you goes in Bearer token.';
    for (const url of [
      `${server.url}?tenant=1`,
      `${server.url}?key=abc123`,
      `${server.url}#users`,
      `${server.url}?`,
    ]) {
      expect(await submit(url)).toBe(queryAnswer);
    }
    expect(await submit(server.url.replace('http://', 'http://provisioner:hunter2@'))).toBe(
      'The URL must not hold a user name or password: Roster signs in with the token, and admins see the URL. Enter the base URL alone, e.g. https://app.example.com/scim/v2.',
    );
    expect(server.calls.length).toBe(calls);
    expect(await t.em().count(ScimConnection, {})).toBe(0);
    const audited = JSON.stringify(await t.em().find(AuditEvent, { action: { $like: 'scim.%' } }));
    expect(audited).not.toContain('hunter2');
    expect(audited).not.toContain('abc123');
  });

  it('shows the outcome of the check once the Retry-After has passed, once, when Slack refuses the redraw', async () => {
    const form = await openScimForm(t);
    const outcomes = () =>
      t.standin
        .callsTo('views.update')
        .filter(
          (c) =>
            c.args.view_id === form.id &&
            /Not connected: The service refused the token/.test(JSON.stringify(c.args.view)) &&
            !t.standin.rateLimited.includes(c),
        );
    const limitedBefore = t.standin.rateLimited.length;
    // Longer than the one second the client that answers people waits out itself.
    t.standin.limitRate('views.update', { max: 0, windowMs: 60_000, retryAfter: 2 });
    const res = await t.slack.submitView(form, { url: server.url, token: 'wrong-token' }, { user: 'UADMIN' });
    expect(res.json?.response_action).toBe('update');
    const refused = await eventually(() =>
      t.standin.rateLimited.slice(limitedBefore).find((c) => c.method === 'views.update'),
    );
    expect(refused.args.view_id).toBe(form.id);
    t.standin.clearRateLimit('views.update');

    await eventually(() => outcomes().length > 0, 20_000);
    expect(outcomes()[0]!.at).toBeGreaterThanOrEqual(refused.at + 2000);
    expect(textOf(t.standin.views.get(form.id)!)).toContain('Not connected: The service refused the token');
    await jobsDrained(t.em(), { timeoutMs: 30_000 });
    expect(outcomes()).toHaveLength(1);
    expect(t.standin.messages.some((m) => /slow down/.test(String(m.text)))).toBe(false);
    expect(await t.em().count(ScimConnection, {})).toBe(0);
  }, 60_000);

  it('checks the connection before saving, with a clear error, then connects and reconciles', async () => {
    let form = await connect(t, server, 'wrong-token');
    expect(textOf(form)).toContain('Not connected: The service refused the token (401)');
    expect(await t.em().count(ScimConnection, {})).toBe(0);

    const bad = await openScimForm(t);
    const res = await t.slack.submitView(bad, { url: 'ftp://nowhere', token: 'x' }, { user: 'UADMIN' });
    expect(res.json?.errors?.url).toContain('https://');

    form = await connect(t, server);
    expect(textOf(form)).toContain('Connected.');
    const report = await dmTo(t, 'UADMIN', /Sync with .* done/);
    expect(textOf(report)).toContain('0 people in Roster');
    const saved = await t.em().findOneOrFail(ScimConnection, { managed: false });
    expect(saved.token).toBe(server.token);
    // The token is never shown again.
    const shown = await openScimForm(t);
    expect(JSON.stringify(shown)).not.toContain(server.token);
    expect(JSON.stringify((await openHome(t, 'UADMIN')).blocks)).not.toContain(server.token);
    expect(textOf(shown)).toContain(`Connected to ${server.url}`);
    const connected = await t.em().findOneOrFail(AuditEvent, { action: 'scim.connected' });
    // The audit log keeps where Roster connected, not the path, which may hold a tenant's key.
    expect(connected.data).toEqual({
      url: new URL(server.url).origin,
      urlFingerprint: expect.stringMatching(/^[0-9a-f]{8}$/),
    });
  });
});

describe('keeping the service equal to Roster', () => {
  it('creates an invited person, inactive until they accept, then active', async () => {
    const mia = await invite('mia@acme.test', 'contractor');
    const remote = await remoteUser(server, 'mia@acme.test');
    expect(remote).toMatchObject({
      userName: 'mia@acme.test',
      externalId: mia.id,
      active: false,
      emails: [expect.objectContaining({ value: 'mia@acme.test', primary: true })],
      roles: [expect.objectContaining({ value: 'contractor' })],
    });
    const state = await syncState(t, 'mia@acme.test');
    expect(state.remoteId).toBe(remote.id);
    expect(server.calls.filter((c) => c.method === 'GET' && c.query.includes('filter='))).not.toHaveLength(0);

    await accept('UMANAGER');
    await remoteUser(server, 'mia@acme.test', (u) => u.active === true);
    expect(server.users.size).toBe(1);
    // The person card shows where they stand, to admins only.
    expect(textOf(await card('mia@acme.test'))).toMatch(/SCIM:\* synced/);
    expect(textOf(await card('mia@acme.test', 'UMEMBER'))).not.toContain('SCIM');
  });

  it('links an existing user of the same userName instead of creating a second one', async () => {
    const existing = server.add({
      userName: 'Max@Acme.test',
      active: true,
      name: { givenName: 'Maximilian' },
    });
    await invite('max@acme.test');
    const state = await syncState(t, 'max@acme.test');
    expect(state.remoteId).toBe(existing.id);
    expect(
      [...server.users.values()].filter((u) => u.userName.toLowerCase() === 'max@acme.test'),
    ).toHaveLength(1);
    // Roster's values replace the service's: not active until Max accepts.
    await remoteUser(
      server,
      'max@acme.test',
      (u) => u.active === false && u.roles?.[0]?.value === 'employee',
    );
  });

  it('sends changes of names, email and role, and deactivates and reactivates with PATCH', async () => {
    await change('mia@acme.test', 'Edit details', { first_name: 'Mia', last_name: 'Moreau', title: 'Lead' });
    await remoteUser(
      server,
      'mia@acme.test',
      (u) => u.name?.givenName === 'Mia' && u.name?.familyName === 'Moreau' && u.title === 'Lead',
    );
    await change('mia@acme.test', 'Change role', { role: 'employee' });
    await remoteUser(server, 'mia@acme.test', (u) => u.roles?.[0]?.value === 'employee');

    const patches = () => server.calls.filter((c) => c.method === 'PATCH').length;
    const before = patches();
    await t.slack.clickButton(await card('mia@acme.test'), 'Deactivate', { user: 'UADMIN' });
    await remoteUser(server, 'mia@acme.test', (u) => u.active === false);
    expect(patches()).toBe(before + 1);
    expect(server.calls.some((c) => c.method === 'DELETE')).toBe(false);

    const seen = invitationDms('UMANAGER').length;
    await change('mia@acme.test', 'Reactivate', {});
    await accept('UMANAGER', seen);
    const back = await remoteUser(server, 'mia@acme.test', (u) => u.active === true);
    expect(back.name.givenName).toBe('Mia');
    expect(server.users.size).toBe(2);

    await change('mia@acme.test', 'Change email', { email: 'mia.moreau@acme.test' });
    const moved = await remoteUser(server, 'mia.moreau@acme.test');
    expect(moved.id).toBe(back.id);
    expect(server.byUserName('mia@acme.test')).toBeUndefined();
  });

  it('sends the users of a CSV import, whose statements write many rows at once', async () => {
    const csv = [
      'type,first_name,last_name,email,role,send_invitation',
      'user,Ada,Lovelace,ada@acme.test,employee,no',
      'user,Grace,Hopper,grace@acme.test,client,no',
    ].join('\n');
    const file = t.standin.addFile({ id: 'FSCIM1', name: 'scim.csv', content: csv });
    await t.slack.fileShare('UADMIN', file);
    const preview = await eventually(() =>
      t.standin.messages
        .filter((m) => m.channel === 'DUADMIN' && /Preview of scim\.csv/.test(textOf(m)))
        .at(-1),
    );
    await t.slack.clickButton(preview, 'Import 2 rows', { user: 'UADMIN' });
    const ada = await remoteUser(server, 'ada@acme.test');
    expect(ada).toMatchObject({ active: false, name: { givenName: 'Ada', familyName: 'Lovelace' } });
    await remoteUser(server, 'grace@acme.test', (u) => u.roles?.[0]?.value === 'client');
  });
});

describe('when the service fails', () => {
  it('waits out a 429 with Retry-After and retries 5xx, without duplicates', async () => {
    server.fail(429, { times: 2, retryAfter: 1 });
    server.fail(500, { times: 2 });
    const from = server.calls.length;
    await invite('olive@acme.test');
    await remoteUser(server, 'olive@acme.test');
    const calls = server.calls.slice(from);
    // Looked up by the externalId Roster creates with (waiting out the failures), then by email, then created.
    expect(calls.map((c) => c.status)).toEqual([429, 429, 500, 500, 200, 200, 201]);
    // Retry-After is honoured: the next call comes no sooner than a second later.
    expect(calls[1]!.at - calls[0]!.at).toBeGreaterThanOrEqual(990);
    expect(calls[2]!.at - calls[1]!.at).toBeGreaterThanOrEqual(990);
    // 5xx back off, doubling.
    expect(calls[4]!.at - calls[3]!.at).toBeGreaterThan(calls[3]!.at - calls[2]!.at);
    expect([...server.users.values()].filter((u) => u.userName === 'olive@acme.test')).toHaveLength(1);
    await syncState(t, 'olive@acme.test');
  });

  it('marks a refused person failed with the service’s message, tells the admins, and retries after a fix', async () => {
    server.rejectWhen((u) => (u.title === 'Forbidden' ? 'title "Forbidden" is not allowed here' : undefined));
    await change('olive@acme.test', 'Edit details', { title: 'Forbidden' });
    const failed = await syncState(t, 'olive@acme.test', (s) => s.state === 'failed');
    expect(failed.lastError).toContain('title "Forbidden" is not allowed here');
    const told = await dmTo(t, 'UOWNER', /refused 1 person/);
    expect(textOf(told)).toContain('olive@acme.test');
    expect(textOf(await card('olive@acme.test'))).toContain('title "Forbidden" is not allowed here');

    server.rejectWhen(undefined);
    await change('olive@acme.test', 'Edit details', { title: 'Owner' });
    await remoteUser(server, 'olive@acme.test', (u) => u.title === 'Owner');
    await syncState(t, 'olive@acme.test');
  });

  it('stops on a refused token, tells the admins, and catches up once connected again', async () => {
    const right = server.token;
    const em = t.em();
    await em.getConnection().execute(`update scim_connection set token = 'revoked-token'`);
    await change('max@acme.test', 'Edit details', { first_name: 'Max', last_name: 'Member' });
    const told = await dmTo(t, 'UADMIN', /SCIM provisioning stopped/);
    expect(textOf(told)).toContain('refused Roster');
    expect(textOf(told)).not.toContain('revoked-token');
    await syncState(t, 'max@acme.test', (s) => s.state === 'pending');
    expect((await t.em().findOneOrFail(ScimConnection, { managed: false })).refusedAt).not.toBeNull();
    const form = await openScimForm(t);
    expect(textOf(form)).toContain('Syncing stopped: the service refused the token');
    // Told once, however many changes wait.
    await change('max@acme.test', 'Edit details', { first_name: 'Maxime', last_name: 'Member' });
    expect(
      t.standin.messages.filter(
        (m) => m.channel === 'DUADMIN' && /SCIM provisioning stopped/.test(textOf(m)),
      ),
    ).toHaveLength(1);

    // The form that says so takes a new token, the saved URL already in place, as the DM says.
    expect(textOf(told)).toContain('connect again with a valid token');
    const url = form.blocks.find((b: any) => b.block_id === 'url');
    expect(url?.element.initial_value).toBe(server.url);
    const res = await t.slack.submitView(form, { token: right }, { user: 'UADMIN' });
    expect(res.status).toBe(200);
    await remoteUser(server, 'max@acme.test', (u) => u.name?.givenName === 'Maxime');
    expect((await t.em().findOneOrFail(ScimConnection, { managed: false })).refusedAt).toBeNull();
  });
});

describe('Sync now', () => {
  it('reconciles drift behind Roster’s back and reports it to the admin who asked', async () => {
    const ada = server.byUserName('ada@acme.test')!;
    ada.name = { givenName: 'Augusta' };
    const olive = server.byUserName('olive@acme.test')!;
    server.remove(olive.id);
    const grace = server.byUserName('grace@acme.test')!;
    grace.active = true;
    server.add({ userName: 'stranger@elsewhere.test', active: true });

    const form = await openScimForm(t);
    const earlier = new Set(t.standin.messages.map((m) => m.ts));
    const reportAfter = (seen: Set<string>) =>
      eventually(
        () =>
          t.standin.messages
            .filter(
              (m) =>
                m.channel === 'DUADMIN' && !seen.has(m.ts) && /done:\*? \d+ people in Roster/.test(textOf(m)),
            )
            .at(-1),
        15_000,
      );
    await t.slack.clickButton(form, { actionId: 'scim_sync_now' }, { user: 'UADMIN' });
    expect(textOf(t.standin.lastOpenedView())).toContain('Sync started');
    const report = textOf(await reportAfter(earlier));
    // Progress was shown on the same message while it ran.
    expect(
      t.standin.messages.some(
        (m) => m.channel === 'DUADMIN' && !earlier.has(m.ts) && /checked/.test(textOf(m)),
      ),
    ).toBe(true);
    expect(report).toContain('Created 1 person: olive@acme.test');
    expect(report).toContain('Updated the details of 1 person: Ada Lovelace');
    expect(report).toContain('Deactivated 1 person: Grace Hopper');
    expect(report).toContain('stranger@elsewhere.test');

    expect(server.byUserName('ada@acme.test')!.name.givenName).toBe('Ada');
    expect(server.byUserName('grace@acme.test')!.active).toBe(false);
    expect(server.byUserName('olive@acme.test')).toBeDefined();
    expect(server.byUserName('stranger@elsewhere.test')!.active).toBe(true);
    expect(await t.em().count(ScimSync, { state: { $ne: 'synced' } })).toBe(0);

    // A second run changes nothing; the stranger is still reported, never touched.
    const before = new Set(t.standin.messages.map((m) => m.ts));
    await t.slack.clickButton(form, { actionId: 'scim_sync_now' }, { user: 'UADMIN' });
    const second = textOf(await reportAfter(before));
    expect(second).not.toMatch(/Created|Updated|Deactivated|Reactivated|Linked/);
    expect(second).toContain('1 user(s) there are not in Roster (left as they are): stranger@elsewhere.test');
  });
});
