import { createHash } from 'node:crypto';
import { Account } from '../../../src/features/accounts/account.entity.ts';
import { CsvImport } from '../../../src/features/csv-import/csv-import.entity.ts';
import { Invitation } from '../../../src/features/invites/invitation.entity.ts';
import { JoinLink } from '../../../src/features/join-links/join-link.entity.ts';
import { User } from '../../../src/features/people/user.entity.ts';
import { SeatRequest } from '../../../src/features/seats/seat-request.entity.ts';
import {
  DEFAULT_MEMBERS,
  eventually,
  jobsDrained,
  startTestApp,
  TEAM_ID,
  type TestApp,
} from '../../support/app.ts';
import { findButton, textOf } from '../../support/views.ts';
import { postLink } from '../join-links/support.ts';

let t: TestApp;

beforeAll(async () => {
  t = await startTestApp({
    seatLimit: 20,
    members: [
      ...DEFAULT_MEMBERS,
      { id: 'UNEW', name: 'nina', realName: 'Nina New', email: 'nina@acme.test' },
      { id: 'UCASE', name: 'cal', realName: 'Cal Case', email: 'Cal.Case@Acme.test' },
      { id: 'UHIRE', name: 'hal', realName: 'Hal Hire', email: 'hal@acme.test' },
    ],
  });
  t.standin.channels.set('CAPPROVALS', { name: 'approvals', is_private: false, is_member: true });
});
afterAll(() => t.stop());

/** Opens the Home tab as `user`, as Slack reports it, and returns the view the app published. */
async function openHome(user: string) {
  const res = await t.slack.event({ type: 'app_home_opened', user, tab: 'home', channel: `D${user}` });
  expect(res.status).toBe(200);
  // processBeforeResponse: the tab is published (unless it shows this already) before Slack is answered.
  const view = t.standin.homeView(user);
  if (!view) throw new Error(`no Home tab was published for ${user}`);
  expect(view.type).toBe('home');
  return view;
}

/** Invites through /invite and its form, as `user`, and waits until every invitation is delivered. */
async function invite(user: string, text: string) {
  await t.slack.command('/invite', text, { user });
  const view = t.standin.lastOpenedView();
  expect(view.callback_id).toBe('invite_modal');
  const res = await t.slack.submitView(view, {}, { user });
  expect(res.json?.errors).toBeUndefined();
  await jobsDrained(t.em());
}

describe('the Home tab, before anything happened', () => {
  it('tells someone who is not in Roster how to get in, and shows them nothing of the admins', async () => {
    const home = await openHome('UMEMBER');
    const text = textOf(home);
    expect(text).toContain('*You:* not in Roster yet. Ask an admin for an invitation, or use a join link');
    expect(text).toContain('`/invite` invite people by Slack or email');
    for (const adminOnly of ['Seats', 'Pending seat requests', 'Pending invitations', 'Recent imports']) {
      expect(text).not.toContain(adminOnly);
    }
    expect(() => findButton(home.blocks, 'Change settings')).toThrow();
  });

  it('shows an admin who is not a user their role, the seats, and an empty line for each list', async () => {
    const home = await openHome('UADMIN');
    const text = textOf(home);
    expect(text).toContain('*You:* an admin. You approve seat requests, post join links');
    expect(text).toContain('*0 of 20* paid seats used, 20 free. Set the limit with `/seats N`.');
    expect(text).toContain('Requests go to every admin by DM.');
    expect(text).toContain('*Pending seat requests* (0)');
    expect(text).toContain('None. `/seats` lists them with Approve and Reject buttons.');
    expect(text).toContain('*Pending invitations* (0)');
    expect(text).toContain('None. `/invite pending` lists them with Resend and Cancel buttons.');
    expect(text).toContain('*Active join links* (0)');
    expect(text).toContain('None. `/joinlink` posts one in a channel.');
    expect(text).toContain('None yet. Drop a `.csv` file in this DM to import people.');
    expect(text).toContain('Invitations expire after 7 days. New join links last 30 days.');
    expect(text).toContain('Invitations may go to any email domain; a join link may limit its own.');
    expect(text).toContain('Seat requests: DM to every admin.');
    expect(findButton(home.blocks, 'Change settings').action.action_id).toBe('settings_open');
  });

  it('asks Slack once about someone the directory does not know, and shows them the member tab', async () => {
    const asked = () => t.standin.callsTo('users.info').filter((c) => c.args.user === 'UNOBODY').length;
    const home = await openHome('UNOBODY');
    expect(asked()).toBe(1);
    expect(() => findButton(home.blocks, 'Change settings')).toThrow();
  });

  it('publishes nothing when the Messages tab is opened', async () => {
    const before = t.standin.callsTo('views.publish').length;
    const res = await t.slack.event({ type: 'app_home_opened', user: 'UADMIN', tab: 'messages' });
    expect(res.status).toBe(200);
    expect(t.standin.callsTo('views.publish').length).toBe(before);
  });
});

describe('the Home tab of an admin with work waiting', () => {
  beforeAll(async () => {
    // A pending invitation by email, one the manager asked a seat for, a join link, an upload, settings.
    await invite('UADMIN', 'nina@acme.test');
    await invite('UMANAGER', 'hire@example.com contractor');
    await postLink(t, { max_uses: '5', domains: 'acme.test' }, { channel: 'CAPPROVALS' });
    t.standin.addFile({
      id: 'FHOME01',
      name: 'new-hires.csv',
      content: 'type,first_name,last_name,email,role,send_invitation\nuser,Zoe,Zed,zoe@acme.test,client,no\n',
      user: 'UADMIN',
    });
    await t.slack.fileShare('UADMIN', { id: 'FHOME01', name: 'new-hires.csv' });
    await eventually(() => t.em().findOne(CsvImport, { fileId: 'FHOME01' }));
    await jobsDrained(t.em());
    const em = t.em();
    const account = await em.findOneOrFail(Account, { teamId: TEAM_ID });
    account.approvalChannelId = 'CAPPROVALS';
    account.allowedEmailDomains = ['acme.test', 'example.com'];
    account.joinLinkMaxUses = 50;
    account.invitationExpiryDays = 14;
    await em.flush();
  });

  it('lists the pending request, the invitation, the join link, the import and the settings', async () => {
    const home = await openHome('UOWNER');
    const text = textOf(home);
    expect(text).toContain('*1 of 20* paid seats used, 19 free.');
    expect(text).toContain('Requests go to <#CAPPROVALS>.');

    expect(text).toContain('*Pending seat requests* (1)');
    expect(text).toContain('• hire@example.com, Contractor (paid seat), asked by <@UMANAGER>');

    expect(text).toContain('*Pending invitations* (1)');
    expect(text).toMatch(/• nina@acme\.test: sent by Slack DM, expires <!date\^\d+\^/);

    expect(text).toContain('*Active join links* (1)');
    expect(text).toMatch(/• Employee \(paid seat\) in <#CAPPROVALS>: 0 of 5 used, expires <!date/);

    expect(text).toMatch(/• new-hires\.csv: previewed, <!date/);

    expect(text).toContain(
      'Invitations expire after 14 days. New join links last 30 days and admit 50 people.',
    );
    expect(text).toContain('Allowed email domains: acme.test, example.com.');
    expect(text).toContain('Seat requests: <#CAPPROVALS>.');
  });

  it('names the join link the request came through, not its poster as the one who asked', async () => {
    const em = t.em();
    const account = await em.findOneOrFail(Account, { teamId: TEAM_ID });
    // As a join through the link's web page with no seat free files it: no Slack user asked, and the
    // request is kept under the admin who posted the link.
    const request = em.create(SeatRequest, {
      account,
      kind: 'join',
      status: 'pending',
      email: 'walkin@acme.test',
      role: 'employee',
      requestedBy: 'UADMIN',
      payload: { name: 'Walk In' },
      expiresAt: new Date(Date.now() + 7 * 86_400_000),
    });
    await em.flush();
    try {
      const text = textOf(await openHome('UOWNER'));
      expect(text).toContain(
        '• walkin@acme.test, Employee (paid seat), asked by the web form of a join link posted by <@UADMIN>',
      );
      // And so does /seats.
      const before = t.standin.responses.length;
      await t.slack.command('/seats', '', { user: 'UOWNER' });
      const listed = textOf((await eventually(() => t.standin.responses[before])).body);
      expect(listed).toContain(
        '• *walkin@acme.test*: Employee (paid seat), asked by the web form of a join link posted by <@UADMIN>',
      );
    } finally {
      await t.em().nativeDelete(SeatRequest, { id: request.id });
    }
  });

  it("opens the invited person's card from the invitation's button", async () => {
    const home = await openHome('UOWNER');
    const invitation = await t.em().findOneOrFail(Invitation, { user: { email: 'nina@acme.test' } });
    expect(findButton(home.blocks, 'Person card').action.value).toBe(invitation.user.id);
    const before = t.standin.messagesTo('UOWNER').length;
    await t.slack.clickButton(home, 'Person card', { user: 'UOWNER' });
    // The App Home has no reply address, so the card arrives by DM.
    const card = t.standin.messagesTo('UOWNER').slice(before).at(-1);
    expect(textOf(card)).toContain('nina@acme.test');
  });

  it('no longer lists a seat request once an admin rejected it', async () => {
    const request = await t.em().findOneOrFail(SeatRequest, { email: 'hire@example.com' });
    const copy = await eventually(() =>
      // Posted before the approval channel was set, so to the admins by DM.
      t.standin.messages.find(
        (m) => m.channel === 'DUADMIN' && JSON.stringify(m.blocks ?? []).includes(request.id),
      ),
    );
    await t.slack.clickButton(copy, { actionId: 'seat_reject' }, { user: 'UADMIN' });
    const reject = t.standin.lastOpenedView();
    await t.slack.submitView(reject, { reason: 'Not this quarter' }, { user: 'UADMIN' });
    const text = textOf(await openHome('UOWNER'));
    expect(text).toContain('*Pending seat requests* (0)');
    expect(text).not.toContain('hire@example.com');
  });

  it('shows ten invitations and says how many more wait', async () => {
    const emails = Array.from({ length: 10 }, (_, i) => `batch${i}@example.com`);
    await invite('UADMIN', emails.join(', '));
    const text = textOf(await openHome('UADMIN'));
    // Nina's and the ten just sent.
    expect(text).toContain('*Pending invitations* (11)');
    expect(text).toContain('…and 1 more (`/invite pending` lists them).');
  });
});

describe('the Home tab of an admin with more waiting than it shows', () => {
  const shown = (text: string, title: string) => {
    // A count shown as "10+" reads as 10.
    const m = new RegExp(`\\*${title}\\* \\((\\d+)\\+?\\)`).exec(text);
    if (!m) throw new Error(`no count for ${title} in ${text}`);
    return Number(m[1]);
  };

  it('counts every pending request, invitation and active join link of the account, and says how many more', async () => {
    const before = textOf(await openHome('UOWNER'));
    const was = {
      requests: shown(before, 'Pending seat requests'),
      invitations: shown(before, 'Pending invitations'),
      links: shown(before, 'Active join links'),
    };
    const em = t.em();
    const account = await em.findOneOrFail(Account, { teamId: TEAM_ID });
    const other = em.create(Account, { teamId: 'T0OTHER', name: 'Other' });
    const inAWeek = new Date(Date.now() + 7 * 86_400_000);
    const request = (owner: typeof account, email: string) =>
      em.create(SeatRequest, {
        account: owner,
        kind: 'invite',
        status: 'pending',
        email,
        role: 'employee',
        requestedBy: 'UMANAGER',
        expiresAt: inAWeek,
      });
    const link = (owner: typeof account, i: number) =>
      em.create(JoinLink, {
        account: owner,
        tokenHash: createHash('sha256').update(`home-count-${owner.teamId}-${i}`).digest('hex'),
        expiresAt: inAWeek,
        createdBy: 'UADMIN',
        // Posted, as every link people can use is.
        channelId: 'C0GENERAL',
        messageTs: `1700000000.${String(i).padStart(6, '0')}`,
      });
    const invitation = (owner: typeof account, i: number) =>
      em.create(Invitation, {
        account: owner,
        user: em.create(User, {
          account: owner,
          email: `waiting${i}@${owner.teamId.toLowerCase()}.test`,
          role: 'client',
          status: 'invited',
        }),
        expiresAt: inAWeek,
      });
    for (let i = 0; i < 500; i++) request(account, `queued${i}@example.com`);
    for (let i = 0; i < 15; i++) link(account, i);
    for (let i = 0; i < 12; i++) invitation(account, i);
    // Another organisation's are not this account's.
    for (let i = 0; i < 40; i++) request(other, `other${i}@example.com`);
    for (let i = 0; i < 20; i++) link(other, i);
    for (let i = 0; i < 20; i++) invitation(other, i);
    // Already decided, revoked or expired: not waiting.
    request(account, 'decided@example.com').status = 'approved';
    link(account, 100).revokedAt = new Date();
    link(account, 101).expiresAt = new Date(Date.now() - 60_000);
    await em.flush();

    const home = await openHome('UOWNER');
    const text = textOf(home);
    const now = { requests: was.requests + 500, invitations: was.invitations + 12, links: was.links + 15 };
    expect(shown(text, 'Pending seat requests')).toBe(now.requests);
    expect(shown(text, 'Pending invitations')).toBe(now.invitations);
    expect(shown(text, 'Active join links')).toBe(now.links);
    expect(text).toContain(`…and ${now.requests - 10} more (the oldest are shown first).`);
    expect(text).toContain(`…and ${now.invitations - 10} more (\`/invite pending\` lists them).`);
    expect(text).toContain(`…and ${now.links - 10} more (the newest are shown first).`);
    expect(text.match(/• queued\d+@example\.com/g)?.length ?? 0).toBeLessThanOrEqual(10);
  });
});

describe('the Home tab of an admin with long names, addresses and file names', () => {
  it('shortens each long value so Slack takes the tab, instead of refusing it whole', async () => {
    const em = t.em();
    const account = await em.findOneOrFail(Account, { teamId: TEAM_ID });
    const longAgo = new Date('2020-01-01T00:00:00Z');
    // Login emails near the 254-character limit, with `&` (valid before the @) that mrkdwn escapes to `&amp;`.
    const email = (i: number) =>
      `${`r&d.${i}.`.padEnd(220, 'x&')}@${'long-domain'.padEnd(20, 'z')}.example.com`;
    for (let i = 0; i < 10; i++) {
      em.create(SeatRequest, {
        account,
        kind: 'invite',
        status: 'pending',
        email: email(i),
        name: `${'Bartholomew-Maximilian '.repeat(10)}${i}`,
        role: 'employee',
        requestedBy: 'UMANAGER',
        expiresAt: new Date(Date.now() + 7 * 86_400_000),
        // The oldest, so these are the ten shown.
        createdAt: new Date(longAgo.getTime() + i * 1000),
      });
    }
    for (let i = 0; i < 5; i++) {
      em.create(CsvImport, {
        account,
        uploadedBy: 'UADMIN',
        fileName: `${i} people & contractors, R&D & Q&A `.padEnd(250, '& '),
        createdAt: new Date(Date.now() + 60_000 + i * 1000),
      });
    }
    const domainsWere = account.allowedEmailDomains;
    account.allowedEmailDomains = Array.from(
      { length: 50 },
      (_, i) =>
        `${'department'.padEnd(60, 's')}.${'subsidiary'.padEnd(60, 's')}.${'region'.padEnd(60, 's')}.corp${i}.example.com`,
    );
    await em.flush();

    const refused = t.standin.refusedBlocks.length;
    const home = await openHome('UOWNER').finally(async () => {
      account.allowedEmailDomains = domainsWere;
      await em.flush();
    });
    expect(t.standin.refusedBlocks.slice(refused)).toEqual([]);
    const text = textOf(home);
    // Every request is listed, its address cut short with an ellipsis.
    for (let i = 0; i < 10; i++) {
      expect(text).toContain(`• r&amp;d.${i}.x&amp;x&amp;`);
    }
    expect(text).not.toContain(email(0).replace(/&/g, '&amp;'));
    expect(text.match(/• r&amp;d\.\d\.[^\n]*…, Employee \(paid seat\), asked by <@UMANAGER>/g)).toHaveLength(
      10,
    );
    expect(text.match(/• \d people &amp; contractors, [^\n]*…: previewed, <!date/g)).toHaveLength(5);
    expect(text).toMatch(
      /Allowed email domains: departmentsss[^\n]* and \d+ more \(Change settings lists them\)\./,
    );
    for (const block of home.blocks as { text?: { text: string }; elements?: { text: string }[] }[]) {
      for (const piece of [block.text, ...(block.elements ?? [])]) {
        expect(piece?.text.length ?? 0).toBeLessThanOrEqual(3000);
      }
    }
  });
});

describe('the Home tab of a user', () => {
  it('shows an invited person their own status, found by their Slack email before they accepted', async () => {
    const text = textOf(await openHome('UNEW'));
    expect(text).toContain('*You:* nina@acme.test, Employee (paid seat), invited, not yet accepted.');
    expect(text).not.toContain('Pending seat requests');
  });

  it('matches the Slack email whatever its case', async () => {
    await invite('UADMIN', 'cal.case@acme.test client');
    const text = textOf(await openHome('UCASE'));
    expect(text).toContain('Client (free), invited, not yet accepted.');
  });
});

describe('the Home tab of an admin whose invitation could not be delivered', () => {
  it('says delivery failed, not that it is being delivered, once Roster stopped trying', async () => {
    const em = t.em();
    const account = await em.findOneOrFail(Account, { teamId: TEAM_ID });
    const invitation = (email: string, extra: Record<string, unknown>) =>
      em.create(Invitation, {
        account,
        user: em.create(User, { account, email, role: 'client', status: 'invited', addedBy: 'UADMIN' }),
        expiresAt: new Date(Date.now() + 7 * 86_400_000),
        // The newest, so these are among the ten shown.
        createdAt: new Date(Date.now() + 3_600_000),
        ...extra,
      });
    // Out of retries: the last one marked it as not delivered.
    invitation('bounced@acme.test', {
      deliveryAttempts: 31,
      deliveryFailedAt: new Date(),
      lastError: 'mailbox unavailable',
    });
    // Slack's rate limits held its delivery back again and again: many attempts counted, still tried.
    invitation('held@acme.test', { deliveryAttempts: 45, lastError: 'Slack asked to wait' });
    invitation('flaky@acme.test', { deliveryAttempts: 2, lastError: 'connection reset' });
    // Refused for good on the first attempt (a mistyped address): not retried, so failed at once.
    invitation('typo@acme.test', {
      deliveryAttempts: 1,
      deliveryFailedAt: new Date(),
      lastError: 'Email failed: the mail server refused the recipient (550 5.1.1)',
    });
    await em.flush();
    const text = textOf(await openHome('UOWNER'));
    for (const address of ['bounced@acme.test', 'typo@acme.test']) {
      expect(text).toContain(
        `• ${address}: :warning: delivery failed: check the address on their card, then send it again from \`/invite pending\``,
      );
    }
    expect(text).toContain('• flaky@acme.test: delivery failing, retrying');
    expect(text).toContain('• held@acme.test: delivery failing, retrying');
    expect(text).not.toContain('mailbox unavailable');
  });

  it('says an invitation whose time ran out expired, in the minutes before Roster closes it', async () => {
    const em = t.em();
    const account = await em.findOneOrFail(Account, { teamId: TEAM_ID });
    em.create(Invitation, {
      account,
      user: em.create(User, {
        account,
        email: 'late@acme.test',
        role: 'client',
        status: 'invited',
        addedBy: 'UADMIN',
      }),
      expiresAt: new Date(Date.now() - 60_000),
      createdAt: new Date(Date.now() + 7_200_000),
      deliveredAt: new Date(),
    });
    await em.flush();
    const line = textOf(await openHome('UOWNER'))
      .split('\n')
      .find((l) => l.includes('late@acme.test'));
    expect(line).toMatch(/expired <!date/);
    expect(line).not.toMatch(/expires/);
  });
});

describe('the Home tab of someone two users could be', () => {
  it('shows the user linked to their Slack account, not another who has their Slack email', async () => {
    const em = t.em();
    const account = await em.findOneOrFail(Account, { teamId: TEAM_ID });
    // Their login was changed in Roster, and their old address later given to someone invited since.
    em.create(User, {
      account,
      email: 'max@acme.test',
      firstName: 'Other',
      lastName: 'Person',
      role: 'client',
      status: 'invited',
    });
    await em.flush();
    em.create(User, {
      account,
      email: 'max.new@acme.test',
      firstName: 'Max',
      lastName: 'Linked',
      role: 'employee',
      status: 'active',
      slackUserId: 'UMEMBER',
    });
    await em.flush();
    const text = textOf(await openHome('UMEMBER'));
    expect(text).toContain('*You:* Max Linked, Employee (paid seat), active.');
  });

  it('does not show a newcomer the user of another Slack account who had their address', async () => {
    const em = t.em();
    const account = await em.findOneOrFail(Account, { teamId: TEAM_ID });
    // Frank left, deactivated in Slack and in Roster; his address was given to a new hire since.
    em.create(User, {
      account,
      email: 'hal@acme.test',
      firstName: 'Frank',
      lastName: 'Former',
      role: 'employee',
      status: 'deactivated',
      slackUserId: 'UFRANK',
    });
    await em.flush();
    const text = textOf(await openHome('UHIRE'));
    expect(text).not.toContain('Frank Former');
    expect(text).toContain('*You:* not in Roster yet.');
  });
});
