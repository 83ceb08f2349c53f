import { createHash } from 'node:crypto';
import { query, sql } from '../../../src/db/sql.ts';
import { ensureAccount } from '../../../src/features/accounts/account.service.ts';
import { ApiToken } from '../../../src/features/api/api-token.entity.ts';
import { AuditEvent } from '../../../src/features/audit/audit-event.entity.ts';
import { eventually, jobsDrained, startTestApp, type TestApp } from '../../support/app.ts';
import { textOf } from '../../support/views.ts';
import { ApiClient, tokenFor } from './support.ts';

/** The deployment's token, as an operator would generate it. */
const DEPLOYMENT_TOKEN = `roster_${'d3pl0y'.repeat(8)}`;
const TOKEN = /roster_[A-Za-z0-9_-]{43}/;
let t: TestApp;
let api: ApiClient;

beforeAll(async () => {
  t = await startTestApp({ seatLimit: 10, env: { API_TOKEN: DEPLOYMENT_TOKEN } });
  api = new ApiClient(t);
});
afterAll(() => t.stop());

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

async function openHome(user: string) {
  await t.slack.event({ type: 'app_home_opened', user, tab: 'home', channel: `D${user}` });
  const view = t.standin.homeView(user);
  if (!view) throw new Error(`no Home tab for ${user}`);
  return view;
}

/** App Home → API tokens, as an admin: the list modal. */
async function openTokens(user = 'UADMIN') {
  await t.slack.clickButton(await openHome(user), 'API tokens', { user });
  const view = t.standin.lastOpenedView();
  expect(view.callback_id).toBe('api_tokens_modal');
  return view;
}

/** Creates a token through the modal and returns it as the admin sees it, that one time. */
async function createToken(name: string, user = 'UADMIN', expires?: string): Promise<string> {
  const res = await t.slack.submitView(
    await openTokens(user),
    { name, ...(expires ? { expires } : {}) },
    { user },
  );
  expect(res.json?.response_action).toBe('update');
  const shown = textOf(res.json.view);
  const token = TOKEN.exec(shown)?.[0];
  if (!token) throw new Error(`no token in ${shown}`);
  return token;
}

const people = (token: string) => api.get('/api/v1/people', { token });

describe('creating a token in App Home', () => {
  it('shows the token once, stores only its hash, and the token reads the API', async () => {
    const token = await createToken('Product sync');
    expect((await people(token)).status).toBe(200);

    const row = await t.em().findOneOrFail(ApiToken, { name: 'Product sync' });
    expect(row.tokenHash).toBe(sha256(token));
    expect(row.hint).toBe(token.slice(0, 11));
    expect(row.createdBy).toBe('UADMIN');
    const everything = JSON.stringify(await query(t.em(), sql`select * from api_token`));
    expect(everything).not.toContain(token.slice(7));
    expect(await t.em().count(AuditEvent, { action: 'api_token.created', actor: 'UADMIN' })).toBe(1);

    // Listed again: by name and hint only. Nothing Roster sent to Slack holds the token itself.
    const list = await openTokens();
    expect(textOf(list)).toContain('*Product sync*');
    expect(textOf(list)).toContain(`\`${token.slice(0, 11)}…\``);
    expect(JSON.stringify(t.standin.calls)).not.toContain(token.slice(7));
  });

  it('makes a token that works for the days chosen (a year unless changed), and not a day longer', async () => {
    const token = await createToken('Trial', 'UADMIN', '30');
    const row = await t.em().findOneOrFail(ApiToken, { name: 'Trial' });
    const days = (row.expiresAt!.getTime() - Date.now()) / 86_400_000;
    expect(days).toBeGreaterThan(29.9);
    expect(days).toBeLessThanOrEqual(30);
    expect((await people(token)).status).toBe(200);
    const yearly = await t.em().findOneOrFail(ApiToken, { name: 'Product sync' });
    expect((yearly.expiresAt!.getTime() - Date.now()) / 86_400_000).toBeGreaterThan(364.9);

    // Its time is up: the same 401 as any unknown token, and the list says so.
    await query(
      t.em(),
      sql`update api_token set expires_at = now() - interval '1 second' where id = ${row.id}`,
    );
    const expired = await people(token);
    expect(expired.status).toBe(401);
    expect(expired.text).toBe((await people(`roster_${'q'.repeat(43)}`)).text);
    expect(textOf(await openTokens())).toContain(':hourglass: Expired');
  });

  it('refuses a lifetime the form does not offer', async () => {
    const view = await openTokens();
    const filled = {
      ...view,
      state: {
        values: {
          name: { name: { type: 'plain_text_input', value: 'Forever and a day' } },
          expires: { expires: { type: 'static_select', selected_option: { value: '9999' } } },
        },
      },
    };
    const res = await t.slack.viewSubmission({ user: 'UADMIN', view: filled });
    expect(res.json.errors).toEqual({ expires: 'Choose how long the token works.' });
    expect(await t.em().count(ApiToken, { name: 'Forever and a day' })).toBe(0);
  });

  it('refuses an empty or taken name on its field, creating nothing', async () => {
    const before = await t.em().count(ApiToken, {});
    const taken = await t.slack.submitView(
      await openTokens(),
      { name: '  product   SYNC ' },
      { user: 'UADMIN' },
    );
    expect(taken.json.errors.name).toMatch(/already named/);
    const empty = await t.slack.submitView(await openTokens(), { name: '   ' }, { user: 'UADMIN' });
    expect(empty.json.errors.name).toBe('Enter a name for the token.');
    const unseen = await t.slack.submitView(await openTokens(), { name: '\u200B\u2060' }, { user: 'UADMIN' });
    expect(unseen.json.errors.name).toBe('Enter a name: this one is only invisible characters.');
    expect(await t.em().count(ApiToken, {})).toBe(before);
  });
});

describe('the cap', () => {
  it('refuses a 21st token that is not revoked, on the name field, until one is revoked', async () => {
    const account = await ensureAccount(t.em(), 'T0MANY', 'Many tokens');
    const admin = { slackUserId: 'UADMIN', isAdmin: true, surface: 'slack' as const };
    for (let i = 1; i <= 20; i++) await tokenFor(t, account, `Token ${i}`);
    const refused = await t.roster.deps.apiTokens
      .create(t.em(), account, admin, 'One too many')
      .catch((e) => e);
    expect(refused.fields).toEqual({ name: expect.stringContaining('20 tokens that are not revoked') });
    const first = await t.em().findOneOrFail(ApiToken, { account: account.id, name: 'Token 1' });
    await t.roster.deps.apiTokens.revoke(t.em(), account, admin, first.id);
    await expect(
      t.roster.deps.apiTokens.create(t.em(), account, admin, 'One too many'),
    ).resolves.toBeDefined();
  });
});

describe('revoking', () => {
  it('stops the token at once, with the same 401 as a token that never existed', async () => {
    const token = await createToken('Short lived');
    expect((await people(token)).status).toBe(200);
    const list = await openTokens();
    const row = await t.em().findOneOrFail(ApiToken, { name: 'Short lived' });
    await t.slack.clickButton(list, { actionId: 'api_token_revoke', value: row.id }, { user: 'UADMIN' });
    const updated = t.standin.lastOpenedView();
    expect(textOf(updated)).toContain('*Short lived* is revoked');
    expect(textOf(updated)).not.toContain('*Short lived*  `');

    const revoked = await people(token);
    const unknown = await people(`roster_${'z'.repeat(43)}`);
    expect(revoked.status).toBe(401);
    expect(revoked.text).toBe(unknown.text);
    expect(await t.em().count(AuditEvent, { action: 'api_token.revoked', subjectId: row.id })).toBe(1);
  });
});

describe('revoking while Slack asks Roster to slow down', () => {
  it('redraws the list with the revocation once the Retry-After has passed, once, without asking to try again', async () => {
    await createToken('Busy day');
    const list = await openTokens();
    const row = await t.em().findOneOrFail(ApiToken, { name: 'Busy day' });
    const redraws = () =>
      t.standin
        .callsTo('views.update')
        .filter(
          (c) =>
            c.args.view_id === list.id &&
            JSON.stringify(c.args.view).includes('*Busy day* is revoked') &&
            !t.standin.rateLimited.includes(c),
        );
    const limitedBefore = t.standin.rateLimited.length;
    // Longer than the one second the client that answers people waits out itself.
    t.standin.limitRate('views.update', { max: 0, windowMs: 60_000, retryAfter: 2 });
    await t.slack.clickButton(list, { actionId: 'api_token_revoke', value: row.id }, { user: 'UADMIN' });
    const refused = t.standin.rateLimited.slice(limitedBefore).find((c) => c.method === 'views.update');
    expect(refused?.args.view_id).toBe(list.id);
    // Revoked at once, whatever Slack says about the redraw.
    expect((await t.em().findOneOrFail(ApiToken, row.id)).revokedAt).not.toBeNull();
    t.standin.clearRateLimit('views.update');

    await eventually(() => redraws().length > 0, 20_000);
    expect(redraws()[0]!.at).toBeGreaterThanOrEqual(refused!.at + 2000);
    expect(textOf(t.standin.views.get(list.id)!)).toContain('*Busy day* is revoked');
    await jobsDrained(t.em(), { timeoutMs: 30_000 });
    expect(redraws()).toHaveLength(1);
    expect(t.standin.messages.some((m) => /slow down/.test(String(m.text)))).toBe(false);
  }, 60_000);
});

describe('revoking while Slack asks Roster to slow down, the list changing meanwhile', () => {
  it('tells the revocation by DM when the list changed before Slack allowed its redraw', async () => {
    await createToken('Changed meanwhile');
    const list = await openTokens();
    const row = await t.em().findOneOrFail(ApiToken, { name: 'Changed meanwhile' });
    const notices = () =>
      t.standin.messages.filter(
        (m) =>
          m.method === 'chat.postMessage' &&
          m.channel === 'DUADMIN' &&
          /\*Changed meanwhile\* is revoked/.test(String(m.text)),
      );
    t.standin.limitRate('views.update', { max: 0, windowMs: 60_000, retryAfter: 2 });
    await t.slack.clickButton(list, { actionId: 'api_token_revoke', value: row.id }, { user: 'UADMIN' });
    expect((await t.em().findOneOrFail(ApiToken, row.id)).revokedAt).not.toBeNull();
    // The modal is redrawn meanwhile (as by another click): the hash the queued redraw carries is stale.
    const shown = t.standin.views.get(list.id)!;
    t.standin.views.set(list.id, { ...shown, hash: `${shown.hash}.later` });
    t.standin.clearRateLimit('views.update');

    await eventually(() => notices().length > 0, 20_000);
    await jobsDrained(t.em(), { timeoutMs: 30_000 });
    expect(notices()).toHaveLength(1);
    const failed = await query<{ n: number }>(
      t.em(),
      sql`select count(*)::int as n from pgboss.job where name = 'slack.call' and state = 'failed'`,
    );
    expect(failed[0]!.n).toBe(0);
  }, 60_000);
});

describe('only admins', () => {
  it('show the button to admins only, and refuse a member who forges the click', async () => {
    expect(textOf(await openHome('UMEMBER'))).not.toContain('API tokens');
    const opened = t.standin.callsTo('views.open').length;
    await t.slack.blockAction({
      user: 'UMEMBER',
      actions: [{ type: 'button', action_id: 'api_tokens_open', value: 'api_tokens' }],
      container: { type: 'view', view_id: 'VHOME' },
      view: { id: 'VHOME', type: 'home', blocks: [] },
    });
    await eventually(() =>
      t.standin.messages.some((m) => textOf(m).includes('Only admins can manage API tokens.')),
    );
    expect(t.standin.callsTo('views.open').length).toBe(opened);
  });

  it('refuse a forged submission and a forged revoke, audited, changing nothing', async () => {
    const before = await t.em().count(ApiToken, {});
    const forged = { id: 'VFORGED', type: 'modal', callback_id: 'api_tokens_modal', blocks: [] };
    const res = await t.slack.viewSubmission({
      user: 'UMEMBER',
      view: {
        ...forged,
        state: { values: { name: { name: { type: 'plain_text_input', value: 'Mine now' } } } },
      },
    });
    expect(res.json.errors.name).toBe('Only admins can manage API tokens.');
    expect(await t.em().count(ApiToken, {})).toBe(before);
    expect(await t.em().count(AuditEvent, { action: 'api_token.create_refused', actor: 'UMEMBER' })).toBe(1);

    const token = await createToken('Kept');
    const row = await t.em().findOneOrFail(ApiToken, { name: 'Kept' });
    const refusals = () =>
      t.standin.messages.filter(
        (m) => m.channel === 'DUMEMBER' && textOf(m).includes('Only admins can manage API tokens.'),
      ).length;
    const told = refusals();
    const updates = t.standin.callsTo('views.update').length;
    await t.slack.blockAction({
      user: 'UMEMBER',
      actions: [{ type: 'button', action_id: 'api_token_revoke', value: row.id }],
      view: { ...forged, hash: 'h1' },
    });
    expect((await people(token)).status).toBe(200);
    expect(await t.em().count(AuditEvent, { action: 'api_token.revoke_refused', actor: 'UMEMBER' })).toBe(1);
    // The member is told the refusal; the view the payload names (any open modal, an admin's list say)
    // is left as it is.
    await eventually(() => refusals() === told + 1);
    // A forged value that names no token at all is refused for the member, and audited, all the same.
    await t.slack.blockAction({
      user: 'UMEMBER',
      actions: [{ type: 'button', action_id: 'api_token_revoke', value: 'not-a-token' }],
      view: { ...forged, hash: 'h2' },
    });
    expect(await t.em().count(AuditEvent, { action: 'api_token.revoke_refused', actor: 'UMEMBER' })).toBe(2);
    await eventually(() => refusals() === told + 2);
    expect(t.standin.callsTo('views.update').length).toBe(updates);
  });

  it('cannot revoke another account’s token, even as an admin', async () => {
    const other = await ensureAccount(t.em(), 'T0ELSEWHERE', 'Elsewhere');
    const theirs = await tokenFor(t, other, 'Theirs');
    const row = await t.em().findOneOrFail(ApiToken, { tokenHash: sha256(theirs) });
    await t.slack.blockAction({
      user: 'UADMIN',
      actions: [{ type: 'button', action_id: 'api_token_revoke', value: row.id }],
      view: { id: 'VLIST', type: 'modal', callback_id: 'api_tokens_modal', hash: 'h2', blocks: [] },
    });
    expect(JSON.stringify(t.standin.callsTo('views.update').at(-1)!.args)).toContain(
      'That token no longer exists.',
    );
    expect((await people(theirs)).status).toBe(200);
  });
});

describe('API_TOKEN from the environment', () => {
  it('is stored hashed at start, reads the API, and shows as managed by the deployment without Revoke', async () => {
    expect((await people(DEPLOYMENT_TOKEN)).status).toBe(200);
    const row = await t.em().findOneOrFail(ApiToken, { managed: true, revokedAt: null });
    expect(row).toMatchObject({
      tokenHash: sha256(DEPLOYMENT_TOKEN),
      name: 'API_TOKEN',
      createdBy: 'deployment',
    });
    expect((await t.account()).id).toBe(row.account.id);
    const list = await openTokens();
    expect(textOf(list)).toContain('Managed by the deployment (`API_TOKEN`)');
    expect(JSON.stringify(list)).not.toContain(`"value":"${row.id}"`);

    // A forged Revoke of it is refused with what to do instead.
    await t.slack.blockAction({
      user: 'UADMIN',
      actions: [{ type: 'button', action_id: 'api_token_revoke', value: row.id }],
      view: { ...list, hash: 'h3' },
    });
    expect(JSON.stringify(t.standin.callsTo('views.update').at(-1)!.args)).toContain(
      'change or remove API_TOKEN',
    );
    expect((await people(DEPLOYMENT_TOKEN)).status).toBe(200);
  });

  it('follows the environment: a changed API_TOKEN replaces the old one, an unset one removes it', async () => {
    const account = await t.account();
    const next = `roster_${'n3xt'.repeat(10)}`;
    await t.roster.deps.apiTokens.applyDeploymentToken(t.em(), account, next);
    expect((await people(DEPLOYMENT_TOKEN)).status).toBe(401);
    expect((await people(next)).status).toBe(200);
    // Started again with the same setting: nothing changes, nothing is audited twice.
    const audited = await t.em().count(AuditEvent, { actor: 'deployment' });
    await t.roster.deps.apiTokens.applyDeploymentToken(t.em(), account, next);
    expect(await t.em().count(AuditEvent, { actor: 'deployment' })).toBe(audited);
    await t.roster.deps.apiTokens.applyDeploymentToken(t.em(), account, undefined);
    expect((await people(next)).status).toBe(401);
    expect(await t.em().count(ApiToken, { managed: true, revokedAt: null })).toBe(0);
  });

  it('retires a token that served another workspace in that workspace’s audit log', async () => {
    const here = await t.account();
    const before = await ensureAccount(t.em(), 'T0MOVED', 'Moved from');
    const old = `roster_${'m0ved'.repeat(8)}`;
    await t.roster.deps.apiTokens.applyDeploymentToken(t.em(), before, old);
    const theirs = await t.em().findOneOrFail(ApiToken, { managed: true, revokedAt: null });
    expect(theirs.account.id).toBe(before.id);
    // The deployment now serves this workspace, with another token.
    const now = `roster_${'h3re'.repeat(10)}`;
    await t.roster.deps.apiTokens.applyDeploymentToken(t.em(), here, now);
    const revoked = await t.em().find(AuditEvent, { action: 'api_token.revoked', subjectId: theirs.id });
    expect(revoked).toHaveLength(1);
    expect(revoked[0]!.account.id).toBe(before.id);
    expect(revoked[0]!.data).toMatchObject({ reason: 'API_TOKEN changed' });
    expect(await t.em().count(AuditEvent, { account: here.id, subjectId: theirs.id })).toBe(0);
    await t.roster.deps.apiTokens.applyDeploymentToken(t.em(), here, undefined);
  });
});
