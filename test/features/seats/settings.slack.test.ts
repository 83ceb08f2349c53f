import { Account } from '../../../src/features/accounts/account.entity.ts';
import { AuditEvent } from '../../../src/features/audit/audit-event.entity.ts';
import { parseDomains } from '../../../src/features/join-links/join-link.terms.ts';
import { User } from '../../../src/features/people/user.entity.ts';
import { eventually, jobsDrained, startTestApp, TEAM_ID, type TestApp } from '../../support/app.ts';
import { fillView, textOf } from '../../support/views.ts';

let t: TestApp;

beforeAll(async () => {
  t = await startTestApp({ seatLimit: 10 });
  t.standin.channels.set('CAPPROVALS', { name: 'approvals', is_private: false, is_member: false });
  t.standin.channels.set('GSECRET', { name: 'secret', is_private: true, is_member: false });
  t.standin.channels.set('COLDSTUFF', {
    name: 'old-stuff',
    is_private: false,
    is_member: true,
    is_archived: true,
  });
});
afterAll(() => t.stop());

const account = () => t.em().findOneOrFail(Account, { teamId: TEAM_ID });

async function openSettings(user = 'UADMIN') {
  await t.slack.command('/seats', 'settings', { user });
  const view = t.standin.lastOpenedView();
  expect(view.callback_id).toBe('settings_modal');
  return view;
}

/** The settings form with `values` in place of what the form holds (channel and numbers as Slack sends them). */
function withValues(view: any, values: Record<string, unknown>) {
  const filled = fillView(view, {});
  for (const [id, value] of Object.entries(values)) {
    filled.state.values[id] =
      id === 'approval_channel'
        ? { [id]: { type: 'conversations_select', selected_conversation: value } }
        : { [id]: { type: id === 'allowed_domains' ? 'plain_text_input' : 'number_input', value } };
  }
  return filled;
}

describe('the settings form', () => {
  it('opens with the current settings and saves every change, audited', async () => {
    const view = await openSettings();
    const number = (id: string) => view.blocks.find((b: any) => b.block_id === id).element.initial_value;
    expect(number('seat_limit')).toBe('10');
    expect(number('invitation_expiry')).toBe('7');
    expect(number('join_link_expiry')).toBe('30');

    const res = await t.slack.viewSubmission({
      user: 'UADMIN',
      view: withValues(view, {
        approval_channel: 'CAPPROVALS',
        seat_limit: '12',
        allowed_domains: 'acme.test, @acme.co.uk',
        invitation_expiry: '14',
        join_link_expiry: '10',
        join_link_max_uses: '25',
      }),
    });
    expect(res.status).toBe(200);
    expect(res.json).toBeUndefined();
    expect(await account()).toMatchObject({
      approvalChannelId: 'CAPPROVALS',
      seatLimit: 12,
      allowedEmailDomains: ['acme.test', 'acme.co.uk'],
      invitationExpiryDays: 14,
      joinLinkExpiryDays: 10,
      joinLinkMaxUses: 25,
    });
    const told = await t.standin.waitForMessage(
      (m) => m.channel === 'DUADMIN' && textOf(m).includes('Settings saved'),
    );
    expect(textOf(told)).toContain('the seat limit is 12');
    expect(textOf(told)).toContain('new invitations expire after 14 days');
    expect(await t.em().count(AuditEvent, { action: 'settings.changed' })).toBe(1);
    expect(await t.em().count(AuditEvent, { action: 'seat_limit.changed' })).toBe(1);
  });

  it('answers Slack at once while an import holds the seats, and saves the new limit after', async () => {
    const view = await openSettings();
    const acct = await account();
    let locked!: () => void;
    const taken = new Promise<void>((r) => {
      locked = r;
    });
    const held = t.em().transactional(async (tx) => {
      await t.roster.deps.seats.lock(tx, acct);
      locked();
      await new Promise((r) => setTimeout(r, 4000));
    });
    await taken;
    // Slack gives up on an ack after 3 s; the seats stay locked for 4.
    const res = await t.slack.viewSubmission({
      user: 'UADMIN',
      view: withValues(view, { seat_limit: String(acct.seatLimit + 1) }),
    });
    expect(res.status).toBe(200);
    expect(res.json).toBeUndefined();
    await held;
    expect((await account()).seatLimit).toBe(acct.seatLimit + 1);
    await t.standin.waitForMessage(
      (m) => m.channel === 'DUADMIN' && textOf(m).includes(`the seat limit is ${acct.seatLimit + 1}`),
    );
  });

  it('names the range of a value out of it, and saves nothing', async () => {
    const before = await account();
    const view = await openSettings();
    const res = await t.slack.viewSubmission({
      user: 'UADMIN',
      view: withValues(view, {
        invitation_expiry: '91',
        join_link_expiry: '0',
        allowed_domains: 'not a domain',
      }),
    });
    expect(res.json.errors.invitation_expiry).toMatch(/1 to 90/);
    expect(res.json.errors.join_link_expiry).toMatch(/1 to 365/);
    expect(res.json.errors.allowed_domains).toMatch(/Not a domain/);
    expect((await account()).invitationExpiryDays).toBe(before.invitationExpiryDays);
  });

  it('refuses a seat limit below the seats in use, on its field', async () => {
    const em = t.em();
    for (const i of [1, 2, 3]) {
      em.create(User, {
        account: await account(),
        email: `seated${i}@acme.test`,
        role: 'employee',
        status: 'active',
      });
    }
    await em.flush();
    const res = await t.slack.viewSubmission({
      user: 'UADMIN',
      view: withValues(await openSettings(), { seat_limit: '2' }),
    });
    expect(res.json.errors.seat_limit).toMatch(/3 paid seats are in use/);
  });

  it('says how to add Roster to a private channel, and refuses an archived one', async () => {
    const view = await openSettings();
    const secret = await t.slack.viewSubmission({
      user: 'UADMIN',
      view: withValues(view, { approval_channel: 'GSECRET' }),
    });
    // Not `/invite @roster`: Roster's own /invite would take it and open the invite form. Slack shows a
    // field's error as plain text, so the channel is named, not mentioned (`<#GSECRET>` would show as typed).
    expect(secret.json.errors.approval_channel).toBe(
      'Roster is not in the private channel #secret. First add Roster to it: open the channel’s details (click its name), then Integrations, then Add an app, and pick Roster; then save again.',
    );
    expect(secret.json.errors.approval_channel).not.toContain('/invite');
    const archived = await t.slack.viewSubmission({
      user: 'UADMIN',
      view: withValues(view, { approval_channel: 'COLDSTUFF' }),
    });
    expect(archived.json.errors.approval_channel).toMatch(/archived/);
    expect((await account()).approvalChannelId).toBe('CAPPROVALS');
  });

  it('says on the form, at once, why Slack would not describe the channel, and saves nothing', async () => {
    const before = await account();
    const view = await openSettings();
    // An installation from before the manifest asked for groups:read: Slack refuses conversations.info.
    t.standin.failNext('conversations.info', 'missing_scope');
    const res = await t.slack.viewSubmission({
      user: 'UADMIN',
      view: withValues(view, { approval_channel: 'COTHER', seat_limit: '11' }),
    });
    expect(res.status).toBe(200);
    expect(res.json?.response_action).toBe('errors');
    expect(res.json.errors.approval_channel).toMatch(/^Roster lacks a Slack permission.*reinstalls Roster/);
    expect((await account()).approvalChannelId).toBe(before.approvalChannelId);
    expect((await account()).seatLimit).toBe(before.seatLimit);

    // Slack failing outright: the form stays open with a reference to the logged error, and no DM repeats it.
    const dms = t.standin.messages.filter((m) => m.channel === 'DUADMIN').length;
    t.standin.failWithStatus('conversations.info', 500, 3);
    const failed = await t.slack.viewSubmission({
      user: 'UADMIN',
      view: withValues(view, { approval_channel: 'COTHER', seat_limit: '11' }),
    });
    expect(failed.json?.errors?.approval_channel).toMatch(
      /^Something went wrong on our side\. Please try again; if it keeps happening, give your admin this reference: [0-9a-f]{8}\.$/,
    );
    expect(t.standin.messages.filter((m) => m.channel === 'DUADMIN').length).toBe(dms);
    expect((await account()).seatLimit).toBe(before.seatLimit);
  });

  it('is for admins: the command says so, and a forged submission changes nothing and is audited', async () => {
    await t.slack.command('/seats', 'settings', { user: 'UMEMBER' });
    await t.standin.waitForResponse((r) => textOf(r.body).includes('Only admins can change the settings.'));
    const forged = await t.slack.viewSubmission({
      user: 'UMEMBER',
      view: withValues(
        { id: 'VFORGED', callback_id: 'settings_modal', blocks: [] },
        { seat_limit: '99', invitation_expiry: '7', join_link_expiry: '30' },
      ),
    });
    expect(JSON.stringify(forged.json.errors)).toContain('Only admins can change the settings.');
    expect((await account()).seatLimit).not.toBe(99);
    expect(await t.em().count(AuditEvent, { action: 'settings.change_refused', actor: 'UMEMBER' })).toBe(1);
  });
});

describe('/seats channel', () => {
  it('takes the channel as Slack escapes it, or its bare id', async () => {
    expect(t.slack.commandText('/seats', 'channel #general')).toBe('channel <#C0GENERAL|general>');
    await t.slack.command('/seats', 'channel #general', { user: 'UADMIN' });
    await eventually(async () => (await account()).approvalChannelId === 'C0GENERAL');
    await t.slack.command('/seats', 'channel CAPPROVALS', { user: 'UADMIN' });
    await eventually(async () => (await account()).approvalChannelId === 'CAPPROVALS');
    // Slack leaves a private channel's name out: <#GSECRET|>.
    await t.slack.command('/seats', 'channel #secret', { user: 'UADMIN' });
    const told = await t.standin.waitForResponse((r) =>
      textOf(r.body).includes('Roster is not in the private channel <#GSECRET>'),
    );
    expect(textOf(told.body)).toContain('then Integrations, then Add an app');
    expect(textOf(told.body)).not.toContain('/invite');
    expect((await account()).approvalChannelId).toBe('CAPPROVALS');
  });

  it('refuses a channel shared with another organisation, from the command and from a forged settings form', async () => {
    t.standin.channels.set('CPARTNER', {
      name: 'acme-partner',
      is_private: false,
      is_member: true,
      is_ext_shared: true,
    });
    try {
      const before = (await account()).approvalChannelId;
      await t.slack.command('/seats', 'channel #acme-partner', { user: 'UADMIN' });
      await t.standin.waitForResponse((r) =>
        textOf(r.body).includes('That channel is shared with another organisation through Slack Connect'),
      );
      const res = await t.slack.viewSubmission({
        user: 'UADMIN',
        view: withValues(await openSettings(), { approval_channel: 'CPARTNER' }),
      });
      expect(res.json?.errors?.approval_channel).toContain('shared with another organisation');
      expect((await account()).approvalChannelId).toBe(before);
    } finally {
      t.standin.channels.delete('CPARTNER');
    }
  });

  it('answers a name Slack did not escape at once, in a workspace of 25,000 channels, without reading them', async () => {
    for (let i = 0; i < 25_000; i++) {
      t.standin.channels.set(`CBULK${String(i).padStart(6, '0')}`, {
        name: `team-${i}`,
        is_private: false,
        is_member: false,
      });
    }
    t.standin.channels.set('CLASTONE', { name: 'last-one', is_private: false, is_member: true });
    try {
      const listed = t.standin.callsTo('conversations.list').length;
      for (const name of ['#last-one', 'approvals']) {
        const before = t.standin.responses.length;
        // Typed out in full rather than picked from Slack's list, the name comes as typed.
        const res = await t.slack.command('/seats', `channel ${name}`, { user: 'UADMIN', verbatim: true });
        expect(res.status).toBe(200);
        const [answer] = t.standin.responses.slice(before);
        expect(answer?.body.response_type).toBe('ephemeral');
        expect(textOf(answer!.body)).toContain(
          `I could not tell which channel #${name.replace(/^#/, '')} is: Slack sent the name as plain text.`,
        );
        expect(textOf(answer!.body)).toContain('pick the channel from Slack');
        expect(textOf(answer!.body)).toContain('`/seats settings`');
      }
      expect(t.standin.callsTo('conversations.list').length).toBe(listed);
      expect((await account()).approvalChannelId).toBe('CAPPROVALS');

      // Picked from Slack's list, the same channel is taken straight away.
      await t.slack.command('/seats', 'channel #last-one', { user: 'UADMIN' });
      await eventually(async () => (await account()).approvalChannelId === 'CLASTONE');
      expect(t.standin.callsTo('conversations.list').length).toBe(listed);
    } finally {
      for (const id of [...t.standin.channels.keys()]) {
        if (id.startsWith('CBULK') || id === 'CLASTONE') t.standin.channels.delete(id);
      }
    }
  });
});

describe('what the settings change', () => {
  it('refuses invitations outside the allowed domains, address by address', async () => {
    await t.em().nativeUpdate(Account, { teamId: TEAM_ID }, { allowedEmailDomains: ['acme.test'] });
    await t.slack.command('/invite', 'in@acme.test out@gmail.test client', { user: 'UADMIN' });
    await t.slack.submitView(t.standin.lastOpenedView(), {}, { user: 'UADMIN' });
    const summary = await t.standin.waitForMessage(
      (m) => m.channel === 'DUADMIN' && String(m.text).startsWith('Invitations:'),
    );
    expect(textOf(summary)).toContain('out@gmail.test');
    expect(textOf(summary)).toContain('invitations and logins go only to @acme.test addresses');
    expect(await t.em().findOne(User, { email: 'in@acme.test' })).not.toBeNull();
    expect(await t.em().findOne(User, { email: 'out@gmail.test' })).toBeNull();
    await t.em().nativeUpdate(Account, { teamId: TEAM_ID }, { allowedEmailDomains: [] });
  });

  it('starts a new join link with the default terms', async () => {
    await t.em().nativeUpdate(Account, { teamId: TEAM_ID }, { joinLinkExpiryDays: 10, joinLinkMaxUses: 25 });
    await t.slack.command('/joinlink', 'create', { user: 'UADMIN' });
    const view = t.standin.lastOpenedView();
    const initial = (id: string) => view.blocks.find((b: any) => b.block_id === id).element.initial_value;
    expect(initial('expiry')).toBe('10');
    expect(initial('max_uses')).toBe('25');
  });

  it('shows an admin who is no user what they can do, and the Change settings button', async () => {
    await t.slack.event({ type: 'app_home_opened', user: 'UOWNER', tab: 'home' });
    const home = await eventually(() => t.standin.homeView('UOWNER'));
    expect(textOf(home)).toContain('an admin. You approve seat requests');
    await t.slack.clickButton(home, 'Change settings', { user: 'UOWNER' });
    expect(t.standin.lastOpenedView().callback_id).toBe('settings_modal');
  });
});

describe('an approval channel that refuses the post', () => {
  it('sends the seat request to every admin by DM instead, saying why', async () => {
    await t
      .em()
      .nativeUpdate(Account, { teamId: TEAM_ID }, { approvalChannelId: 'CAPPROVALS', seatLimit: 100 });
    t.standin.failNext('chat.postMessage', 'is_archived', 1, (args) => args.channel === 'CAPPROVALS');
    await t.slack.command('/invite', 'needs.a.seat@acme.test employee', { user: 'UMANAGER' });
    await t.slack.submitView(t.standin.lastOpenedView(), {}, { user: 'UMANAGER' });
    for (const admin of ['DUADMIN', 'DUOWNER']) {
      const dm = await t.standin.waitForMessage(
        (m) =>
          m.channel === admin &&
          textOf(m).includes('needs.a.seat@acme.test') &&
          /Seat request/.test(textOf(m)),
      );
      expect(textOf(dm)).toContain('could not post in the approval channel <#CAPPROVALS> (is archived)');
    }
  });

  it('asks the admins by DM, not in the channel, once the approval channel is shared with another organisation', async () => {
    t.standin.channels.set('CSHAREDLATER', {
      name: 'shared-later',
      is_private: false,
      is_member: true,
      is_ext_shared: true,
    });
    try {
      await t
        .em()
        .nativeUpdate(Account, { teamId: TEAM_ID }, { approvalChannelId: 'CSHAREDLATER', seatLimit: 100 });
      await t.slack.command('/invite', 'shared.channel@acme.test employee', { user: 'UMANAGER' });
      await t.slack.submitView(t.standin.lastOpenedView(), {}, { user: 'UMANAGER' });
      for (const admin of ['DUADMIN', 'DUOWNER']) {
        const dm = await t.standin.waitForMessage(
          (m) =>
            m.channel === admin &&
            textOf(m).includes('shared.channel@acme.test') &&
            /Seat request/.test(textOf(m)),
        );
        expect(textOf(dm)).toContain(
          '<#CSHAREDLATER> is shared with another organisation through Slack Connect',
        );
      }
      expect(t.standin.messages.filter((m) => m.channel === 'CSHAREDLATER')).toEqual([]);
    } finally {
      t.standin.channels.delete('CSHAREDLATER');
    }
  });

  it('keeps to the DMs when a DM fails and the job is retried: one copy per admin, none in the channel', async () => {
    await t
      .em()
      .nativeUpdate(Account, { teamId: TEAM_ID }, { approvalChannelId: 'CAPPROVALS', seatLimit: 100 });
    t.standin.failNext('chat.postMessage', 'is_archived', 1, (args) => args.channel === 'CAPPROVALS');
    // One admin's DM fails once: the job is retried.
    t.standin.failNext('chat.postMessage', 'internal_error', 1, (args) => args.channel === 'UADMIN');
    const isRequest = (m: { channel?: string }) =>
      textOf(m).includes('retried.seat@acme.test') && /Seat request/.test(textOf(m));
    await t.slack.command('/invite', 'retried.seat@acme.test employee', { user: 'UMANAGER' });
    await t.slack.submitView(t.standin.lastOpenedView(), {}, { user: 'UMANAGER' });
    for (const admin of ['DUADMIN', 'DUOWNER']) {
      const dm = await t.standin.waitForMessage((m) => m.channel === admin && isRequest(m), 15_000);
      expect(textOf(dm)).toContain('could not post in the approval channel <#CAPPROVALS> (is archived)');
    }
    await jobsDrained(t.em());
    const posts = t.standin.messages.filter((m) => m.method === 'chat.postMessage' && isRequest(m));
    expect(posts.map((m) => m.channel).sort()).toEqual(['DUADMIN', 'DUOWNER']);
    expect(
      t.standin
        .callsTo('chat.postMessage')
        .filter((c) => c.args.channel === 'CAPPROVALS' && String(c.args.text).includes('retried.seat')),
    ).toHaveLength(1);
  });
});

describe('allowed email domains as long as the form takes', () => {
  /** Fifty domains typed without spaces in exactly 1,000 characters: 1,049 as the form shows them again. */
  const tight = Array.from(
    { length: 50 },
    (_, i) => `${String(i).padStart(2, '0')}${'x'.repeat(i === 0 ? 10 : 9)}.example`,
  );
  const domainsField = (view: any) =>
    view.blocks.find((b: any) => ['allowed_domains', 'domains'].includes(b.block_id));
  let saved: string[];
  beforeAll(async () => {
    saved = (await account()).allowedEmailDomains;
  });
  afterAll(async () => {
    await t.em().nativeUpdate(Account, { teamId: TEAM_ID }, { allowedEmailDomains: saved });
  });

  it('reopen in the settings form and the join link form, and save again as they are', async () => {
    expect(tight.join(',')).toHaveLength(1000);
    const first = await t.slack.submitView(
      await openSettings(),
      { allowed_domains: tight.join(',') },
      { user: 'UADMIN' },
    );
    expect(first.json).toBeUndefined();
    expect((await account()).allowedEmailDomains).toEqual(tight);

    const refused = t.standin.refusedBlocks.length;
    const again = await openSettings();
    expect(t.standin.refusedBlocks.length).toBe(refused);
    const field = domainsField(again).element;
    expect(field.initial_value).toBe(tight.join(', '));
    expect(field.initial_value.length).toBeLessThanOrEqual(field.max_length);
    // Saved unchanged, the settings save: the domains must not stand in the way of another change.
    const second = await t.slack.submitView(again, { seat_limit: '90' }, { user: 'UADMIN' });
    expect(second.json).toBeUndefined();
    expect(await account()).toMatchObject({ seatLimit: 90, allowedEmailDomains: tight });

    // A new join link starts with the account's domains, in a field of the same size.
    await t.slack.command('/joinlink', '', { user: 'UADMIN', channel: 'C0GENERAL' });
    expect(t.standin.refusedBlocks.length).toBe(refused);
    const link = t.standin.lastOpenedView();
    expect(link.callback_id).not.toBe('settings_modal');
    expect(domainsField(link).element.initial_value).toBe(tight.join(', '));
    const posted = await t.slack.submitView(link, { channel: 'C0GENERAL' }, { user: 'UADMIN' });
    expect(posted.json?.errors).toBeUndefined();
  });

  it('refuses, on the field of either form, a list that would not fit its form again, and saves nothing', async () => {
    // 1,099 characters typed without spaces, 1,148 written back with ", ".
    const long = Array.from(
      { length: 50 },
      (_, i) => `${String(i).padStart(2, '0')}${'y'.repeat(11)}.example`,
    );
    const before = (await account()).allowedEmailDomains;
    const res = await t.slack.submitView(
      await openSettings(),
      { allowed_domains: long.join(',') },
      { user: 'UADMIN' },
    );
    const error = /These domains come to 1,148 characters .* over 1,100: remove some\./;
    expect(res.json.errors.allowed_domains).toMatch(error);
    expect((await account()).allowedEmailDomains).toEqual(before);

    await t.slack.command('/joinlink', '', { user: 'UADMIN', channel: 'C0GENERAL' });
    const link = await t.slack.submitView(
      t.standin.lastOpenedView(),
      { channel: 'C0GENERAL', domains: long.join(',') },
      { user: 'UADMIN' },
    );
    expect(link.json.errors.domains).toMatch(error);
  });
});

describe('allowed email domains in another script', () => {
  afterAll(() =>
    t
      .em()
      .getConnection()
      .execute(`update account set allowed_email_domains = '{}' where team_id = ?`, [TEAM_ID]),
  );

  it('are saved in the ASCII form addresses are kept in, and shown as typed', async () => {
    const since = t.standin.messages.length;
    const res = await t.slack.viewSubmission({
      user: 'UADMIN',
      view: withValues(await openSettings(), { allowed_domains: 'acme.test, @Bücher.de' }),
    });
    expect(res.json).toBeUndefined();
    // The form in which a browser sends `anna@bücher.de`, and in which the invite form has it typed.
    expect((await account()).allowedEmailDomains).toEqual(['acme.test', 'xn--bcher-kva.de']);
    const told = await t.standin.waitForMessage(
      (m) =>
        t.standin.messages.indexOf(m) >= since &&
        m.channel === 'DUADMIN' &&
        textOf(m).includes('Settings saved'),
    );
    expect(textOf(told)).toContain('for @acme.test, @bücher.de addresses');
    const again = await openSettings();
    expect(again.blocks.find((b: any) => b.block_id === 'allowed_domains').element.initial_value).toBe(
      'acme.test, bücher.de',
    );
  });

  it('are refused when no domain in any script, saying at most how long the list may be', async () => {
    const view = await openSettings();
    const res = await t.slack.viewSubmission({
      user: 'UADMIN',
      view: withValues(view, { allowed_domains: 'bücher' }),
    });
    expect(res.json.errors.allowed_domains).toBe('Not a domain: bücher. Domains look like example.com.');
    // 50 domains in exactly 1,100 characters are taken; one character more is not.
    const domains = Array.from(
      { length: 50 },
      (_, i) => `d${String(i).padStart(2, '0')}${'x'.repeat(i < 2 ? 13 : 12)}.test`,
    );
    const text = domains.join(', ');
    expect(text).toHaveLength(1100);
    expect(parseDomains(text)).toEqual({ ok: true, domains });
    expect(parseDomains(`${text},`)).toEqual({
      ok: false,
      error: 'Keep the domains to at most 1,100 characters.',
    });
  });
});

describe('what counts as an email domain', () => {
  it.each([
    '-acme.com',
    'acme-.com',
    'xn--.com',
    'xn--zz.com',
    '10.0.0.1',
    'acme..com',
    `${'a'.repeat(64)}.com`,
    'localhost',
  ])('refuses %s, naming it', (typed) => {
    expect(parseDomains(typed)).toEqual({
      ok: false,
      error: `Not a domain: ${typed}. Domains look like example.com.`,
    });
  });

  it('takes a name with its final dot as the same domain, and any case', () => {
    expect(parseDomains('Acme.COM. eu-west.acme.co.uk 3com.com')).toEqual({
      ok: true,
      domains: ['acme.com', 'eu-west.acme.co.uk', '3com.com'],
    });
  });
});

describe('allowed email domains saved before this check', () => {
  it('block no other change while left as shown, and are named once edited', async () => {
    const before = await account();
    const { id } = before;
    // Taken by an earlier version, which checked domains less closely.
    await t.em().nativeUpdate(Account, { id }, { allowedEmailDomains: ['acme-.com', 'acme.test'] });
    try {
      const view = await openSettings();
      const expiry = before.invitationExpiryDays === 15 ? '16' : '15';
      const saved = await t.slack.viewSubmission({
        user: 'UADMIN',
        view: withValues(view, { invitation_expiry: expiry }),
      });
      expect(saved.json).toBeUndefined();
      expect(await account()).toMatchObject({
        invitationExpiryDays: Number(expiry),
        allowedEmailDomains: ['acme-.com', 'acme.test'],
      });
      const again = await openSettings();
      const edited = await t.slack.viewSubmission({
        user: 'UADMIN',
        view: withValues(again, { allowed_domains: 'acme-.com, acme.org' }),
      });
      expect(edited.json?.errors).toEqual({
        allowed_domains: 'Not a domain: acme-.com. Domains look like example.com.',
      });
    } finally {
      await t.em().nativeUpdate(
        Account,
        { id },
        {
          allowedEmailDomains: before.allowedEmailDomains,
          invitationExpiryDays: before.invitationExpiryDays,
        },
      );
    }
  });
});

describe('the settings form, while another admin changes the settings', () => {
  it('keeps what another admin saved while it was open, saving only the fields its admin changed', async () => {
    const before = await account();
    const view = await openSettings();
    // Meanwhile the owner raises the limit and another admin sets the expiry.
    await t.slack.command('/seats', String(before.seatLimit + 5), { user: 'UOWNER' });
    await eventually(async () => (await account()).seatLimit === before.seatLimit + 5 || null);
    await t.em().nativeUpdate(Account, { id: before.id }, { invitationExpiryDays: 21 });
    // This admin changes the allowed domains only, and leaves the rest as the form showed it.
    const res = await t.slack.viewSubmission({
      user: 'UADMIN',
      view: withValues(view, { allowed_domains: 'kept.test' }),
    });
    expect(res.status).toBe(200);
    const told = await t.standin.waitForMessage(
      (m) =>
        m.channel === 'DUADMIN' && textOf(m).includes('Settings saved') && textOf(m).includes('kept.test'),
    );
    expect(textOf(told)).not.toContain('the seat limit is');
    expect(await account()).toMatchObject({
      seatLimit: before.seatLimit + 5,
      invitationExpiryDays: 21,
      allowedEmailDomains: ['kept.test'],
    });
    // Put back for the tests below.
    await t.em().nativeUpdate(
      Account,
      { id: before.id },
      {
        seatLimit: before.seatLimit,
        invitationExpiryDays: before.invitationExpiryDays,
        allowedEmailDomains: before.allowedEmailDomains,
      },
    );
  });

  it('keeps both changes when two admins save different fields at the same moment', async () => {
    const before = await account();
    const a = await openSettings('UADMIN');
    const b = await openSettings('UOWNER');
    // Something holds the account's seats a moment (an import, an approval): both saves wait for the row.
    let held!: () => void;
    const holding = new Promise<void>((ok) => {
      held = ok;
    });
    const holder = t.em().transactional(async (tx) => {
      await t.roster.deps.seats.lock(tx, before);
      held();
      await new Promise((ok) => setTimeout(ok, 1500));
    });
    await holding;
    const [ra, rb] = await Promise.all([
      t.slack.viewSubmission({ user: 'UADMIN', view: withValues(a, { invitation_expiry: '14' }) }),
      t.slack.viewSubmission({ user: 'UOWNER', view: withValues(b, { join_link_expiry: '60' }) }),
    ]);
    expect([ra.json, rb.json]).toEqual([undefined, undefined]);
    await holder;
    for (const user of ['UADMIN', 'UOWNER'])
      await t.standin.waitForMessage((m) => m.channel === `D${user}` && textOf(m).includes('Settings saved'));
    expect(await account()).toMatchObject({ invitationExpiryDays: 14, joinLinkExpiryDays: 60 });
    await t
      .em()
      .nativeUpdate(
        Account,
        { id: before.id },
        { invitationExpiryDays: before.invitationExpiryDays, joinLinkExpiryDays: before.joinLinkExpiryDays },
      );
  });
});
