import { AuditEvent } from '../../../src/features/audit/audit-event.entity.ts';
import { Invitation } from '../../../src/features/invites/invitation.entity.ts';
import { INVITE_ACTIONS } from '../../../src/features/invites/slack/blocks.ts';
import { JoinLink } from '../../../src/features/join-links/join-link.entity.ts';
import { User } from '../../../src/features/people/user.entity.ts';
import { SeatRequest } from '../../../src/features/seats/seat-request.entity.ts';
import {
  DEFAULT_MEMBERS,
  eventually,
  jobsDrained,
  outsider,
  PARTNER_TEAM,
  startTestApp,
  TEAM_ID,
  type TestApp,
} from '../../support/app.ts';
import { textOf } from '../../support/views.ts';
import { postLink } from '../join-links/support.ts';

/**
 * People of another organisation, met in channels shared through Slack Connect: Slack knows them (the
 * directory mirror, users.info, users.lookupByEmail), with their own team, and with whatever address their
 * organisation gave them. None of that makes them a member of this workspace.
 */
const PARTNER = PARTNER_TEAM;

let t: TestApp;

beforeAll(async () => {
  t = await startTestApp({
    seatLimit: 20,
    members: [
      ...DEFAULT_MEMBERS,
      outsider('UEXTANA', 'ana', 'ana@partner.example'),
      { id: 'UBEA', name: 'bea', realName: 'Bea Member', email: 'bea@acme.test' },
      outsider('UEXTBEA', 'bea', 'bea@acme.test'),
      outsider('UEXTJO', 'jo', 'jo@acme.test'),
      outsider('UEXTDEE', 'dee', 'dee@partner.example'),
      // Of this organisation's Enterprise Grid, at home in a sister workspace and a member of this one too.
      {
        id: 'WGRIDGUS',
        name: 'gus',
        realName: 'Gus Grid',
        email: 'gus@acme.test',
        teamId: 'TSISTER',
        enterpriseTeams: ['TSISTER', TEAM_ID],
      },
    ],
  });
  t.standin.channels.set('CPARTNER', {
    name: 'acme-partner',
    is_private: false,
    is_member: true,
    is_ext_shared: true,
  });
  await eventually(
    async () => (await t.roster.deps.directory.syncedAt(t.em(), await t.account())) !== null,
    20_000,
  );
});
afterAll(() => t.stop());

/** Invites `text` through /invite and its form, as an admin, and waits until every invitation is delivered. */
async function invite(text: string) {
  await t.slack.command('/invite', text, { user: 'UADMIN' });
  const res = await t.slack.submitView(t.standin.lastOpenedView(), {}, { user: 'UADMIN' });
  expect(res.json?.errors).toBeUndefined();
  await jobsDrained(t.em());
}

const dmsTo = (userId: string) =>
  t.standin.messages.filter((m) => m.method === 'chat.postMessage' && m.channel === `D${userId}`);
const userByEmail = (email: string) => t.em().findOne(User, { email });

describe('an invitation to an address someone of another organisation also has', () => {
  it('goes by email to the invitee, not as a DM to the outsider, and links nobody', async () => {
    await invite('ana@partner.example client');
    const mail = await t.smtp.waitForMail((m) => m.toText === 'ana@partner.example');
    expect(mail.subject).toMatch(/invited you/);
    expect(dmsTo('UEXTANA')).toHaveLength(0);
    const ana = await userByEmail('ana@partner.example');
    expect(ana).toMatchObject({ status: 'invited', slackUserId: null });
    const invitation = await t.em().findOneOrFail(Invitation, { user: ana!.id });
    expect(invitation.deliveryMethod).toBe('email');
  });

  it('goes by email too when only Slack knows the outsider (users.lookupByEmail finds them)', async () => {
    // Met after the directory was read: the mirror has not seen them, Slack's lookup by email finds them.
    t.standin.addMember(outsider('UEXTCY', 'cy', 'cy@partner.example'));
    const lookups = t.standin.callsTo('users.lookupByEmail').length;
    await invite('cy@partner.example client');
    await t.smtp.waitForMail((m) => m.toText === 'cy@partner.example');
    expect(t.standin.callsTo('users.lookupByEmail').length).toBe(lookups + 1);
    expect(dmsTo('UEXTCY')).toHaveLength(0);
    expect(await userByEmail('cy@partner.example')).toMatchObject({ slackUserId: null });
  });

  it('goes as a DM to the member of this workspace with that address, not to the outsider seen since', async () => {
    // The outsider's profile changed after the directory was read: theirs is the newer row of the two.
    await t.slack.event({
      type: 'user_change',
      user: {
        id: 'UEXTBEA',
        team_id: PARTNER,
        name: 'bea',
        real_name: 'Bea Outside',
        profile: { email: 'bea@acme.test', team: PARTNER },
      },
    });
    await invite('bea@acme.test client');
    await eventually(() => dmsTo('UBEA').length === 1);
    expect(dmsTo('UEXTBEA')).toHaveLength(0);
    expect(await userByEmail('bea@acme.test')).toMatchObject({ slackUserId: 'UBEA' });
  });

  it("cannot be accepted in Slack by the outsider, even with the invitee's address", async () => {
    await invite('dee@partner.example client');
    await t.smtp.waitForMail((m) => m.toText === 'dee@partner.example');
    const dee = await userByEmail('dee@partner.example');
    const invitation = await t.em().findOneOrFail(Invitation, { user: dee!.id });
    // An Accept button from an invitation DM, pressed by the outsider.
    const since = t.standin.responses.length;
    await t.slack.blockAction({
      user: 'UEXTDEE',
      channel: 'DUEXTDEE',
      actions: [{ type: 'button', action_id: INVITE_ACTIONS.accept, value: invitation.id }],
    });
    const answer = await t.standin.waitForResponse((r) => t.standin.responses.indexOf(r) >= since);
    expect(textOf(answer.body)).toMatch(/only by a member of this workspace.*Slack Connect/);
    expect(await userByEmail('dee@partner.example')).toMatchObject({ status: 'invited', slackUserId: null });
    expect((await t.em().findOneOrFail(Invitation, invitation.id)).status).toBe('pending');
  });
});

describe('a join link seen in a channel shared with another organisation', () => {
  it('refuses someone of that organisation with a clear message, and takes no seat and no use', async () => {
    const { message, linkId } = await postLink(t);
    const account = await t.account();
    const seats = await t.roster.deps.seats.usage(t.em(), account);
    for (const _click of [1, 2]) {
      const since = t.standin.responses.length;
      await t.slack.clickButton(message, 'Join', { user: 'UEXTJO' });
      const answers = t.standin.responses.slice(since).map((r) => textOf(r.body));
      expect(answers).toHaveLength(1);
      expect(answers[0]).toMatch(/for members of this Slack workspace \(Acme\)/);
      expect(answers[0]).toMatch(/through Slack Connect, from another organisation/);
      expect(answers[0]).toMatch(/nothing changed/);
    }
    expect(await userByEmail('jo@acme.test')).toBeNull();
    expect(await t.em().count(SeatRequest, { email: 'jo@acme.test' })).toBe(0);
    expect((await t.em().findOneOrFail(JoinLink, linkId)).uses).toBe(0);
    expect(await t.roster.deps.seats.usage(t.em(), account)).toMatchObject({ used: seats.used });
    expect(await t.em().count(AuditEvent, { action: 'join_link.join_refused', subjectId: linkId })).toBe(2);

    // A member of this workspace still joins with the same message.
    const since = t.standin.responses.length;
    await t.slack.clickButton(message, 'Join', { user: 'UMEMBER' });
    expect(textOf(t.standin.responses[since]!.body)).toMatch(/You joined Acme/);
    expect((await t.em().findOneOrFail(JoinLink, linkId)).uses).toBe(1);
  });
  it('admits a member of this organisation on an Enterprise Grid whose own workspace is another', async () => {
    const { message, linkId } = await postLink(t);
    const since = t.standin.responses.length;
    await t.slack.clickButton(message, 'Join', { user: 'WGRIDGUS' });
    expect(textOf(t.standin.responses[since]!.body)).toMatch(/You joined Acme/);
    expect(await userByEmail('gus@acme.test')).toMatchObject({ status: 'active', slackUserId: 'WGRIDGUS' });
    expect((await t.em().findOneOrFail(JoinLink, linkId)).uses).toBe(1);
  });

  it('warns the admin who posts one in a channel shared through Slack Connect that its URL is seen there', async () => {
    const confirmations = () =>
      t.standin.messages.filter((m) => m.channel === 'DUADMIN' && /Posted a join link/.test(String(m.text)));
    const before = confirmations().length;
    await postLink(t, { channel: 'CPARTNER', domains: 'acme.test' }, { channel: 'CPARTNER' });
    const shared = await eventually(() => confirmations()[before]);
    expect(shared.text).toMatch(
      /<#CPARTNER> is shared with another organisation through Slack Connect.*Join button refuses them, but its URL lets anyone with an address at @acme\.test join/,
    );
    await postLink(t, { channel: 'C0GENERAL' });
    const own = await eventually(() => confirmations()[before + 1]);
    expect(own.text).not.toMatch(/Slack Connect/);
  });
});

describe('someone of another organisation, in Slack', () => {
  it('opening the Home tab sees no one’s row, though a user here has their address', async () => {
    expect(await userByEmail('ana@partner.example')).not.toBeNull();
    await t.slack.event({ type: 'app_home_opened', user: 'UEXTANA', tab: 'home', channel: 'DUEXTANA' });
    const text = textOf(t.standin.homeView('UEXTANA'));
    expect(text).toMatch(/through Slack Connect, from another organisation/);
    expect(text).not.toMatch(/You:|Ana|invited/);
  });

  it("pressing buttons of person cards and invitations, even forged with a user's id, sees and changes nothing", async () => {
    const em = t.em();
    const zed = em.create(User, {
      account: await t.account(),
      email: 'zed@acme.test',
      firstName: 'Zed',
      role: 'employee',
      status: 'active',
    });
    await em.flush();
    const opened = () => t.standin.calls.filter((c) => c.method === 'views.open').length;
    const openedBefore = opened();
    const since = t.standin.responses.length;
    const buttons = [
      { action_id: 'person_open', value: zed.id },
      { action_id: 'person_deactivate', value: zed.id },
      { action_id: 'person_change_role', value: JSON.stringify({ u: zed.id, c: 'role' }) },
      { action_id: INVITE_ACTIONS.cancel, value: zed.id },
    ];
    for (const button of buttons) {
      const res = await t.slack.blockAction({
        user: 'UEXTANA',
        channel: 'CPARTNER',
        message: { ts: '1700000000.000100', text: 'Roster', blocks: [] },
        actions: [{ type: 'button', block_id: 'b', ...button }],
      });
      expect(res.status).toBe(200);
    }
    await eventually(() => t.standin.responses.length >= since + buttons.length);
    const answers = t.standin.responses.slice(since).map((r) => textOf(r.body));
    expect(answers).toHaveLength(buttons.length);
    for (const answer of answers) {
      expect(answer).toMatch(
        /through Slack Connect, from another organisation, so it has nothing to show you/,
      );
      expect(answer).not.toMatch(/zed|Zed/);
    }
    expect(opened()).toBe(openedBefore);
    expect((await t.em().findOneOrFail(User, zed.id)).status).toBe('active');
    expect(await t.em().count(AuditEvent, { subjectId: zed.id })).toBe(0);
    // A member of this workspace pressing the same card button sees it.
    await t.slack.blockAction({
      user: 'UMANAGER',
      channel: 'CPARTNER',
      message: { ts: '1700000000.000100', text: 'Roster', blocks: [] },
      actions: [{ type: 'button', block_id: 'b', ...buttons[0]! }],
    });
    await eventually(() => t.standin.responses.length > since + buttons.length);
    expect(textOf(t.standin.responses.at(-1)!.body)).toMatch(/zed@acme\.test/);
  });

  it("using the contact shortcuts, even on a member's message, opens no form and reads no one's details", async () => {
    const opened = () => t.standin.callsTo('views.open').length;
    const openedBefore = opened();
    const refusals = () =>
      [
        ...t.standin.responses.map((r) => textOf(r.body)),
        ...t.standin.messagesTo('DUEXTANA').map(textOf),
      ].filter((text) =>
        /through Slack Connect, from another organisation, so it has nothing to show you/.test(text),
      ).length;
    const refusedBefore = refusals();
    // The author's email and phone would prefill the form, from this workspace's directory.
    const onMessage = {
      channel: 'CPARTNER',
      message: { ts: '1700000000.000200', user: 'UMEMBER', text: 'hello' },
    };
    await t.slack.messageShortcut({ user: 'UEXTANA', callbackId: 'save_author_contact', ...onMessage });
    await t.slack.shortcut({ user: 'UEXTANA', callbackId: 'add_contact' });
    await t.slack.blockAction({
      user: 'UEXTANA',
      channel: 'CPARTNER',
      message: { ts: '1700000000.000201', text: 'Roster', blocks: [] },
      actions: [{ type: 'button', block_id: 'b', action_id: 'contact_add_open', value: 'x@acme.test' }],
    });
    await eventually(() => refusals() === refusedBefore + 3);
    expect(opened()).toBe(openedBefore);
    // A member of this workspace saving the same author gets the form, prefilled.
    await t.slack.messageShortcut({ user: 'UMANAGER', callbackId: 'save_author_contact', ...onMessage });
    await eventually(() => opened() === openedBefore + 1);
    expect(JSON.stringify(t.standin.lastOpenedView())).toContain('max@acme.test');
  });

  it('submitting the invite form, forged from one a member opened, is refused on the form and invites nobody', async () => {
    await t.slack.command('/invite', 'sneaky@partner.example client', { user: 'UMANAGER' });
    const res = await t.slack.submitView(t.standin.lastOpenedView(), {}, { user: 'UEXTANA' });
    expect(Object.values(res.json?.errors ?? {}).join(' ')).toMatch(
      /through Slack Connect, from another organisation/,
    );
    await jobsDrained(t.em());
    expect(await userByEmail('sneaky@partner.example')).toBeNull();
  });

  it('mentioned in /people is named as such, not shown as the user here with their address', async () => {
    const since = t.standin.responses.length;
    await t.slack.command('/people', '@ana', { user: 'UMANAGER' });
    const answer = textOf(t.standin.responses[since]!.body);
    expect(answer).toMatch(/<@UEXTANA> is here through Slack Connect, from another organisation/);
    expect(answer).not.toMatch(/ana@partner\.example/);
  });
});
