import { randomBytes } from 'node:crypto';
import { Account, type IAccount, PermissionSet } from '../../src/features/accounts/account.entity.ts';
import { ensureAccount } from '../../src/features/accounts/account.service.ts';
import { AuditEvent } from '../../src/features/audit/audit-event.entity.ts';
import { Contact } from '../../src/features/contacts/contact.entity.ts';
import { JoinLink } from '../../src/features/join-links/join-link.entity.ts';
import { parseDomains } from '../../src/features/join-links/join-link.terms.ts';
import { JOIN_ACTIONS } from '../../src/features/join-links/slack/blocks.ts';
import { User } from '../../src/features/people/user.entity.ts';
import { SeatRequest } from '../../src/features/seats/seat-request.entity.ts';
import { DomainError } from '../../src/shared/errors.ts';
import { hashToken } from '../../src/shared/ids.ts';
import { DEFAULT_MEMBERS, eventually, startTestApp, type TestApp } from '../support/app.ts';
import { buttonMessage, fillView, textOf } from '../support/views.ts';

/**
 * Requests a hostile member can make with a valid Slack signature: hand-made payloads, values copied
 * from other messages, ids of another account, replays. Each is refused, said, audited, and changes nothing.
 */
let t: TestApp;
let other: IAccount;

beforeAll(async () => {
  t = await startTestApp({
    seatLimit: 50,
    members: [
      ...DEFAULT_MEMBERS,
      // An admin of another organisation, seen through a shared channel.
      {
        id: 'UEXTERNAL',
        name: 'eve',
        realName: 'Eve Elsewhere',
        email: 'eve@other.test',
        isAdmin: true,
        teamId: 'T0999',
      },
      { id: 'UUNDER', name: 'ab', realName: 'A B', email: 'a_b@acme.test' },
    ],
  });
  other = await ensureAccount(t.em(), 'T0002', 'Other Co');
});
afterAll(() => t.stop());

const em = () => t.em();
const adminSet = async (account?: IAccount) =>
  em().findOneOrFail(PermissionSet, { account: account ?? (await t.account()), isAdmin: true });
const refusedGrants = (actor: string) =>
  em().count(AuditEvent, { action: 'permission_set.grant_refused', actor });

/** The view submitted with `values`, and the permission set forced to `setId` whatever the form offered. */
function forgedSubmission(view: any, values: Record<string, any>, setId: string) {
  const filled = fillView(view, values);
  filled.state.values.permission_set = {
    permission_set: {
      type: 'static_select',
      selected_option: { value: setId, text: { type: 'plain_text', text: 'Admin' } },
    },
  };
  return filled;
}

/** A seat request waiting for an admin, written straight to the database. */
async function pendingRequest(accountId: string, email: string, requestedBy: string) {
  const e = em();
  const request = e.create(SeatRequest, {
    account: e.getReference(Account, accountId),
    kind: 'invite',
    status: 'pending',
    email,
    role: 'employee',
    requestedBy,
    payload: { sendNow: false, personalMessage: null, permissionSetId: null },
    expiresAt: new Date(Date.now() + 86_400_000),
    messages: [],
  });
  await e.flush();
  return request;
}

async function seatsLimitAs(user: string, limit: number) {
  await t.slack.command('/seats', String(limit), { user });
  return t.standin.waitForResponse((r) => /seat/i.test(textOf(r.body)));
}

describe('who may give the Admin permission set', () => {
  it('refuses a requester who invites his own address as a client with the Admin set', async () => {
    await t.slack.command('/invite', 'mia@acme.test client', { user: 'UMANAGER' });
    const view = t.standin.lastOpenedView();
    const offered = view.blocks.find((b: any) => b.block_id === 'permission_set').element.options;
    expect(offered.map((o: any) => o.text.text)).not.toContain('Admin');

    const res = await t.slack.viewSubmission({
      user: 'UMANAGER',
      view: forgedSubmission(view, { role: 'client' }, (await adminSet()).id),
    });
    expect(res.json).toMatchObject({ response_action: 'errors' });
    expect(res.json.errors.permission_set).toMatch(
      /Only admins can give a permission set that makes its holder an admin/,
    );
    expect(await em().findOne(User, { email: 'mia@acme.test' })).toBeNull();
    expect(await refusedGrants('UMANAGER')).toBe(1);

    // And so he cannot raise the seat limit either.
    const before = (await t.account()).seatLimit;
    await t.slack.command('/seats', '77', { user: 'UMANAGER' });
    await eventually(() => t.standin.responses.find((r) => /only admins/i.test(textOf(r.body))));
    expect((await em().findOneOrFail(Account, { teamId: 'T0001' })).seatLimit).toBe(before);
  });

  it('refuses a requester who converts his own contact with the Admin set', async () => {
    const e = em();
    const saved = e.create(Contact, {
      account: await t.account(),
      name: 'Mia Self',
      email: 'mia2@acme.test',
    });
    await e.flush();
    await t.slack.clickButton(
      buttonMessage('contact_convert', saved.id, 'Convert to user'),
      'Convert to user',
      {
        user: 'UMANAGER',
      },
    );
    const view = t.standin.lastOpenedView();
    expect(view.callback_id).toBe('contact_convert_modal');
    const offered = view.blocks.find((b: any) => b.block_id === 'permission_set').element.options;
    expect(offered.map((o: any) => o.text.text)).not.toContain('Admin');

    const res = await t.slack.viewSubmission({
      user: 'UMANAGER',
      view: forgedSubmission(view, { role: 'client' }, (await adminSet()).id),
    });
    expect(res.json.errors.permission_set).toMatch(/Only admins/);
    expect(await em().findOne(User, { email: 'mia2@acme.test' })).toBeNull();
    expect((await em().findOneOrFail(Contact, saved.id)).user).toBeNull();
    expect(
      await em().count(AuditEvent, {
        action: 'permission_set.grant_refused',
        actor: 'UMANAGER',
        data: { for: 'mia2@acme.test' },
      }),
    ).toBe(1);
  });

  it('refuses it in the service too, whatever a handler let through', async () => {
    const invites = t.roster.deps.invites;
    const attempt = invites.invite(
      em(),
      await t.account(),
      { slackUserId: 'UMEMBER', isAdmin: false, surface: 'slack' },
      {
        emails: ['max.admin@acme.test'],
        role: 'client',
        permissionSetId: (await adminSet()).id,
        sendNow: true,
      },
    );
    await expect(attempt).rejects.toThrow(DomainError);
    await expect(attempt).rejects.toMatchObject({ code: 'not_admin' });
    expect(await em().findOne(User, { email: 'max.admin@acme.test' })).toBeNull();
    expect(await refusedGrants('UMEMBER')).toBe(1);
  });

  it("refuses a requester's hand-made person card form on the field, audits an Admin set, and leaks no address", async () => {
    const e = em();
    const account = await t.account();
    const me = e.create(User, {
      account,
      email: 'card.member@acme.test',
      firstName: 'Card',
      lastName: 'Member',
      role: 'client',
      status: 'active',
    });
    e.create(User, {
      account,
      email: 'taken.address@acme.test',
      firstName: 'Taken',
      lastName: 'Address',
      role: 'client',
      status: 'active',
    });
    await e.flush();
    const before = await refusedGrants('UMEMBER');
    const submit = (c: string, values: Record<string, any>) =>
      t.slack.viewSubmission({
        user: 'UMEMBER',
        view: {
          callback_id: 'person_change_modal',
          private_metadata: JSON.stringify({ u: me.id, c }),
          state: { values },
        },
      });
    const set = await adminSet();
    const grant = await submit('permission_set', {
      permission_set: {
        permission_set: {
          type: 'static_select',
          selected_option: { value: set.id, text: { type: 'plain_text', text: 'Admin' } },
        },
      },
    });
    expect(grant.json).toMatchObject({
      response_action: 'errors',
      errors: { permission_set: expect.stringContaining('Only admins can give a permission set') },
    });
    expect(await refusedGrants('UMEMBER')).toBe(before + 1);
    // An address another user holds is not told apart from a free one: the answer is the same refusal.
    for (const address of ['taken.address@acme.test', 'free.address@acme.test']) {
      const res = await submit('email', { email: { email: { type: 'plain_text_input', value: address } } });
      expect(res.json).toMatchObject({
        response_action: 'errors',
        errors: { email: 'Only admins can change that. Nothing was changed.' },
      });
    }
    const after = await em().findOneOrFail(User, me.id, { populate: ['permissionSet'] });
    expect(after).toMatchObject({ email: 'card.member@acme.test' });
    expect(after.permissionSet?.id ?? null).not.toBe(set.id);
  });

  it('lets an admin give the Admin set', async () => {
    await t.slack.command('/invite', 'ada.admin@acme.test client', { user: 'UADMIN' });
    const view = t.standin.lastOpenedView();
    const set = await adminSet();
    const res = await t.slack.submitView(
      view,
      { role: 'client', permission_set: 'Admin' },
      { user: 'UADMIN' },
    );
    expect(res.status).toBe(200);
    const user = await eventually(() => em().findOne(User, { email: 'ada.admin@acme.test' }));
    expect(user.permissionSet?.id).toBe(set.id);
  });

  it("says in bold on the admins' message when a seat request would make someone an admin", async () => {
    const account = await t.account();
    const set = await adminSet();
    const request = await em().transactional((tx) =>
      t.roster.deps.seats.request(
        tx,
        account,
        {
          kind: 'invite',
          email: 'boss@acme.test',
          role: 'employee',
          permissionSet: set,
          requestedBy: 'UMANAGER',
          payload: { sendNow: false, personalMessage: null, permissionSetId: set.id },
        },
        'slack',
      ),
    );
    const posted = await t.standin.waitForMessage(
      (m) => m.channel === 'DUADMIN' && textOf(m).includes('boss@acme.test'),
    );
    expect(textOf(posted)).toContain('*as Admin: they will be able to approve seats and change the limit*');
    // Only this workspace's admins are asked, not an admin of another organisation.
    await eventually(async () => {
      const rows = await em()
        .getConnection()
        .execute(
          `select state from pgboss.job where name = 'seats.post-request' and data->>'requestId' = ?`,
          [request.id],
        );
      return rows[0]?.state === 'completed';
    });
    const asked = (await em().findOneOrFail(SeatRequest, request.id)).messages.map((m) => m.target);
    expect(asked.sort()).toEqual(['UADMIN', 'UOWNER']);
  });

  it('treats an admin of another organisation as a requester', async () => {
    const before = (await t.account()).seatLimit;
    await t.slack.command('/seats', '5', { user: 'UEXTERNAL' });
    await eventually(() => t.standin.responses.find((r) => /only admins/i.test(textOf(r.body))));
    expect((await em().findOneOrFail(Account, { teamId: 'T0001' })).seatLimit).toBe(before);
  });

  it('counts Roster admin rights only for an active user', async () => {
    const e = em();
    const account = await t.account();
    const set = await e.findOneOrFail(PermissionSet, { account, isAdmin: true });
    const user = e.create(User, {
      account,
      email: 'max@acme.test',
      role: 'employee',
      status: 'invited',
      permissionSet: set,
      slackUserId: 'UMEMBER',
    });
    await e.flush();
    const response = await seatsLimitAs('UMEMBER', 61);
    expect(textOf(response.body)).toMatch(/only admins/i);
    expect((await em().findOneOrFail(Account, account.id)).seatLimit).not.toBe(61);

    user.status = 'active';
    await e.flush();
    await t.slack.command('/seats', '61', { user: 'UMEMBER' });
    await eventually(async () => (await em().findOneOrFail(Account, account.id)).seatLimit === 61);
  });
});

describe('account boundaries', () => {
  it("answers an approve click carrying another account's request id as unknown, and changes nothing", async () => {
    const request = await pendingRequest(other.id, 'stranger@other.test', 'UOTHER');
    await t.slack.clickButton(buttonMessage('seat_approve', request.id, 'Approve'), 'Approve', {
      user: 'UADMIN',
    });
    await eventually(() => t.standin.responses.find((r) => textOf(r.body).includes('no longer exists')));
    expect((await em().findOneOrFail(SeatRequest, request.id)).status).toBe('pending');
    expect(await em().findOne(User, { email: 'stranger@other.test' })).toBeNull();
  });

  it("answers a convert form naming another account's contact as unknown", async () => {
    const e = em();
    const mine = e.create(Contact, {
      account: await t.account(),
      name: 'Own Contact',
      email: 'own@partner.test',
    });
    const theirs = e.create(Contact, {
      account: e.getReference(Account, other.id),
      name: 'Their Contact',
      email: 'theirs@other.test',
    });
    await e.flush();
    await t.slack.clickButton(
      buttonMessage('contact_convert', mine.id, 'Convert to user'),
      'Convert to user',
      { user: 'UADMIN' },
    );
    const view = t.standin.lastOpenedView();
    const res = await t.slack.submitView(
      { ...view, private_metadata: theirs.id },
      { role: 'client' },
      { user: 'UADMIN' },
    );
    expect(res.json).toMatchObject({ response_action: 'errors' });
    expect(JSON.stringify(res.json.errors)).toMatch(/no longer exists/);
    expect((await em().findOneOrFail(Contact, theirs.id)).user).toBeNull();
    expect(await em().findOne(User, { email: 'theirs@other.test' })).toBeNull();
  });

  it("refuses an invitation naming another account's permission set", async () => {
    await t.slack.command('/invite', 'cross@acme.test client', { user: 'UADMIN' });
    const view = t.standin.lastOpenedView();
    const res = await t.slack.viewSubmission({
      user: 'UADMIN',
      view: forgedSubmission(view, { role: 'client' }, (await adminSet(other)).id),
    });
    expect(res.json.errors.permission_set).toMatch(/no longer exists/);
    expect(await em().findOne(User, { email: 'cross@acme.test' })).toBeNull();
  });

  it("answers a Join click carrying another account's link id as an invalid link", async () => {
    const e = em();
    const link = e.create(JoinLink, {
      account: e.getReference(Account, other.id),
      tokenHash: hashToken(randomBytes(32).toString('base64url')),
      role: 'client',
      expiresAt: new Date(Date.now() + 86_400_000),
      uses: 0,
      allowedEmailDomains: [],
      createdBy: 'UOTHER',
    });
    await e.flush();
    await t.slack.clickButton(buttonMessage(JOIN_ACTIONS.join, link.id, 'Join'), 'Join', {
      user: 'UMANAGER',
    });
    await eventually(() =>
      t.standin.responses.find((r) => /no longer valid|not valid|invalid/i.test(textOf(r.body))),
    );
    expect((await em().findOneOrFail(JoinLink, link.id)).uses).toBe(0);
    expect(await em().count(User, { account: other.id })).toBe(0);
  });
});

describe("an admin's buttons and forms pressed by a requester", () => {
  it('refuses Revoke with a real link id, revokes nothing, and audits it', async () => {
    const e = em();
    const link = e.create(JoinLink, {
      account: await t.account(),
      tokenHash: hashToken(randomBytes(32).toString('base64url')),
      role: 'employee',
      expiresAt: new Date(Date.now() + 86_400_000),
      uses: 0,
      allowedEmailDomains: [],
      createdBy: 'UADMIN',
    });
    await e.flush();
    await t.slack.clickButton(buttonMessage(JOIN_ACTIONS.revoke, link.id, 'Revoke'), 'Revoke', {
      user: 'UMANAGER',
    });
    await t.standin.waitForResponse((r) => textOf(r.body).includes('Only admins can revoke join links.'));
    expect((await em().findOneOrFail(JoinLink, link.id)).revokedAt).toBeNull();
    expect(
      await em().count(AuditEvent, {
        action: 'join_link.revoke_refused',
        actor: 'UMANAGER',
        subjectId: link.id,
      }),
    ).toBe(1);
  });

  it('refuses a seat approval with a real request id and audits it', async () => {
    const request = await pendingRequest((await t.account()).id, 'self.approved@acme.test', 'UMANAGER');
    await t.slack.clickButton(buttonMessage('seat_approve', request.id, 'Approve'), 'Approve', {
      user: 'UMANAGER',
    });
    await t.standin.waitForResponse((r) => textOf(r.body).includes('Only admins can approve seat requests.'));
    expect((await em().findOneOrFail(SeatRequest, request.id)).status).toBe('pending');
    expect(await em().findOne(User, { email: 'self.approved@acme.test' })).toBeNull();
    expect(
      await em().count(AuditEvent, {
        action: 'seat_request.decision_refused',
        actor: 'UMANAGER',
        subjectId: request.id,
      }),
    ).toBe(1);
  });
});

describe('junk ids', () => {
  const dm = (user: string, pattern: RegExp) =>
    t.standin.waitForMessage((m) => m.channel === `D${user}` && pattern.test(textOf(m)));

  it('answers a contact form whose contact id is not an id as a contact that no longer exists', async () => {
    const contacts = await em().count(Contact, {});
    await t.slack.command('/contact', 'add Junk Id junk.id@partner.test', { user: 'UMEMBER' });
    const view = t.standin.lastOpenedView();
    const res = await t.slack.submitView(
      { ...view, private_metadata: 'not-a-uuid' },
      {},
      { user: 'UMEMBER' },
    );
    expect(res.status).toBe(200);
    expect(res.json).toBeUndefined();
    await dm('UMEMBER', /That contact no longer exists\. Nothing was saved\./);
    expect(await em().count(Contact, {})).toBe(contacts);
  });

  it('answers a Show more button with a value Roster did not write as results that no longer exist', async () => {
    for (const value of ['{not json', JSON.stringify({ q: 'a', o: -1 }), '']) {
      const before = t.standin.responses.length;
      await t.slack.clickButton(buttonMessage('contact_find_more', value, 'Show more'), 'Show more', {
        user: 'UMEMBER',
      });
      const answer = await eventually(() => t.standin.responses.slice(before).at(-1));
      expect(textOf(answer.body)).toContain('Those search results no longer exist');
    }
  });

  it('answers a permission set id that is not an id as a set that no longer exists', async () => {
    const e = em();
    const user = e.create(User, {
      account: await t.account(),
      email: 'dashes@acme.test',
      firstName: 'Dash',
      lastName: 'Es',
      role: 'employee',
      status: 'active',
    });
    await e.flush();
    const before = t.standin.responses.length;
    await t.slack.command('/people', user.email, { user: 'UADMIN' });
    const card = await eventually(() => t.standin.responses.slice(before).at(-1));
    await t.slack.clickButton(card.body, 'Permission set', { user: 'UADMIN' });
    const view = t.standin.lastOpenedView();
    const res = await t.slack.viewSubmission({
      user: 'UADMIN',
      view: forgedSubmission(view, {}, '-'.repeat(36)),
    });
    expect(res.status).toBe(200);
    await dm('UADMIN', /That permission set no longer exists; choose another\. Nothing was changed\./);
    expect(
      (await em().findOneOrFail(User, user.id, { populate: ['permissionSet'] })).permissionSet,
    ).toBeNull();
  });
});

describe('replays', () => {
  it('adds one contact when a signed form submission is sent twice', async () => {
    await t.slack.command('/contact', 'add Rita Replay rita@partner.test', { user: 'UMANAGER' });
    const view = t.standin.lastOpenedView();
    const first = await t.slack.submitView(view, {}, { user: 'UMANAGER' });
    expect(first.status).toBe(200);
    const again = await first.resend();
    expect(again.status).toBe(200);
    expect(await em().count(Contact, { email: 'rita@partner.test' })).toBe(1);
    expect(
      await em().count(AuditEvent, { action: 'slack.replay_refused', actor: 'UMANAGER' }),
    ).toBeGreaterThanOrEqual(1);
  });

  it('acts once on a form sent twice by a member of another organisation, whose team is not the installed one', async () => {
    await t.slack.command('/joinlink', '', { user: 'UADMIN' });
    // A form opened through a channel shared with another organisation: Slack sends the submitter's team
    // as `team`, and the workspace where Roster is installed as the view's app_installed_team_id.
    const view = { ...fillView(t.standin.lastOpenedView(), {}), app_installed_team_id: 'T0001' };
    const payload = {
      type: 'view_submission',
      team: { id: 'T0999', domain: 'other' },
      user: { id: 'UEXTERNAL', username: 'eve', name: 'eve', team_id: 'T0999' },
      api_app_id: 'AROSTER',
      token: 'deprecated-verification-token',
      trigger_id: t.standin.issueTriggerId(),
      is_enterprise_install: false,
      enterprise: null,
      view,
      response_urls: [],
    };
    const first = await t.slack.interaction(payload);
    expect(first.json?.errors?.role).toBe('Only admins can post join links.');
    const again = await first.resend();
    expect(again.status).toBe(200);
    const count = (action: string) => em().count(AuditEvent, { action, actor: 'UEXTERNAL' });
    expect(await count('join_link.create_refused')).toBe(1);
    expect(await count('slack.replay_refused')).toBe(1);
  });

  it('opens the form once when a signed command is sent twice', async () => {
    const opened = () => t.standin.calls.filter((c) => c.method === 'views.open').length;
    const before = opened();
    const first = await t.slack.command('/invite', 'once@acme.test', { user: 'UMANAGER' });
    await first.resend();
    expect(opened()).toBe(before + 1);
  });
});

describe('hostile input', () => {
  it('never shows a member another person whose email matches his as a pattern', async () => {
    const e = em();
    e.create(User, {
      account: await t.account(),
      email: 'axb@acme.test',
      firstName: 'Other',
      lastName: 'Person',
      role: 'employee',
      status: 'active',
    });
    await e.flush();
    await t.slack.event({ type: 'app_home_opened', user: 'UUNDER', tab: 'home' });
    const home = await eventually(() => t.standin.homeView('UUNDER'));
    expect(textOf(home)).not.toContain('Other Person');
    expect(textOf(home)).toContain('not in Roster yet');
  });

  it('refuses an over-long personal message, naming the limit, and saves nothing', async () => {
    await t.slack.command('/invite', 'long.message@acme.test client', { user: 'UADMIN' });
    const view = t.standin.lastOpenedView();
    const filled = fillView(view, { role: 'client' });
    filled.state.values.message = { message: { type: 'plain_text_input', value: 'x'.repeat(1001) } };
    const res = await t.slack.viewSubmission({ user: 'UADMIN', view: filled });
    expect(res.json.errors.message).toMatch(/under 1000 characters/);
    expect(await em().findOne(User, { email: 'long.message@acme.test' })).toBeNull();
  });

  it('refuses an over-long reject reason and leaves the request pending', async () => {
    const request = await pendingRequest((await t.account()).id, 'reason@acme.test', 'UMANAGER');
    const res = await t.slack.viewSubmission({
      user: 'UADMIN',
      view: {
        id: 'VREJECT1',
        callback_id: 'seat_reject_modal',
        private_metadata: request.id,
        state: { values: { reason: { reason: { type: 'plain_text_input', value: 'r'.repeat(501) } } } },
      },
    });
    expect(res.json.errors.reason).toMatch(/under 500 characters/);
    expect((await em().findOneOrFail(SeatRequest, request.id)).status).toBe('pending');
  });

  it('answers an over-long search with the limit', async () => {
    await t.slack.command('/contact', `find ${'a'.repeat(150)}`, { user: 'UMEMBER' });
    const answer = await t.standin.waitForResponse((r) => /at most 100 characters/.test(textOf(r.body)));
    expect(textOf(answer.body)).not.toContain('a'.repeat(150));
  });

  it('refuses an over-long list of domains for a join link', () => {
    expect(parseDomains('acme.com, '.repeat(150))).toMatchObject({
      ok: false,
      error: expect.stringMatching(/at most 1,100 characters/),
    });
    const many = Array.from({ length: 60 }, (_, i) => `d${i}.test`).join(' ');
    expect(parseDomains(many)).toMatchObject({
      ok: false,
      error: expect.stringMatching(/At most 50 domains/),
    });
  });
});
