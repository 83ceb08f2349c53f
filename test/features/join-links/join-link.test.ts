import pg from 'pg';
import type { Browser } from 'playwright-core';
import { query, sql } from '../../../src/db/sql.ts';
import { AuditEvent } from '../../../src/features/audit/audit-event.entity.ts';
import { expireLinks } from '../../../src/features/join-links/index.ts';
import { JoinConfirmation, JoinLink } from '../../../src/features/join-links/join-link.entity.ts';
import { User } from '../../../src/features/people/user.entity.ts';
import { SeatRequest } from '../../../src/features/seats/seat-request.entity.ts';
import { hashToken } from '../../../src/shared/ids.ts';
import { eventually, jobsDrained, startTestApp, type TestApp } from '../../support/app.ts';
import { launchBrowser } from '../../support/browser.ts';
import { links } from '../../support/smtp-sink.ts';
import { findButton, textOf } from '../../support/views.ts';
import { httpFrom, openForm, postLink } from './support.ts';

let t: TestApp;
let browser: Browser;

beforeAll(async () => {
  t = await startTestApp({ seatLimit: 1000 });
  browser = await launchBrowser();
});
afterAll(async () => {
  await browser.close();
  await t.stop();
});

let people = 0;
/** A new workspace member, so each test joins someone Roster does not know yet. */
function member(email?: string): { id: string; email: string } {
  const n = ++people;
  const id = `UPERSON${n}`;
  const address = email ?? `person${n}@acme.test`;
  t.standin.addMember({ id, name: `person${n}`, realName: `Pat Person${n}`, email: address });
  return { id, email: address };
}

const click = (message: Record<string, any>, user: string) => t.slack.clickButton(message, 'Join', { user });
/** The ephemeral answers Roster sent after `since` (an index into the recorded responses). */
const answersSince = (since: number) => t.standin.responses.slice(since).map((r) => textOf(r.body));
async function joinAs(message: Record<string, any>, user: string): Promise<string> {
  const since = t.standin.responses.length;
  await click(message, user);
  const answers = answersSince(since);
  expect(answers).toHaveLength(1);
  return answers[0]!;
}
const linkRow = (id: string) => t.em().findOneOrFail(JoinLink, id);
const audits = (action: string, subjectId: string) => t.em().count(AuditEvent, { action, subjectId });
async function withSeatsFull<T>(fn: () => Promise<T>): Promise<T> {
  const { used } = await t.roster.deps.seats.usage(t.em(), await t.account());
  await t.setSeatLimit(used);
  try {
    return await fn();
  } finally {
    await t.setSeatLimit(1000);
  }
}

describe('posting a join link', () => {
  it('tells anyone but an admin that only admins post join links, and opens nothing', async () => {
    for (const text of ['', 'create', 'list', 'revoke']) {
      const since = t.standin.responses.length;
      const views = t.standin.callsTo('views.open').length;
      await t.slack.command('/joinlink', text, { user: 'UMEMBER' });
      expect(answersSince(since)).toEqual(['Only admins can post join links.']);
      expect(t.standin.responses.at(-1)!.body.response_type).toBe('ephemeral');
      expect(t.standin.callsTo('views.open').length).toBe(views);
    }
    expect(await t.em().count(JoinLink, {})).toBe(0);
  });

  it('echoes a subcommand it does not know as text, escaped and cut short', async () => {
    const since = t.standin.responses.length;
    await t.slack.command('/joinlink', `make <!channel> & ${'y'.repeat(400)}`, { user: 'UADMIN' });
    const [answer] = answersSince(since);
    expect(answer).toContain('I did not understand `make &lt;!channel&gt; &amp; yyy');
    expect(answer).not.toContain('<!channel>');
    expect(answer).not.toContain('y'.repeat(250));
  });

  it('refuses the form from someone who is not an admin, and writes nothing', async () => {
    await t.slack.command('/joinlink', '', { user: 'UADMIN' });
    const res = await t.slack.submitView(t.standin.lastOpenedView(), {}, { user: 'UMANAGER' });
    expect(res.json).toEqual({
      response_action: 'errors',
      errors: { role: 'Only admins can post join links.' },
    });
    expect(await t.em().count(JoinLink, {})).toBe(0);
    expect(t.standin.callsTo('chat.postMessage')).toHaveLength(0);
  });

  it('opens the form with the defaults: Employee, 30 days, the account domains, this channel', async () => {
    await t
      .em()
      .getConnection()
      .execute(
        `update account set allowed_email_domains = '{acme.test,acme.example}' where team_id = 'T0001'`,
      );
    await t.slack.command('/joinlink', 'create', { user: 'UADMIN', channel: 'CTEAM' });
    const view = t.standin.lastOpenedView();
    const block = (id: string) => view.blocks.find((b: any) => b.block_id === id).element;
    expect(block('role').initial_option.value).toBe('employee');
    expect(block('expiry').initial_value).toBe('30');
    expect(block('max_uses').initial_value).toBeUndefined();
    expect(block('domains').initial_value).toBe('acme.test, acme.example');
    expect(block('channel').initial_conversation).toBe('CTEAM');
    await t
      .em()
      .getConnection()
      .execute(`update account set allowed_email_domains = '{}' where team_id = 'T0001'`);
  });

  it('chooses no channel for a form opened from a direct message, where a link is never posted', async () => {
    await t.slack.command('/joinlink', '', { user: 'UADMIN', channel: 'DUADMIN' });
    const channel = t.standin.lastOpenedView().blocks.find((b: any) => b.block_id === 'channel').element;
    expect(channel.initial_conversation).toBeUndefined();
    expect(channel.default_to_current_conversation).toBeUndefined();
  });

  it('shows what is wrong on the form and creates nothing', async () => {
    await t.slack.command('/joinlink', '', { user: 'UADMIN' });
    const res = await t.slack.submitView(
      t.standin.lastOpenedView(),
      { expiry: '0', max_uses: '0', domains: 'acme.test, not a domain' },
      { user: 'UADMIN' },
    );
    expect(res.json.errors).toEqual({
      expiry: 'At least 1 day.',
      max_uses: 'At least 1, or empty for no limit.',
      domains: 'Not a domain: not. Domains look like example.com.',
    });
    expect(await t.em().count(JoinLink, {})).toBe(0);
  });

  it('posts a Join button, the URL and the terms in the channel, stores only the hash, and confirms', async () => {
    const { message, url, token, linkId } = await postLink(t, {
      role: 'contractor',
      expiry: '10',
      max_uses: '5',
      domains: '@Acme.test',
    });
    expect(url).toBe(`${t.url}/join/${token}`);
    expect(token.length).toBeGreaterThanOrEqual(43); // 256 random bits, base64url
    const text = textOf(message);
    expect(text).toContain('Join Acme');
    expect(text).toContain(url);
    expect(text).toMatch(
      /Joins as Contractor \(paid seat\) · expires .* · up to 5 people · only @acme\.test addresses/,
    );
    expect(findButton(message.blocks, 'Join').action.action_id).toBe('joinlink_join');

    const link = await linkRow(linkId);
    expect(link).toMatchObject({
      role: 'contractor',
      maxUses: 5,
      uses: 0,
      allowedEmailDomains: ['acme.test'],
      channelId: 'C0GENERAL',
      messageTs: message.ts,
      createdBy: 'UADMIN',
      tokenHash: hashToken(token),
    });
    const days = (link.expiresAt.getTime() - Date.now()) / 86_400_000;
    expect(days).toBeGreaterThan(9.9);
    expect(days).toBeLessThanOrEqual(10);
    // The raw token is nowhere in the database.
    const [row] = await t
      .em()
      .getConnection()
      .execute<{ hits: number }[]>(
        `select (select count(*) from join_link where row_to_json(join_link)::text like ?)::int
              + (select count(*) from audit_event where row_to_json(audit_event)::text like ?)::int as hits`,
        [`%${token}%`, `%${token}%`],
      );
    expect(row?.hits).toBe(0);
    expect(await audits('join_link.created', linkId)).toBe(1);

    const confirmation = await t.standin.waitForMessage(
      (m) => m.channel === 'DUADMIN' && String(m.text).includes('Posted a join link'),
    );
    expect(confirmation.text).toContain(
      'in <#C0GENERAL>: people join as Contractor (paid seat), for 10 days, up to 5 people, with @acme.test addresses',
    );
  });

  it('keeps nothing when Roster cannot post in the channel, and says how to fix it by DM', async () => {
    const count = await t.em().count(JoinLink, {});
    t.standin.failNext('chat.postMessage', 'not_in_channel', 1, (a) => a.channel === 'CPRIVATE');
    await t.slack.command('/joinlink', '', { user: 'UADMIN', channel: 'CPRIVATE' });
    const res = await t.slack.submitView(
      t.standin.lastOpenedView(),
      { channel: 'CPRIVATE' },
      { user: 'UADMIN' },
    );
    // The form closed at once; Slack's answer to the post comes after it.
    expect(res.json?.errors).toBeUndefined();
    const dm = await t.standin.waitForMessage(
      (m) => m.channel === 'DUADMIN' && String(m.text).includes('CPRIVATE'),
    );
    expect(dm.text).toMatch(
      /^:no_entry: No join link was made\. Roster cannot post in <#CPRIVATE>: .* Add Roster to it/,
    );
    expect(await t.em().count(JoinLink, {})).toBe(count);
    expect(await t.em().count(AuditEvent, { action: 'join_link.created' })).toBe(count);
  });

  it('shows on the form a channel that is no channel, before anything is posted', async () => {
    await t.slack.command('/joinlink', '', { user: 'UADMIN' });
    const view = t.standin.lastOpenedView();
    const posts = t.standin.callsTo('chat.postMessage').length;
    for (const [channel, error] of [
      ['DUADMIN', 'A join link is posted in a channel, not a direct message. Choose a channel.'],
      ['general', 'Choose a channel.'],
    ] as const) {
      const res = await t.slack.submitView(view, { channel }, { user: 'UADMIN' });
      expect(res.json.errors).toEqual({ channel: error });
    }
    expect(t.standin.callsTo('chat.postMessage')).toHaveLength(posts);
  });
});

describe('joining with the button', () => {
  it("creates an active user from the clicker's Slack name and email, and tells them", async () => {
    const person = member();
    const { message, linkId } = await postLink(t);
    expect(await joinAs(message, person.id)).toBe(':tada: You joined Acme as an employee. Welcome!');
    const user = await t.em().findOneOrFail(User, { email: person.email });
    expect(user).toMatchObject({
      status: 'active',
      role: 'employee',
      slackUserId: person.id,
      firstName: 'Pat',
      lastName: `Person${people}`,
    });
    expect((await linkRow(linkId)).uses).toBe(1);
    expect(await audits('join_link.used', linkId)).toBe(1);
    expect(await audits('user.added', user.id)).toBe(1);
  });

  it('tells someone already in Roster their status, and counts no use', async () => {
    const { message, linkId } = await postLink(t);
    expect(await joinAs(message, 'UMEMBER')).toBe(':tada: You joined Acme as an employee. Welcome!');
    expect(await joinAs(message, 'UMEMBER')).toBe(
      'max@acme.test already has access to Acme. Nothing changed.',
    );
    expect((await linkRow(linkId)).uses).toBe(1);
    expect(await t.em().count(User, { email: 'max@acme.test' })).toBe(1);
  });

  it('tells someone in Roster under their Slack account, whose Slack email changed since, their status', async () => {
    const person = member();
    const { message, linkId } = await postLink(t);
    expect(await joinAs(message, person.id)).toBe(':tada: You joined Acme as an employee. Welcome!');
    await query(t.em(), sql`update app_user set status = 'deactivated' where slack_user_id = ${person.id}`);
    // They took a new address in Slack; Roster knows them by their Slack account.
    const renamed = `renamed-${person.email}`;
    await query(t.em(), sql`update slack_member set email = ${renamed} where slack_user_id = ${person.id}`);
    expect(await joinAs(message, person.id)).toBe(
      `${person.email} was deactivated in Acme, and a join link does not bring it back. Ask an admin to reactivate you; an admin of Acme can do it from your card: /people ${person.email}. Nothing changed.`,
    );
    expect((await linkRow(linkId)).uses).toBe(1);
    expect(await t.em().count(User, { slackUserId: person.id })).toBe(1);
  });

  it('refuses an email domain the link does not allow, naming the allowed ones', async () => {
    const person = member('gail@elsewhere.test');
    const { message, linkId } = await postLink(t, { domains: 'acme.test, acme.example' });
    expect(await joinAs(message, person.id)).toBe(
      'This link is only for @acme.test, @acme.example addresses, and your Slack email is gail@elsewhere.test. Ask an admin to invite you.',
    );
    expect(await t.em().findOne(User, { email: person.email })).toBeNull();
    expect((await linkRow(linkId)).uses).toBe(0);
  });

  it('files a seat request when no seat is free; the approval makes them active and tells them', async () => {
    const person = member();
    const { message, linkId } = await postLink(t);
    const answer = await withSeatsFull(() => joinAs(message, person.id));
    expect(answer).toBe(
      ':hourglass_flowing_sand: No paid seat is free right now, so an admin of Acme has been asked to approve your place. You will get a message when they decide.',
    );
    expect(await t.em().findOne(User, { email: person.email })).toBeNull();
    const request = await t.em().findOneOrFail(SeatRequest, { email: person.email });
    expect(request).toMatchObject({
      kind: 'join',
      status: 'pending',
      role: 'employee',
      requestedBy: person.id,
    });
    // Admins are asked, and see who wants to join.
    const asked = await t.standin.waitForMessage(
      (m) => m.channel === 'DUADMIN' && textOf(m).includes(`for ${person.email}`),
    );
    expect(textOf(asked)).toContain('a join through a join link');
    // The waiting join holds its place on the link.
    expect((await linkRow(linkId)).uses).toBe(1);
    // A second click while it waits changes nothing.
    expect(await withSeatsFull(() => joinAs(message, person.id))).toContain('already waiting for an admin');
    expect(await t.em().count(SeatRequest, { email: person.email })).toBe(1);

    // Seats were full when it was posted, so it may offer to add one.
    const approve = textOf(asked).includes('Approve and add a seat') ? 'Approve and add a seat' : 'Approve';
    await t.slack.clickButton(asked, approve, { user: 'UADMIN' });
    const user = await t.em().findOneOrFail(User, { email: person.email });
    expect(user).toMatchObject({ status: 'active', slackUserId: person.id, role: 'employee' });
    expect((await linkRow(linkId)).uses).toBe(1);
    const told = await t.standin.waitForMessage(
      (m) => m.channel === `D${person.id}` && String(m.text).includes('approved your place'),
    );
    expect(told.text).toBe(':tada: An admin approved your place: you are now in Acme. Welcome!');
    // The admin who posted the link is not told as if they had asked.
    expect(
      t.standin.messagesTo('DUADMIN').some((m) => String(m.text).includes('approved your request')),
    ).toBe(false);
  });

  it('closes a waiting join whose person was added meanwhile under another address, taking and adding no seat', async () => {
    const person = member();
    const { message } = await postLink(t);
    await withSeatsFull(() => joinAs(message, person.id));
    const asked = await t.standin.waitForMessage(
      (m) => m.channel === 'DUADMIN' && textOf(m).includes(`for ${person.email}`),
    );
    // An admin invited them meanwhile, by their Slack account, at another address.
    await query(
      t.em(),
      sql`insert into app_user (id, account_id, email, role, status, slack_user_id)
          select gen_random_uuid(), id, ${`work-${person.email}`}, 'employee', 'invited', ${person.id}
            from account where team_id = 'T0001'`,
    );
    const since = t.standin.responses.length;
    const account = await t.account();
    const limit = (await t.roster.deps.seats.usage(t.em(), account)).limit;
    const taken = await t.em().count(AuditEvent, { action: 'seat.taken' });
    const approve = textOf(asked).includes('Approve and add a seat') ? 'Approve and add a seat' : 'Approve';
    await t.slack.clickButton(asked, approve, { user: 'UADMIN' });
    expect(answersSince(since).join('\n')).not.toContain('Something went wrong');
    const request = await eventually(() =>
      t.em().findOne(SeatRequest, { email: person.email, status: { $ne: 'pending' } }),
    );
    // Closed as nothing to approve: no seat taken for nobody, and no seat added to the limit.
    expect(request.status).toBe('rejected');
    expect(request.reason).toContain(`is already a user as work-${person.email}`);
    expect((await t.roster.deps.seats.usage(t.em(), account)).limit).toBe(limit);
    expect(await t.em().count(AuditEvent, { action: 'seat.taken' })).toBe(taken);
    expect(await t.em().count(User, { slackUserId: person.id })).toBe(1);
  });

  it('tells the person when an admin rejects their place', async () => {
    const person = member();
    const { message } = await postLink(t);
    expect(await withSeatsFull(() => joinAs(message, person.id))).toContain(
      'has been asked to approve your place',
    );
    const request = await t.em().findOneOrFail(SeatRequest, { email: person.email });
    await t.roster.deps.seats.decide(t.em(), await t.account(), {
      requestId: request.id,
      actor: { slackUserId: 'UADMIN', isAdmin: true, surface: 'slack' },
      decision: 'reject',
      reason: 'Contractors only',
    });
    const told = await t.standin.waitForMessage((m) => m.channel === `D${person.id}`);
    expect(told.text).toBe(
      ':x: An admin did not approve your place in Acme. Their reason: “Contractors only”. Ask an admin if you think this is a mistake.',
    );
    expect(await t.em().findOne(User, { email: person.email })).toBeNull();
  });

  it('tells the person when nobody decided on their place in time', async () => {
    const person = member();
    const { message } = await postLink(t);
    expect(await withSeatsFull(() => joinAs(message, person.id))).toContain(
      'has been asked to approve your place',
    );
    const request = await t.em().findOneOrFail(SeatRequest, { email: person.email });
    await t
      .em()
      .getConnection()
      .execute(`update seat_request set expires_at = now() - interval '1 minute' where id = ?`, [request.id]);
    await t.roster.deps.seats.expire(t.em());
    const told = await t.standin.waitForMessage((m) => m.channel === `D${person.id}`);
    expect(told.text).toBe(
      ':hourglass: No admin decided on your place in Acme within 14 days, so the request expired. Ask an admin to invite you.',
    );
    expect(await t.em().findOne(User, { email: person.email })).toBeNull();
  });

  it('says the link is full once all its places are taken, and the message says so too', async () => {
    const [first, second] = [member(), member()];
    const { message, linkId } = await postLink(t, { max_uses: '1' });
    expect(await joinAs(message, first.id)).toContain('You joined Acme');
    expect(await joinAs(message, second.id)).toBe(
      'This join link is full: all its places have been used (each join, and each request to join, takes one). Ask an admin in your workspace for a new one.',
    );
    const updated = await t.standin.waitForMessage((m) => m.method === 'chat.update' && m.ts === message.ts);
    expect(textOf(updated)).toContain(
      'This join link for *Acme* is full (1 of 1 places used). Ask an admin for a new one.',
    );
    expect(JSON.stringify(updated.blocks)).not.toContain('/join/');
    expect(JSON.stringify(updated.blocks)).not.toContain('joinlink_join');
    expect((await linkRow(linkId)).uses).toBe(1);
  });

  it('revokes from the list: the message loses its button and URL, and neither works any more', async () => {
    const person = member();
    const { message, url, linkId } = await postLink(t);
    const since = t.standin.responses.length;
    await t.slack.command('/joinlink', 'list', { user: 'UADMIN' });
    const list = t.standin.responses[since]!.body;
    expect(textOf(list)).toContain('*Join links*');
    // A member who got hold of the list cannot revoke.
    await t.slack.clickButton(
      { ...list, channel: 'C0GENERAL', ts: '1.1' },
      { actionId: 'joinlink_revoke', value: linkId },
      { user: 'UMEMBER' },
    );
    expect(answersSince(since + 1)).toEqual(['Only admins can revoke join links.']);
    expect((await linkRow(linkId)).revokedAt).toBeNull();

    await t.slack.clickButton(
      { ...list, channel: 'C0GENERAL', ts: '1.1' },
      { actionId: 'joinlink_revoke', value: linkId },
      { user: 'UADMIN' },
    );
    const redrawn = t.standin.responses.at(-1)!.body;
    expect(redrawn.replace_original).toBe(true);
    expect(textOf(redrawn)).toContain(
      ':no_entry_sign: Revoked the join link in <#C0GENERAL>: its button and URL no longer work. Its message says so.',
    );
    expect(textOf(redrawn)).toMatch(/Employee \(paid seat\) in <#C0GENERAL>: 0 places used · \*revoked\*/);

    const updated = await t.standin.waitForMessage((m) => m.method === 'chat.update' && m.ts === message.ts);
    expect(textOf(updated)).toContain('This join link for *Acme* was revoked by <@UADMIN>');
    expect(JSON.stringify(updated.blocks)).not.toContain('/join/');
    expect(await joinAs(message, person.id)).toBe(
      'This join link is no longer valid. Ask an admin in your workspace for a new one.',
    );
    expect(await t.em().findOne(User, { email: person.email })).toBeNull();
    expect((await fetch(url)).status).toBe(404);
    expect(await audits('join_link.revoked', linkId)).toBe(1);

    // Revoking again (a double click, or by id) is harmless.
    const again = t.standin.responses.length;
    await t.slack.command('/joinlink', `revoke ${linkId}`, { user: 'UADMIN' });
    expect(answersSince(again)[0]).toContain('That join link in <#C0GENERAL> was already revoked.');
    expect(await audits('join_link.revoked', linkId)).toBe(1);
  });

  it('still revokes when the message is gone, and says it could not update it', async () => {
    const { linkId } = await postLink(t);
    t.standin.failNext('chat.update', 'message_not_found');
    const since = t.standin.responses.length;
    await t.slack.command('/joinlink', `revoke ${linkId}`, { user: 'UADMIN' });
    expect(answersSince(since)[0]).toContain('Roster could not update its message');
    expect((await linkRow(linkId)).revokedAt).not.toBeNull();
  });

  it.each([
    [
      'channel_not_found',
      'Roster is no longer in <#C0GENERAL>, so its message there still shows them: delete it yourself if you want it gone.',
    ],
    [
      'not_in_channel',
      'Roster is no longer in <#C0GENERAL>, so its message there still shows them: delete it yourself if you want it gone.',
    ],
    ['is_archived', '<#C0GENERAL> is archived, so its message there still shows them.'],
  ])(
    'still revokes when Roster cannot reach the channel (%s), and says its message still shows the button',
    async (error, why) => {
      const { linkId } = await postLink(t);
      t.standin.failNext('chat.update', error);
      const since = t.standin.responses.length;
      await t.slack.command('/joinlink', `revoke ${linkId}`, { user: 'UADMIN' });
      expect(answersSince(since)[0]).toBe(
        `:no_entry_sign: Revoked the join link in <#C0GENERAL>: its button and URL no longer work. ${why} Clicking Join there tells people the link no longer works.`,
      );
      expect((await linkRow(linkId)).revokedAt).not.toBeNull();
    },
  );

  it('revokes while Slack refuses updates for a while: the message says so once Slack allows, once', async () => {
    const { message, linkId } = await postLink(t);
    const updates = () => t.standin.messages.filter((m) => m.method === 'chat.update' && m.ts === message.ts);
    const limitedBefore = t.standin.rateLimited.length;
    t.standin.limitRate('chat.update', { max: 0, windowMs: 60_000, retryAfter: 3 });
    const since = t.standin.responses.length;
    await t.slack.command('/joinlink', `revoke ${linkId}`, { user: 'UADMIN' });
    expect(answersSince(since)[0]).toContain(
      'Slack asked Roster to slow down, so its message will say so in a moment.',
    );
    expect((await linkRow(linkId)).revokedAt).not.toBeNull();
    expect(t.standin.rateLimited.slice(limitedBefore).some((c) => c.method === 'chat.update')).toBe(true);
    t.standin.clearRateLimit('chat.update');
    const updated = await eventually(() => updates()[0], 20_000);
    expect(textOf(updated)).toContain('This join link for *Acme* was revoked by <@UADMIN>');
    expect(JSON.stringify(updated.blocks)).not.toContain('joinlink_join');
    await jobsDrained(t.em(), { timeoutMs: 30_000 });
    expect(updates()).toHaveLength(1);
  }, 60_000);

  it('expires links: their message says so once, the audit records it, and the URL shows the unknown page', async () => {
    const person = member();
    const { message, url, linkId } = await postLink(t);
    await t
      .em()
      .getConnection()
      .execute(`update join_link set expires_at = now() - interval '1 minute' where id = ?`, [linkId]);
    await expireLinks(t.roster.deps);
    const updated = await t.standin.waitForMessage((m) => m.method === 'chat.update' && m.ts === message.ts);
    expect(textOf(updated)).toMatch(/This join link for \*Acme\* expired .*\. Ask an admin for a new one\./);
    expect(JSON.stringify(updated.blocks)).not.toContain('/join/');
    expect(await expireLinks(t.roster.deps)).toBe(0);
    expect(await audits('join_link.expired', linkId)).toBe(1);
    expect(await joinAs(message, person.id)).toBe(
      'This join link is no longer valid. Ask an admin in your workspace for a new one.',
    );
    const [expired, unknown] = await Promise.all([fetch(url), fetch(`${t.url}/join/${'A'.repeat(43)}`)]);
    expect([expired.status, unknown.status]).toEqual([404, 404]);
    expect(await expired.text()).toBe(await unknown.text());
  });

  it('expires a link whose message someone deleted: nothing to redraw, and no retry', async () => {
    const { message, linkId } = await postLink(t);
    await t
      .em()
      .getConnection()
      .execute(`update join_link set expires_at = now() - interval '1 minute' where id = ?`, [linkId]);
    t.standin.failNext('chat.update', 'message_not_found', 1, (args) => args.ts === message.ts);
    expect(await expireLinks(t.roster.deps)).toBe(1);
    await jobsDrained(t.em(), { queues: ['join.refresh-message'] });
    const [job] = await t
      .em()
      .getConnection()
      .execute<{ state: string; retry_count: number }[]>(
        `select state, retry_count from pgboss.job where name = 'join.refresh-message' and data->>'linkId' = ?`,
        [linkId],
      );
    expect(job).toEqual({ state: 'completed', retry_count: 0 });
    expect(t.standin.callsTo('chat.update').filter((c) => c.args.ts === message.ts)).toHaveLength(1);
  });

  it('expires a link while Slack refuses updates: its message says so once Slack allows, once', async () => {
    const { message, linkId } = await postLink(t);
    const updates = () => t.standin.messages.filter((m) => m.method === 'chat.update' && m.ts === message.ts);
    await t
      .em()
      .getConnection()
      .execute(`update join_link set expires_at = now() - interval '1 minute' where id = ?`, [linkId]);
    t.standin.limitRate('chat.update', { max: 0, windowMs: 60_000, retryAfter: 1 });
    try {
      expect(await expireLinks(t.roster.deps)).toBe(1);
      await new Promise((ok) => setTimeout(ok, 500));
      expect(updates()).toHaveLength(0);
    } finally {
      t.standin.clearRateLimit('chat.update');
    }
    const updated = await eventually(() => updates()[0], 30_000);
    expect(textOf(updated)).toMatch(/This join link for \*Acme\* expired/);
    expect(await expireLinks(t.roster.deps)).toBe(0);
    await jobsDrained(t.em(), { timeoutMs: 30_000 });
    expect(updates()).toHaveLength(1);
  }, 60_000);

  it('tells someone whose click met the revoke of a link with a maximum that it no longer works, not that it is full', async () => {
    const person = member();
    const { message, linkId } = await postLink(t, { max_uses: '5' });
    // An admin's revoke is being written while the click is worked: it holds the link's row.
    const other = new pg.Client({ connectionString: t.db.url });
    await other.connect();
    try {
      await other.query('begin');
      await other.query(`update join_link set revoked_at = now(), revoked_by = 'UADMIN' where id = $1`, [
        linkId,
      ]);
      const clicked = joinAs(message, person.id);
      await new Promise((r) => setTimeout(r, 1000));
      await other.query('commit');
      expect(await clicked).toBe(
        'This join link is no longer valid. Ask an admin in your workspace for a new one.',
      );
    } finally {
      await other.end();
    }
    expect((await linkRow(linkId)).uses).toBe(0);
    expect(await t.em().count(User, { email: person.email })).toBe(0);
  });

  it('lets exactly 20 of 100 people in when they all click at once on a link for 20', async () => {
    const { message, linkId } = await postLink(t, { max_uses: '20' });
    const rush = Array.from({ length: 100 }, () => member());
    // New members, as Slack announces them (their whole user object, guest flags included): the directory
    // mirror knows them before they click, so the rush costs no users.info calls (which a burst of 100
    // would push past Slack's tier).
    for (const p of rush) {
      await t.slack.event({ type: 'team_join', user: t.standin.userOf(p.id) });
    }
    await eventually(async () => {
      const [row] = await query<{ n: number }>(
        t.em(),
        sql`select count(*)::int as n from slack_member where slack_user_id = any(${rush.map((p) => p.id)})`,
      );
      return row?.n === 100;
    });
    const lookups = t.standin.callsTo('users.info').length;
    const since = t.standin.responses.length;
    const clicks = await Promise.all(rush.map((p) => click(message, p.id)));
    expect(clicks.every((c) => c.status === 200)).toBe(true);
    const answers = answersSince(since);
    expect(answers).toHaveLength(100);
    expect(answers.filter((a) => a.includes('You joined Acme'))).toHaveLength(20);
    expect(answers.filter((a) => a.startsWith('This join link is full'))).toHaveLength(80);
    expect(await t.em().count(User, { email: { $in: rush.map((p) => p.email) } })).toBe(20);
    expect((await linkRow(linkId)).uses).toBe(20);
    expect(await audits('join_link.used', linkId)).toBe(20);
    expect(t.standin.callsTo('users.info').length).toBe(lookups);
  }, 60_000);
});

describe('joining on the web page', () => {
  it('asks for name and email, emails a confirmation link, and joins when it is opened', async () => {
    const { url, linkId } = await postLink(t, { role: 'contractor' });
    const page = await browser.newPage();
    await page.goto(url);
    expect(await page.textContent('h1')).toBe('Join Acme');
    expect(await page.textContent('main')).toContain('You will join as a contractor.');
    await page.fill('#name', 'Wanda Web');
    await page.fill('#email', 'wanda@outside.test');
    await page.click('button[type=submit]');
    await page.waitForSelector('text=Check your inbox');
    expect(await page.textContent('main')).toContain('We sent an email to wanda@outside.test.');
    expect(await t.em().findOne(User, { email: 'wanda@outside.test' })).toBeNull();

    const mail = await t.smtp.waitForMail((m) => m.toText === 'wanda@outside.test');
    expect(mail.subject).toBe('Confirm your email to join Acme');
    expect(mail.text).toContain('press Confirm to finish joining Acme');
    const confirm = links(mail).find((l) => l.includes('/join/confirm/'))!;
    expect(confirm).toMatch(new RegExp(`^${t.url}/join/confirm/[A-Za-z0-9_-]{43}$`));
    const confirmToken = confirm.split('/').at(-1)!;
    const stored = await t.em().findOneOrFail(JoinConfirmation, { email: 'wanda@outside.test' });
    expect(stored.tokenHash).toBe(hashToken(confirmToken));

    await page.goto(confirm);
    expect(await page.textContent('h1')).toBe('Confirm to join Acme');
    expect(await t.em().findOne(User, { email: 'wanda@outside.test' })).toBeNull();
    await page.click('button:has-text("Confirm")');
    await page.waitForSelector('h1.ok');
    expect(await page.textContent('h1')).toBe("You're in");
    expect(await page.textContent('main')).toContain('You joined Acme as a contractor.');
    expect(await t.em().findOne(User, { email: 'wanda@outside.test' })).toMatchObject({
      status: 'active',
      role: 'contractor',
      firstName: 'Wanda',
      lastName: 'Web',
      slackUserId: null,
    });
    expect((await linkRow(linkId)).uses).toBe(1);
    expect(
      await t.em().count(AuditEvent, { action: 'join_link.used', subjectId: linkId, surface: 'web' }),
    ).toBe(1);

    // Opening it again joins no one twice, and says only that the link is used up.
    await page.goto(confirm);
    expect(await page.textContent('h1')).toBe('This confirmation link is no longer valid');
    await page.close();
    expect((await linkRow(linkId)).uses).toBe(1);
  });

  it('answers the same whether or not the email is known, revealing nothing', async () => {
    const { url } = await postLink(t);
    const em = t.em();
    em.create(User, {
      account: await t.account(),
      email: 'known@outside.test',
      role: 'client',
      status: 'active',
    });
    await em.flush();
    const submit = async (email: string) => {
      const page = await browser.newPage();
      await page.goto(url);
      await page.fill('#name', 'Someone');
      await page.fill('#email', email);
      const response = page.waitForResponse((r) => r.request().method() === 'POST');
      await page.click('button[type=submit]');
      const status = (await response).status();
      const text = (await page.textContent('main'))!.replace(email, '<email>');
      await page.close();
      return { status, text };
    };
    const known = await submit('known@outside.test');
    expect(known).toEqual(await submit('nobody-yet@outside.test'));
    // The redirect to the same "Check your inbox" page, either way.
    expect(known.status).toBe(303);
    expect(known.text).toContain('We sent an email to <email>.');
    const mail = await t.smtp.waitForMail((m) => m.toText === 'known@outside.test');
    expect(mail.subject).toBe('You already have access to Acme');
    expect(links(mail).some((l) => l.includes('/join/confirm/'))).toBe(false);
  });

  it('shows the form again with what was wrong', async () => {
    const { url } = await postLink(t);
    const page = await browser.newPage();
    await page.goto(url);
    await page.fill('#name', '   ');
    await page.fill('#email', 'not an email');
    await page.click('button[type=submit]');
    await page.waitForSelector('.error');
    const errors = await page.$$eval('.error', (els) => els.map((e) => e.textContent));
    expect(await page.inputValue('#email')).toBe('not an email');
    await page.close();
    expect(errors).toEqual(['Enter your name.', 'Enter a valid email address, like name@example.com.']);
  });

  it('says why an address with accents is refused, as /invite does, and what to do', async () => {
    const { url } = await postLink(t);
    const page = await browser.newPage();
    try {
      await page.goto(url);
      await page.fill('#name', 'José Núñez');
      await page.fill('#email', 'josé@acme.test');
      await page.click('button[type=submit]');
      await page.waitForSelector('#email-error');
      expect(await page.textContent('#email-error')).toBe(
        'Roster takes addresses in plain ASCII, without accents or other scripts; use another address.',
      );
      expect(await page.inputValue('#name')).toBe('José Núñez');
    } finally {
      await page.close();
    }
    const sent = await openForm('127.0.0.1', url);
    const answer = await sent.submit('Ana', 'ana@exämple.test');
    expect(answer.status).toBe(422);
    expect(answer.body).toContain('Roster takes addresses in plain ASCII: write it ana@xn--exmple-cua.test.');
    for (const email of ['josé@acme.test', 'ana@exämple.test', 'ana@xn--exmple-cua.test'])
      expect(await t.em().count(JoinConfirmation, { email })).toBe(0);
  });

  it('ties each error to its field, so a screen reader reads it there, and only the fields in error', async () => {
    const { url } = await postLink(t);
    const page = await browser.newPage();
    try {
      await page.goto(url);
      await page.fill('#name', 'Sonia Reader');
      await page.fill('#email', 'not an email');
      await page.click('button[type=submit]');
      await page.waitForSelector('.error');
      // As Chromium's accessibility tree gives them to a screen reader.
      const cdp = await page.context().newCDPSession(page);
      const field = async (selector: string) => {
        const { root } = await cdp.send('DOM.getDocument');
        const { nodeId } = await cdp.send('DOM.querySelector', { nodeId: root.nodeId, selector });
        const { nodes } = await cdp.send('Accessibility.getPartialAXTree', { nodeId, fetchRelatives: false });
        const node = nodes[0]!;
        return {
          name: node.name?.value,
          description: node.description?.value ?? '',
          invalid: node.properties?.find((p) => p.name === 'invalid')?.value.value ?? 'false',
        };
      };
      expect(await field('#email')).toEqual({
        name: 'Work email',
        description: 'Enter a valid email address, like name@example.com.',
        invalid: 'true',
      });
      expect(await field('#name')).toEqual({ name: 'Name', description: '', invalid: 'false' });
    } finally {
      await page.close();
    }
  });

  it('refuses an address outside the link’s domains on the form, and sends nothing', async () => {
    const { url } = await postLink(t, { domains: 'acme.test' });
    const page = await browser.newPage();
    await page.goto(url);
    expect(await page.textContent('main')).toContain('This link is for @acme.test addresses.');
    await page.fill('#name', 'Olga Outsider');
    await page.fill('#email', 'olga@elsewhere.test');
    await page.click('button[type=submit]');
    await page.waitForSelector('.error');
    expect(await page.textContent('.error')).toBe('This link is only for @acme.test addresses.');
    await page.close();
    expect(await t.em().count(JoinConfirmation, { email: 'olga@elsewhere.test' })).toBe(0);
  });

  it('with no seat free, confirming files a seat request, and the approval is emailed', async () => {
    const { url } = await postLink(t);
    const form = await openForm('127.0.0.2', url);
    expect((await form.submit('Sam Seatless', 'sam@outside.test')).status).toBe(200);
    const mail = await t.smtp.waitForMail((m) => m.toText === 'sam@outside.test');
    const confirm = links(mail).find((l) => l.includes('/join/confirm/'))!;
    const page = await withSeatsFull(async () => {
      const p = await browser.newPage();
      await p.goto(confirm);
      await p.click('button:has-text("Confirm")');
      await p.waitForSelector('text=Almost there');
      return p;
    });
    expect(await page.textContent('h1')).toBe('Almost there');
    await page.close();
    expect(await t.em().findOne(User, { email: 'sam@outside.test' })).toBeNull();
    const request = await t.em().findOneOrFail(SeatRequest, { email: 'sam@outside.test' });
    expect(request).toMatchObject({
      kind: 'join',
      status: 'pending',
      name: 'Sam Seatless',
      requestedBy: 'UADMIN',
    });
    await t.roster.deps.seats.decide(t.em(), await t.account(), {
      requestId: request.id,
      actor: { slackUserId: 'UOWNER', isAdmin: true, surface: 'slack' },
      decision: 'approve',
    });
    expect(await t.em().findOne(User, { email: 'sam@outside.test' })).toMatchObject({ status: 'active' });
    const told = await t.smtp.waitForMail(
      (m) => m.toText === 'sam@outside.test' && m.subject === 'You joined Acme',
    );
    expect(told.text).toContain('An admin approved your place: you are now in Acme.');
  });

  it('emails a rejected web joiner the reason with its line breaks, in text and in HTML', async () => {
    const { url } = await postLink(t);
    const form = await openForm('127.0.0.4', url);
    expect((await form.submit('Rhea Rejected', 'rhea@outside.test')).status).toBe(200);
    const mail = await t.smtp.waitForMail((m) => m.toText === 'rhea@outside.test');
    const confirm = links(mail).find((l) => l.includes('/join/confirm/'))!;
    await withSeatsFull(async () => {
      const p = await browser.newPage();
      await p.goto(confirm);
      await p.click('button:has-text("Confirm")');
      await p.waitForSelector('text=Almost there');
      await p.close();
    });
    const request = await t.em().findOneOrFail(SeatRequest, { email: 'rhea@outside.test' });
    await t.roster.deps.seats.decide(t.em(), await t.account(), {
      requestId: request.id,
      actor: { slackUserId: 'UADMIN', isAdmin: true, surface: 'slack' },
      decision: 'reject',
      reason: 'Only contractors this quarter.\nAsk Maria in HR about the next round.',
    });
    const told = await t.smtp.waitForMail(
      (m) => m.toText === 'rhea@outside.test' && m.subject === 'Your request to join Acme',
    );
    expect(told.text).toContain(
      'Their reason: “Only contractors this quarter.\nAsk Maria in HR about the next round.”.',
    );
    // The HTML part, as a mail client that shows HTML renders it: the same words, on the same lines.
    const page = await browser.newPage();
    await page.setContent(String(told.html));
    // biome-ignore lint/performance/useDomNodeTextContent: the line breaks as rendered are what is tested
    expect(await page.innerText('body')).toBe(told.text?.trim());
    await page.close();
  });

  it('gives expired, revoked and unknown links the same page, the holder of a confirmation too', async () => {
    const revoked = await postLink(t);
    const expired = await postLink(t);
    const form = await openForm('127.0.0.3', revoked.url);
    await form.submit('Late Larry', 'larry@outside.test');
    const mail = await t.smtp.waitForMail((m) => m.toText === 'larry@outside.test');
    const confirm = links(mail).find((l) => l.includes('/join/confirm/'))!;
    await t.slack.command('/joinlink', `revoke ${revoked.linkId}`, { user: 'UADMIN' });
    await t
      .em()
      .getConnection()
      .execute(`update join_link set expires_at = now() - interval '1 second' where id = ?`, [
        expired.linkId,
      ]);

    const pages = await Promise.all(
      [revoked.url, expired.url, `${t.url}/join/${'x'.repeat(43)}`, `${t.url}/join/nonsense`].map(
        async (u) => {
          const res = await fetch(u);
          return { status: res.status, body: await res.text() };
        },
      ),
    );
    expect(new Set(pages.map((p) => JSON.stringify(p))).size).toBe(1);
    expect(pages[0]!.status).toBe(404);
    expect(pages[0]!.body).toContain('This join link is no longer valid');
    expect(pages[0]!.body).toContain('Ask an admin in your workspace for a new one.');

    // Its holder, who has not joined, hears of the link, as the link's own page says it.
    const opened = await fetch(confirm);
    expect(opened.status).toBe(404);
    expect(await opened.text()).toBe(pages[0]!.body);
    expect(await t.em().findOne(User, { email: 'larry@outside.test' })).toBeNull();
    // An unknown confirmation gets the one page for unknown, used and expired ones.
    const unknownConfirm = await fetch(`${t.url}/join/confirm/${'y'.repeat(43)}`);
    expect(unknownConfirm.status).toBe(404);
    expect(await unknownConfirm.text()).toContain('This confirmation link is no longer valid');
  });

  it('refuses a form posted without its CSRF cookie, and shows it again with what was typed', async () => {
    const { url } = await postLink(t);
    const page = await httpFrom('127.0.0.4', url);
    const csrf = page.body.match(/name="csrf" value="([^"]+)"/)![1]!;
    const res = await httpFrom('127.0.0.4', url, {
      method: 'POST',
      body: new URLSearchParams({ csrf, name: 'No Cookie', email: 'nocookie@outside.test' }).toString(),
    });
    expect(res.status).toBe(403);
    expect(await t.em().count(JoinConfirmation, { email: 'nocookie@outside.test' })).toBe(0);

    // The form again, filled in, with a token for the cookie it now sets: pressing the button sends it,
    // once the browser allows cookies, which the form asks for.
    expect(res.body).toContain(
      'Your browser must allow cookies for this site: allow them, then press the button again.',
    );
    expect(res.body).toContain('value="No Cookie"');
    expect(res.body).toContain('value="nocookie@outside.test"');
    const fresh = res.body.match(/name="csrf" value="([^"]+)"/)?.[1];
    expect(fresh).toBeDefined();
    const setCookie = String(res.headers['set-cookie']);
    expect(setCookie).toMatch(/^roster_csrf=[A-Za-z0-9_-]{32,}; Path=\/; HttpOnly; SameSite=Lax/);
    const again = await httpFrom('127.0.0.4', url, {
      method: 'POST',
      cookie: setCookie.split(';')[0],
      body: new URLSearchParams({
        csrf: fresh!,
        name: 'No Cookie',
        email: 'nocookie@outside.test',
      }).toString(),
    });
    expect(again.status).toBe(200);
    expect(again.body).toContain('Check your inbox');
    expect(await t.em().count(JoinConfirmation, { email: 'nocookie@outside.test' })).toBe(1);
  });

  it('asks a browser that blocks cookies to allow them, and one with a stale cookie to press again', async () => {
    const { url } = await postLink(t);
    const ctx = await browser.newContext();
    try {
      const page = await ctx.newPage();
      await page.goto(url);
      await page.fill('#name', 'Cookie Less');
      await page.fill('#email', 'cookieless@outside.test');
      // As a browser that blocks cookies: it keeps none of those Roster sets, so the form goes without one.
      await ctx.clearCookies();
      await page.click('button[type=submit]');
      await page.waitForSelector('#form-error');
      expect(await page.textContent('#form-error')).toBe(
        'Your browser did not send the cookie Roster needs to check that this form came from its own page. Your browser must allow cookies for this site: allow them, then press the button again.',
      );
      expect(await page.inputValue('#email')).toBe('cookieless@outside.test');
    } finally {
      await ctx.close();
    }
    expect(await t.em().count(JoinConfirmation, { email: 'cookieless@outside.test' })).toBe(0);

    // A cookie that is there but does not go with the form keeps the answer it had.
    const opened = await httpFrom('127.0.0.4', url);
    const csrf = opened.body.match(/name="csrf" value="([^"]+)"/)![1]!;
    const stale = await httpFrom('127.0.0.4', url, {
      method: 'POST',
      cookie: `roster_csrf=${'x'.repeat(32)}`,
      body: new URLSearchParams({ csrf, name: 'Stale Cookie', email: 'stale@outside.test' }).toString(),
    });
    expect(stale.status).toBe(403);
    expect(stale.body).toContain('This form expired or was sent from another page.');
    expect(stale.body).not.toContain('allow cookies');
  });
});

describe('reloading the answer pages of the join form and of Confirm', () => {
  it('shows "Check your inbox" again on reload, back and forward, and sends no second email', async () => {
    const { url, token } = await postLink(t);
    const email = 'reloader@outside.test';
    const page = await browser.newPage();
    try {
      await page.goto(url);
      await page.fill('#name', 'Rita Reload');
      await page.fill('#email', email);
      await page.click('button[type=submit]');
      await page.waitForSelector('text=Check your inbox');
      // The answer is a page of its own, whose address holds neither the link's token nor the address.
      expect(page.url()).toBe(`${t.url}/join/sent`);
      expect(await page.textContent('main')).toContain(`We sent an email to ${email}.`);
      // The first email has gone: a form posted again now would send a second, with a second link.
      await t.smtp.waitForMail((m) => m.toText === email);

      await page.reload();
      expect(await page.textContent('h1')).toBe('Check your inbox');
      expect(await page.textContent('main')).toContain(`We sent an email to ${email}.`);
      await page.goBack();
      expect(page.url()).toBe(url);
      await page.goForward();
      expect(page.url()).toBe(`${t.url}/join/sent`);
      expect(await page.textContent('main')).toContain(`We sent an email to ${email}.`);
    } finally {
      await page.close();
    }
    await jobsDrained(t.em());
    expect(t.smtp.messagesTo(email)).toHaveLength(1);
    expect(await t.em().count(JoinConfirmation, { email })).toBe(1);
    expect(url).toContain(token);
  });

  it('gives on "Check your inbox" the time the email gives when the join link ends within 24 hours', async () => {
    const posted = await postLink(t);
    await t
      .em()
      .getConnection()
      .execute(`update join_link set expires_at = now() + interval '1 hour' where id = ?`, [posted.linkId]);
    const { expiresAt } = await t.em().findOneOrFail(JoinLink, posted.linkId);
    const form = await openForm('127.0.0.78', posted.url);
    const page = await form.submit('Late Comer', 'late@outside.test');
    const mail = await t.smtp.waitForMail((m) => m.toText === 'late@outside.test');
    const until = expiresAt.toUTCString();
    expect(mail.text).toContain(`The link works until ${until}.`);
    expect(page.body).toContain(`Open the link in it by ${until} to finish joining`);
    expect(page.body).not.toContain('within 24 hours');
  });

  it('shows the same "Check your inbox" without the address when the page is opened by itself', async () => {
    const res = await fetch(`${t.url}/join/sent`);
    expect(res.status).toBe(200);
    const body = await res.text();
    expect(body).toContain('<h1>Check your inbox</h1>');
    expect(body).toContain('we sent an email to the address you entered');
    // An answer page Roster did not send here (a forged or altered cookie) is not shown.
    const forged = await fetch(`${t.url}/join/sent`, {
      headers: {
        cookie: `roster_outcome=${Buffer.from('{"p":"/join/sent","t":"x","b":"<h1>Hacked</h1>","e":9e15}').toString('base64url')}.AAAA`,
      },
    });
    expect(await forged.text()).not.toContain('Hacked');
  });

  it('shows "You\'re in" again when the page after Confirm is reloaded, joining once', async () => {
    const { url, linkId } = await postLink(t);
    const email = 'reconfirm@outside.test';
    const form = await openForm('127.0.0.5', url);
    const sent = await form.submit('Carl Confirm', email);
    expect(sent.status).toBe(200);
    expect(sent.redirectedTo).toBe(`${t.url}/join/sent`);
    expect(sent.body).toContain(`We sent an email to <strong>${email}</strong>.`);
    const mail = await t.smtp.waitForMail((m) => m.toText === email);
    const confirm = links(mail).find((l) => l.includes('/join/confirm/'))!;
    const page = await browser.newPage();
    try {
      await page.goto(confirm);
      await page.click('button:has-text("Confirm")');
      await page.waitForSelector('h1.ok');
      expect(page.url()).toBe(`${t.url}/join/confirmed`);
      await page.reload();
      expect(await page.textContent('h1')).toBe("You're in");
      expect(await page.textContent('main')).toContain('You joined Acme as an employee.');
    } finally {
      await page.close();
    }
    expect(await t.em().count(User, { email })).toBe(1);
    expect((await linkRow(linkId)).uses).toBe(1);
    expect(await audits('join_link.used', linkId)).toBe(1);
  });
});
