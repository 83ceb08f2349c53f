import { User } from '../../../src/features/people/user.entity.ts';
import { SeatRequest } from '../../../src/features/seats/seat-request.entity.ts';
import { DEFAULT_MEMBERS, eventually, outsider, startTestApp, type TestApp } from '../../support/app.ts';
import { textOf } from '../../support/views.ts';

// `/invite` takes addresses the way people paste them from Gmail and Outlook, as Slack sends the text: the
// driver escapes what a test types as Slack does for a command whose should_escape manifest.yml sets.

const crowd = Array.from({ length: 101 }, (_, i) => {
  const n = String(i + 1).padStart(3, '0');
  return { id: `UCROWD${n}`, name: `crowd${n}`, realName: `Crowd ${n}`, email: `crowd${n}@acme.test` };
});

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp({
    seatLimit: 20,
    members: [
      ...DEFAULT_MEMBERS,
      // Of another organisation, met in a channel shared through Slack Connect.
      outsider('UEXTANA', 'ana', 'ana@partner.example'),
      // A team too large for one round.
      ...crowd,
    ],
  });
});
afterAll(() => t.stop());

const emailsField = (view: any) =>
  view.blocks.find((b: any) => b.block_id === 'emails').element.initial_value;

describe('/invite with names and addresses pasted from a mail client', () => {
  it('fills the form with each name and address, and the names become the people’s first and last names', async () => {
    const typed = 'Ana Lopez <ana@pasted.test>, "Lopez, Bea" <bea@pasted.test>; cy@pasted.test client';
    // Slack escapes the brackets it does not use and makes each address a mailto link.
    expect(t.slack.commandText('/invite', typed)).toBe(
      'Ana Lopez &lt;<mailto:ana@pasted.test|ana@pasted.test>&gt;, "Lopez, Bea" &lt;<mailto:bea@pasted.test|bea@pasted.test>&gt;; <mailto:cy@pasted.test|cy@pasted.test> client',
    );
    await t.slack.command('/invite', typed, { user: 'UADMIN' });
    const view = t.standin.lastOpenedView();
    expect(emailsField(view)).toBe(
      'Ana Lopez <ana@pasted.test>\n"Lopez, Bea" <bea@pasted.test>\ncy@pasted.test',
    );
    expect(view.blocks.find((b: any) => b.block_id === 'role').element.initial_option.value).toBe('client');
    const res = await t.slack.submitView(view, {}, { user: 'UADMIN' });
    expect(res.json?.errors).toBeUndefined();
    const summary = await eventually(() =>
      t.standin.messages.findLast(
        (m) => m.channel === 'DUADMIN' && String(m.text).startsWith('Invitations: 3 of 3'),
      ),
    );
    expect(textOf(summary)).toContain('ana@pasted.test*: invited');
    const people = await t
      .em()
      .find(User, { email: { $like: '%@pasted.test' } }, { orderBy: { email: 'asc' } });
    expect(people.map((u) => [u.email, u.firstName, u.lastName, u.role, u.status])).toEqual([
      ['ana@pasted.test', 'Ana', 'Lopez', 'client', 'invited'],
      ['bea@pasted.test', 'Bea', 'Lopez', 'client', 'invited'],
      ['cy@pasted.test', null, null, 'client', 'invited'],
    ]);
    const mail = await t.smtp.waitForMail((m) => m.toText === 'bea@pasted.test');
    expect(mail.text).toBeTruthy();
  });

  it("keeps a requester's typed name on the seat request, and the approval creates the person with it", async () => {
    await t.slack.command('/invite', 'Dan Paid <dan@pasted.test>', { user: 'UMEMBER' });
    await t.slack.submitView(t.standin.lastOpenedView(), { role: 'employee' }, { user: 'UMEMBER' });
    const request = await t.em().findOneOrFail(SeatRequest, { email: 'dan@pasted.test' });
    expect(request.name).toBe('Dan Paid');
    await t.roster.deps.seats.decide(t.em(), await t.account(), {
      requestId: request.id,
      actor: { slackUserId: 'UADMIN', isAdmin: true, surface: 'slack' },
      decision: 'approve',
    });
    expect(await t.em().findOneOrFail(User, { email: 'dan@pasted.test' })).toMatchObject({
      firstName: 'Dan',
      lastName: 'Paid',
      status: 'invited',
    });
  });

  it('fills a mentioned member with their name and Slack email', async () => {
    await t.slack.command('/invite', '@mia ed@pasted.test', { user: 'UADMIN' });
    expect(emailsField(t.standin.lastOpenedView())).toBe('Mia Manager <mia@acme.test>\ned@pasted.test');
  });

  it('takes a link, an & and a channel typed with the addresses as what they are, not as Slack markup', async () => {
    await t.slack.command('/invite', 'Jo & Kai <jk@pasted.test> https://pasted.test/team #general', {
      user: 'UADMIN',
    });
    expect(emailsField(t.standin.lastOpenedView())).toBe(
      'Jo & Kai <jk@pasted.test>\nhttps://pasted.test/team\n#general',
    );
  });

  it('answers `/invite @roster`, Slack’s way to add an app to a channel, with how to add Roster instead', async () => {
    const opened = t.standin.callsTo('views.open').length;
    const before = t.standin.responses.length;
    const res = await t.slack.command('/invite', '@roster', { user: 'UMEMBER' });
    expect(res.status).toBe(200);
    const answer = await eventually(() => t.standin.responses.slice(before).at(-1));
    expect(answer.body.response_type).toBe('ephemeral');
    expect(textOf(answer.body)).toContain('`/invite @roster` cannot add Roster to a channel');
    expect(textOf(answer.body)).toContain(
      'open the channel’s details (click its name), then Integrations, then Add an app, and pick Roster',
    );
    expect(t.standin.callsTo('views.open').length).toBe(opened);

    // With someone else named too, it is an invitation: the form opens, Roster's own name left to fix.
    await t.slack.command('/invite', '@roster @mia', { user: 'UADMIN' });
    expect(t.standin.callsTo('views.open').length).toBe(opened + 1);
    expect(emailsField(t.standin.lastOpenedView())).toBe('@roster\nMia Manager <mia@acme.test>');
  });

  it('refuses more than 100 people mentioned at once, before any is looked up, instead of leaving some out', async () => {
    const opened = t.standin.callsTo('views.open').length;
    const before = t.standin.responses.length;
    await t.slack.command('/invite', crowd.map((m) => `@${m.name}`).join(' '), { user: 'UADMIN' });
    const answer = await eventually(() => t.standin.responses[before]);
    expect(textOf(answer.body)).toBe(
      ':no_entry: At most 100 people at once; you mentioned 101. Nobody was invited: run `/invite` again with up to 100 of them, and the rest in another round.',
    );
    expect(t.standin.callsTo('views.open').length).toBe(opened);
    // Fewer fill the form, one line each, none left out.
    const some = crowd.slice(0, 60);
    await t.slack.command('/invite', some.map((m) => `@${m.name}`).join(' '), { user: 'UADMIN' });
    await eventually(() => t.standin.callsTo('views.open').length === opened + 1 || null, 10_000);
    const lines = emailsField(t.standin.lastOpenedView()).split('\n');
    expect(lines).toHaveLength(60);
    expect(lines.map((line: string) => /crowd(\d{3})/i.exec(line)?.[1])).toEqual(
      some.map((m) => m.name.slice(-3)),
    );
  });

  it('does not fill in the address of someone of another organisation, and the form says to type one', async () => {
    // Slack tells Roster about them as about anyone seen in a shared channel: they are in the directory copy.
    await t.slack.event({
      type: 'user_change',
      user: {
        id: 'UEXTANA',
        team_id: 'TPARTNER',
        real_name: 'Ana Outside',
        profile: { email: 'ana@partner.example' },
      },
    });
    const account = await t.account();
    await eventually(() => t.roster.deps.directory.byId(t.em(), account, 'UEXTANA'));
    await t.slack.command('/invite', '@ana', { user: 'UADMIN' });
    const view = t.standin.lastOpenedView();
    expect(emailsField(view)).toBe('@ana');
    const res = await t.slack.submitView(view, {}, { user: 'UADMIN' });
    expect(res.json.errors.emails).toContain('@ana (a Slack name, not an address: type their email)');
    expect(JSON.stringify(view)).not.toContain('ana@partner.example');
  });

  it('refuses junk, a Slack name and an address outside ASCII on the form, saying why, and invites nobody', async () => {
    await t.slack.command('/invite', '', { user: 'UADMIN' });
    const res = await t.slack.submitView(
      t.standin.lastOpenedView(),
      { emails: 'Fay Fine <fay@pasted.test>\nGus Green gus@pasted.test\n@hal\nivy@exämple.com' },
      { user: 'UADMIN' },
    );
    expect(res.json.errors.emails).toBe(
      'Not valid email addresses: Gus, Green, @hal (a Slack name, not an address: type their email), ivy@exämple.com (Roster takes addresses in plain ASCII: write it ivy@xn--exmple-cua.com). Fix or remove them; a name goes with its address as Ana Lopez <ana@example.com>.',
    );
    expect(await t.em().count(User, { email: { $in: ['fay@pasted.test', 'gus@pasted.test'] } })).toBe(0);
  });
});
