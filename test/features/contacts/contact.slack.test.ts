import pg from 'pg';
import { query, sql } from '../../../src/db/sql.ts';
import { AuditEvent } from '../../../src/features/audit/audit-event.entity.ts';
import { Contact } from '../../../src/features/contacts/contact.entity.ts';
import { User } from '../../../src/features/people/user.entity.ts';
import { SeatRequest } from '../../../src/features/seats/seat-request.entity.ts';
import { eventually, jobsDrained, startTestApp, type TestApp } from '../../support/app.ts';
import { links } from '../../support/smtp-sink.ts';
import { buttonMessage, findButton, textOf } from '../../support/views.ts';

let t: TestApp;

beforeAll(async () => {
  t = await startTestApp({ seatLimit: 10 });
});
afterAll(() => t.stop());

const confirmations = (user: string) =>
  t.standin.messages.filter((m) => m.channel === `D${user}` && String(m.text).includes('contact'));

async function addContact(user: string, values: Record<string, string>) {
  await t.slack.command('/contact', 'add', { user });
  const view = t.standin.lastOpenedView();
  expect(view.callback_id).toBe('contact_modal');
  return t.slack.submitView(view, values, { user });
}

async function find(user: string, text: string) {
  const before = t.standin.responses.length;
  await t.slack.command('/contact', `find ${text}`, { user });
  return (await eventually(() => t.standin.responses[before])).body;
}

describe('adding contacts', () => {
  it('adds a contact from the modal and confirms it', async () => {
    const res = await addContact('UMEMBER', {
      name: 'Ana Lee',
      email: 'ana@supplier.test',
      phone: '+1 555 0101',
      company: 'Supplier Ltd',
      title: 'Account manager',
      notes: 'Met at the fair',
    });
    expect(res.status).toBe(200);
    const contact = await t.em().findOneOrFail(Contact, { email: 'ana@supplier.test' });
    expect(contact).toMatchObject({
      name: 'Ana Lee',
      company: 'Supplier Ltd',
      title: 'Account manager',
      addedBy: 'UMEMBER',
    });
    const confirmation = await eventually(() => confirmations('UMEMBER').at(-1));
    expect(confirmation.text).toContain('Added the contact *Ana Lee* (ana@supplier.test)');
    expect(await t.em().count(AuditEvent, { action: 'contact.added', subjectId: contact.id })).toBe(1);
  });

  it('answers an address longer than any email can be on its field, adding nothing', async () => {
    const email = `${'a'.repeat(64)}@${['b', 'c', 'd', 'e'].map((l) => l.repeat(60)).join('.')}.test`;
    // Longer than the form lets anyone type: a submission made by hand.
    await t.slack.command('/contact', 'add', { user: 'UMEMBER' });
    const view = t.standin.lastOpenedView();
    const values = {
      name: { name: { type: 'plain_text_input', value: 'Lou Long' } },
      email: { email: { type: 'plain_text_input', value: email } },
    };
    const res = await t.slack.viewSubmission({ user: 'UMEMBER', view: { ...view, state: { values } } });
    expect(res.json?.errors).toEqual({ email: 'Keep it under 254 characters.' });
    expect(await t.em().count(Contact, { name: 'Lou Long' })).toBe(0);
  });

  it('adds once, and confirms once, when the same form is submitted twice', async () => {
    await t.slack.command('/contact', 'add', { user: 'UMANAGER' });
    const view = t.standin.lastOpenedView();
    // With no email nothing else would stop a second contact; with one, a second DM would say it failed.
    const noEmail = { name: 'Twice Submitted' };
    await t.slack.submitView(view, noEmail, { user: 'UMANAGER' });
    await t.slack.submitView(view, noEmail, { user: 'UMANAGER' });
    await t.slack.command('/contact', 'add', { user: 'UMANAGER' });
    const second = t.standin.lastOpenedView();
    const withEmail = { name: 'Eve Twice', email: 'eve@partner.test' };
    await Promise.all([
      t.slack.submitView(second, withEmail, { user: 'UMANAGER' }),
      t.slack.submitView(second, withEmail, { user: 'UMANAGER' }),
    ]);
    await eventually(
      () => confirmations('UMANAGER').filter((m) => /Eve Twice/.test(String(m.text))).length > 0,
    );
    await jobsDrained(t.em());
    expect(await t.em().count(Contact, { name: 'Twice Submitted' })).toBe(1);
    expect(await t.em().count(Contact, { email: 'eve@partner.test' })).toBe(1);
    const told = t.standin.messages.filter((m) => m.channel === 'DUMANAGER').map((m) => String(m.text));
    expect(told.filter((m) => m.includes('Added the contact *Twice Submitted*'))).toHaveLength(1);
    expect(told.filter((m) => m.includes('Added the contact *Eve Twice*'))).toHaveLength(1);
    expect(told.filter((m) => m.includes('Nothing was saved'))).toEqual([]);
  });

  it('saves a message author as a contact, prefilled from their Slack profile', async () => {
    await eventually(
      async () => (await t.roster.deps.directory.syncedAt(t.em(), await t.account())) !== null,
    );
    const infos = t.standin.callsTo('users.info').length;
    await t.slack.messageShortcut({
      user: 'UADMIN',
      callbackId: 'save_author_contact',
      message: { ts: '1700000000.000001', user: 'UMEMBER', text: 'hello' },
    });
    const view = t.standin.lastOpenedView();
    const initial = (id: string) => view.blocks.find((b: any) => b.block_id === id).element.initial_value;
    expect([initial('name'), initial('email'), initial('title'), initial('phone')]).toEqual([
      'Max Member',
      'max@acme.test',
      undefined,
      '+1 555 0100',
    ]);
    // The profile comes from the directory mirror: Slack is not asked while the form's trigger runs out.
    expect(t.standin.callsTo('users.info')).toHaveLength(infos);
    await t.slack.submitView(view, {}, { user: 'UADMIN' });
    expect(await t.em().findOne(Contact, { email: 'max@acme.test' })).toMatchObject({
      name: 'Max Member',
      phone: '+1 555 0100',
    });
  });

  it('says there is nobody to save when the message was posted by an app, a bot user or Slackbot', async () => {
    t.standin.addMember({ id: 'UHELPBOT', name: 'helpbot', realName: 'Help Bot', isBot: true });
    const contacts = await t.em().count(Contact, {});
    const opened = t.standin.callsTo('views.open').length;
    await t.slack.messageShortcut({
      user: 'UADMIN',
      callbackId: 'save_author_contact',
      message: { ts: '1700000000.000002', text: 'Build passed', bot_id: 'BCI', subtype: 'bot_message' },
    });
    await t.slack.messageShortcut({
      user: 'UADMIN',
      callbackId: 'save_author_contact',
      message: { ts: '1700000000.000003', user: 'UHELPBOT', text: 'Reminder', bot_id: 'BHELP' },
    });
    // Slackbot's reminders and replies carry its user id, no bot_id.
    await t.slack.messageShortcut({
      user: 'UADMIN',
      callbackId: 'save_author_contact',
      message: { ts: '1700000000.000004', user: 'USLACKBOT', text: 'Reminder: standup' },
    });
    const views = t.standin.callsTo('views.open').slice(opened);
    expect(views).toHaveLength(3);
    for (const call of views) {
      expect(call.args.view.callback_id).not.toBe('contact_modal');
      expect(textOf(call.args.view)).toContain('posted by an app, not a person');
    }
    expect(await t.em().count(Contact, {})).toBe(contacts);
  });

  it('opens the form from the Add contact shortcut, and from /contact add with a name and email', async () => {
    await t.slack.shortcut({ user: 'UMANAGER', callbackId: 'add_contact' });
    const empty = t.standin.lastOpenedView();
    expect(empty.callback_id).toBe('contact_modal');
    expect(empty.blocks.map((b: any) => b.block_id)).toEqual([
      'name',
      'email',
      'phone',
      'company',
      'title',
      'notes',
    ]);
    expect(empty.blocks.filter((b: any) => b.element.initial_value)).toEqual([]);
    await t.slack.command('/contact', 'add Bea  Byrne bea@byrne.test', { user: 'UMANAGER' });
    const filled = t.standin.lastOpenedView();
    const initial = (id: string) => filled.blocks.find((b: any) => b.block_id === id).element.initial_value;
    expect([initial('name'), initial('email')]).toEqual(['Bea Byrne', 'bea@byrne.test']);
    await t.slack.submitView(filled, { company: 'Byrne & Co' }, { user: 'UMANAGER' });
    expect(await t.em().findOne(Contact, { email: 'bea@byrne.test' })).toMatchObject({
      name: 'Bea Byrne',
      company: 'Byrne & Co',
      addedBy: 'UMANAGER',
    });
  });

  it('fills the form from a name and address pasted from an email, `Name <address>`', async () => {
    await t.slack.command('/contact', 'add "Dee Dunn" <dee@dunn.test>,', { user: 'UMANAGER' });
    const filled = t.standin.lastOpenedView();
    const initial = (id: string) => filled.blocks.find((b: any) => b.block_id === id).element.initial_value;
    expect([initial('name'), initial('email')]).toEqual(['Dee Dunn', 'dee@dunn.test']);
  });

  it('explains /contact when the subcommand is unknown', async () => {
    const before = t.standin.responses.length;
    await t.slack.command('/contact', 'delete ana', { user: 'UMEMBER' });
    const body = (await eventually(() => t.standin.responses[before])).body;
    expect(body.text).toContain('I did not understand `/contact delete ana`.');
    expect(body.text).toContain('`/contact find ana`');
    // Typed text is shown as text: no mention or link is made of it, and a long paste is cut.
    const next = t.standin.responses.length;
    await t.slack.command('/contact', `remove <!channel> & <https://x.test|y> ${'z'.repeat(400)}`, {
      user: 'UMEMBER',
    });
    const echoed = (await eventually(() => t.standin.responses[next])).body.text as string;
    expect(echoed).toContain('`/contact remove &lt;!channel&gt; &amp; &lt;https://x.test|y&gt; zzz');
    expect(echoed).not.toMatch(/<!channel>|<https:/);
    expect((echoed.split('\n')[0] ?? '').length).toBeLessThan(260);
  });

  it('refuses an email held by a user or another contact, naming the record, and writes nothing', async () => {
    const em = t.em();
    em.create(User, {
      account: await t.account(),
      email: 'taken@acme.test',
      firstName: 'Tess',
      lastName: 'Taken',
      role: 'employee',
      status: 'active',
    });
    await em.flush();
    const count = await t.em().count(Contact, {});
    const asUser = await addContact('UMEMBER', { name: 'Someone', email: ' TAKEN@acme.test ' });
    expect(asUser.json).toEqual({
      response_action: 'errors',
      errors: { email: 'TAKEN@acme.test is already a user (Tess Taken, active).' },
    });
    const asContact = await addContact('UMEMBER', { name: 'Other Ana', email: 'Ana@Supplier.test' });
    expect(asContact.json?.errors).toEqual({
      email: 'Ana@Supplier.test is already a contact: Ana Lee at Supplier Ltd.',
    });
    const bad = await addContact('UMEMBER', { name: '  ', email: 'nope' });
    expect(bad.json?.errors).toEqual({
      name: 'Enter a name.',
      email: 'Enter a valid email address, or leave it empty.',
    });
    // Zero-width spaces and joiners survive trimming but show nothing: a name of them alone is no name.
    const unseen = await addContact('UMEMBER', {
      name: ' \u200B\u2060\uFEFF ',
      email: 'unseen@supplier.test',
    });
    expect(unseen.json?.errors).toEqual({
      name: 'Enter a name: this one is only spaces or invisible characters.',
    });
    expect(await t.em().count(Contact, {})).toBe(count);
  });
});

describe('finding', () => {
  beforeAll(async () => {
    const em = t.em();
    const account = await t.account();
    for (let i = 0; i < 25; i++) {
      em.create(Contact, {
        account,
        name: `Zed ${String(i).padStart(2, '0')}`,
        email: `zed${i}@bulk.test`,
        company: 'Bulk Co',
      });
    }
    em.create(User, {
      account,
      email: 'ina@acme.test',
      firstName: 'Ina',
      lastName: 'Invited',
      role: 'employee',
      status: 'invited',
      addedBy: 'UMEMBER',
    });
    em.create(User, {
      account,
      email: 'nia@acme.test',
      firstName: 'Nia',
      lastName: 'Notyet',
      role: 'client',
      status: 'not_invited',
      addedBy: 'UADMIN',
    });
    await em.flush();
  });

  it('says there are no more matches when Show more finds none left, as after contacts were removed', async () => {
    const before = t.standin.responses.length;
    await t.slack.clickButton(
      buttonMessage('contact_find_more', JSON.stringify({ q: 'ana', o: 500 }), 'Show more'),
      'Show more',
      { user: 'UMEMBER' },
    );
    const answer = textOf((await eventually(() => t.standin.responses.slice(before).at(-1))).body);
    expect(answer).toContain(
      'No more matches for “ana” after the first 500. Search again with `/contact find ana`.',
    );
    expect(answer).not.toContain('501–500');
  });

  it('says when nothing matches and offers to add a contact', async () => {
    const body = await find('UMEMBER', 'qwerty');
    expect(body.response_type).toBe('ephemeral');
    expect(textOf(body)).toContain('No contact or user matches “qwerty”.');
    expect(findButton(body.blocks, { actionId: 'contact_add_open' }).action.value).toBe('qwerty');
    await t.slack.clickButton({ ...body, channel: 'C0GENERAL', ts: '1' }, 'Add contact', { user: 'UMEMBER' });
    const view = t.standin.lastOpenedView();
    expect(view.callback_id).toBe('contact_modal');
    expect(view.blocks.find((b: any) => b.block_id === 'name').element.initial_value).toBe('qwerty');
  });

  it('finds one contact by the start of its company, with Convert and Edit', async () => {
    const body = await find('UMEMBER', 'suppl');
    const text = textOf(body);
    expect(text).toContain('*Ana Lee* · ana@supplier.test · Supplier Ltd');
    expect(text).toContain('Contact');
    expect(findButton(body.blocks, 'Convert to user')).toBeDefined();
    expect(findButton(body.blocks, 'Edit')).toBeDefined();
    expect(body.blocks.filter((b: any) => b.type === 'actions')).toHaveLength(1);
  });

  it('finds users with the invitation button that fits their status, for whoever may press it', async () => {
    const invited = await find('UMEMBER', 'ina');
    expect(textOf(invited)).toContain('User, Employee (paid seat), invited');
    expect(findButton(invited.blocks, { actionId: 'invite_resend' })).toBeDefined();
    const notYet = await find('UADMIN', 'NOTYET');
    expect(findButton(notYet.blocks, { actionId: 'invite_send' })).toBeDefined();
    // Someone an admin added: a member would be refused on Send invitation, so he is not offered it.
    const notHis = await find('UMEMBER', 'NOTYET');
    expect(textOf(notHis)).toContain('Nia Notyet');
    expect(JSON.stringify(notHis.blocks)).not.toContain('invite_send');
  });

  it('shows 25 matches ten at a time with Show more', async () => {
    const first = await find('UMEMBER', 'zed');
    const names = (body: any) => textOf(body).match(/\*Zed \d\d\*/g) ?? [];
    expect(names(first)).toHaveLength(10);
    expect(names(first)[0]).toBe('*Zed 00*');
    const more = findButton(first.blocks, 'Show more');
    const pages = [first];
    let current = first;
    for (let i = 0; i < 2; i++) {
      const before = t.standin.responses.length;
      await t.slack.clickButton({ ...current, channel: 'C0GENERAL', ts: '1' }, 'Show more', {
        user: 'UMEMBER',
      });
      current = (await eventually(() => t.standin.responses[before])).body;
      pages.push(current);
    }
    expect(pages.map((p) => names(p).length)).toEqual([10, 10, 5]);
    expect(new Set(pages.flatMap(names)).size).toBe(25);
    expect(textOf(pages[2])).toContain('That is all.');
    expect(more.action.value).toBe(JSON.stringify({ q: 'zed', o: 10 }));
  });
});

describe('converting and editing', () => {
  async function contactNamed(name: string, email: string | null) {
    const em = t.em();
    const contact = em.create(Contact, { account: await t.account(), name, email, company: 'Partner' });
    await em.flush();
    return contact;
  }
  const convertButton = (id: string) => buttonMessage('contact_convert', id, 'Convert to user');

  it('converts a contact into a client straight away, keeps the contact linked and sends the invitation', async () => {
    const contact = await contactNamed('Cleo Client', 'cleo@partner.test');
    await t.slack.clickButton(convertButton(contact.id), 'Convert to user', { user: 'UMEMBER' });
    const view = t.standin.lastOpenedView();
    expect(view.callback_id).toBe('contact_convert_modal');
    const res = await t.slack.submitView(view, { role: 'client' }, { user: 'UMEMBER' });
    expect(res.status).toBe(200);
    const user = await t.em().findOneOrFail(User, { email: 'cleo@partner.test' });
    expect(user).toMatchObject({ role: 'client', status: 'invited', firstName: 'Cleo', lastName: 'Client' });
    expect((await t.em().findOneOrFail(Contact, contact.id)).user?.id).toBe(user.id);
    const mail = await t.smtp.waitForMail((m) => m.toText === 'cleo@partner.test');
    expect(links(mail).some((l) => l.includes('/invitations/'))).toBe(true);
    expect(await t.em().count(AuditEvent, { action: 'contact.converted', subjectId: contact.id })).toBe(1);
  });

  it("makes a requester's paid conversion wait for an admin, and the approval completes it", async () => {
    const contact = await contactNamed('Paul Paid', 'paul@partner.test');
    await t.slack.clickButton(convertButton(contact.id), 'Convert to user', { user: 'UMEMBER' });
    await t.slack.submitView(t.standin.lastOpenedView(), { role: 'employee' }, { user: 'UMEMBER' });
    const told = await eventually(() =>
      t.standin.messages.find(
        (m) => m.channel === 'DUMEMBER' && String(m.text).includes('paul@partner.test'),
      ),
    );
    expect(told.text).toContain('an admin has been asked to approve it');
    expect(await t.em().findOne(User, { email: 'paul@partner.test' })).toBeNull();
    await t.slack.clickButton(convertButton(contact.id), 'Convert to user', { user: 'UMANAGER' });
    const again = await t.slack.submitView(
      t.standin.lastOpenedView(),
      { role: 'contractor' },
      { user: 'UMANAGER' },
    );
    expect(again.json?.errors).toEqual({
      role: 'A seat request for paul@partner.test is already waiting for an admin.',
    });
    const request = await t.em().findOneOrFail(SeatRequest, { email: 'paul@partner.test' });
    expect(request.kind).toBe('convert');
    const decision = await t.roster.deps.seats.decide(t.em(), await t.account(), {
      requestId: request.id,
      actor: { slackUserId: 'UADMIN', isAdmin: true, surface: 'slack' },
      decision: 'approve',
    });
    expect(decision.outcome).toBe('approved');
    const user = await t.em().findOneOrFail(User, { email: 'paul@partner.test' });
    expect(user).toMatchObject({ role: 'employee', status: 'invited' });
    expect((await t.em().findOneOrFail(Contact, contact.id)).user?.id).toBe(user.id);
    expect(decision.outcome === 'approved' && decision.detail).toBe(
      'Paul Paid is now a user and the invitation is on its way to paul@partner.test.',
    );
    expect(
      await t
        .em()
        .count(AuditEvent, { action: 'contact.converted', subjectId: contact.id, actor: 'UMEMBER' }),
    ).toBe(1);
    const outcome = await t.standin.waitForCall(
      'chat.postMessage',
      (c) => c.args.channel === 'UMEMBER' && String(c.args.text).includes('approved your request'),
    );
    expect(outcome.args.text).toContain(
      'for paul@partner.test as Employee (paid seat). Paul Paid is now a user and the invitation is on its way',
    );
  });

  it('closes, adding no seat, a conversion request for a contact an admin has since converted', async () => {
    const contact = await contactNamed('Olga Overtaken', 'olga@partner.test');
    await t.slack.clickButton(convertButton(contact.id), 'Convert to user', { user: 'UMEMBER' });
    await t.slack.submitView(t.standin.lastOpenedView(), { role: 'employee' }, { user: 'UMEMBER' });
    const request = await eventually(() =>
      t.em().findOne(SeatRequest, { email: 'olga@partner.test', status: 'pending' }),
    );
    await t.slack.clickButton(convertButton(contact.id), 'Convert to user', { user: 'UADMIN' });
    await t.slack.submitView(t.standin.lastOpenedView(), { role: 'employee' }, { user: 'UADMIN' });
    await eventually(() => t.em().findOne(User, { email: 'olga@partner.test' }));
    const account = await t.account();
    const { used } = await t.roster.deps.seats.usage(t.em(), account);
    await t.setSeatLimit(used);
    try {
      const decision = await t.roster.deps.seats.decide(t.em(), account, {
        requestId: request.id,
        actor: { slackUserId: 'UADMIN', isAdmin: true, surface: 'slack' },
        decision: 'approve_add_seat',
      });
      expect(decision.outcome).toBe('refused');
      expect(decision.outcome === 'refused' && decision.reason).toContain('was already converted');
      expect((await t.roster.deps.seats.usage(t.em(), account)).limit).toBe(used);
    } finally {
      await t.setSeatLimit(10);
    }
  });

  /** A member's paid conversion of a new contact, waiting for an admin. */
  async function conversionRequested(name: string, email: string) {
    const contact = await contactNamed(name, email);
    await t.slack.clickButton(convertButton(contact.id), 'Convert to user', { user: 'UMEMBER' });
    await t.slack.submitView(t.standin.lastOpenedView(), { role: 'employee' }, { user: 'UMEMBER' });
    const request = await eventually(() => t.em().findOne(SeatRequest, { email, status: 'pending' }));
    return { contact, request };
  }
  const approve = async (requestId: string, decision: 'approve' | 'approve_add_seat' = 'approve') =>
    t.roster.deps.seats.decide(t.em(), await t.account(), {
      requestId,
      actor: { slackUserId: 'UADMIN', isAdmin: true, surface: 'slack' },
      decision,
    });

  it("closes a conversion request whose contact's email was changed since: nobody gets a seat at the new address", async () => {
    const { contact, request } = await conversionRequested('Paula Swap', 'paula@partner.test');
    // The member who asked changes the contact's address with the ordinary Edit form.
    await t.slack.clickButton(buttonMessage('contact_edit', contact.id, 'Edit'), 'Edit', { user: 'UMEMBER' });
    const edit = await t.slack.submitView(
      t.standin.lastOpenedView(),
      { email: 'mallory@elsewhere.test' },
      { user: 'UMEMBER' },
    );
    expect(edit.json?.errors).toBeUndefined();
    await eventually(
      async () => (await t.em().findOneOrFail(Contact, contact.id)).email === 'mallory@elsewhere.test',
    );
    const decision = await approve(request.id);
    expect(decision.outcome).toBe('refused');
    expect(decision.outcome === 'refused' && decision.reason).toContain(
      "Paula Swap's email was changed to mallory@elsewhere.test after this request for paula@partner.test was filed",
    );
    expect(await t.em().findOne(User, { email: 'mallory@elsewhere.test' })).toBeNull();
    expect((await t.em().findOneOrFail(SeatRequest, request.id)).status).toBe('rejected');
  });

  it('closes, saying why, a conversion request whose address the allowed email domains left out since', async () => {
    const { request } = await conversionRequested('Dora Domain', 'dora@partner.test');
    const domains = (list: string[]) =>
      query(t.em(), sql`update account set allowed_email_domains = ${list} where team_id = 'T0001'`);
    await domains(['acme.test']);
    try {
      const decision = await approve(request.id);
      expect(decision.outcome).toBe('refused');
      expect(decision.outcome === 'refused' && decision.reason).toContain(
        'dora@partner.test is not at an allowed domain',
      );
      expect((await t.em().findOneOrFail(SeatRequest, request.id)).status).toBe('rejected');
      expect(await t.em().findOne(User, { email: 'dora@partner.test' })).toBeNull();
    } finally {
      await domains([]);
    }
  });

  it('adds no seat when the address becomes a user while the approval waits for the seats', async () => {
    const { contact, request } = await conversionRequested('Rita Race', 'rita@partner.test');
    const account = await t.account();
    const { used } = await t.roster.deps.seats.usage(t.em(), account);
    await t.setSeatLimit(used);
    // Someone holds the account's seats a moment, so the approval waits after its first checks.
    const holder = new pg.Client({ connectionString: t.db.url });
    await holder.connect();
    try {
      await holder.query('begin');
      await holder.query('select id from account where id = $1 for no key update', [account.id]);
      const approving = approve(request.id, 'approve_add_seat');
      await eventually(async () => {
        const { rows } = await holder.query(
          `select count(*)::int as n from pg_stat_activity where datname = current_database() and wait_event_type = 'Lock'`,
        );
        return rows[0].n >= 1;
      });
      // Meanwhile the address becomes a user (a client, taking no seat) and the contact is linked to them.
      const em = t.em();
      const user = em.create(User, { account, email: 'rita@partner.test', role: 'client', status: 'active' });
      await em.flush();
      await holder.query('commit');
      const decision = await approving;
      expect(decision.outcome).toBe('refused');
      expect((await t.roster.deps.seats.usage(t.em(), account)).limit).toBe(used);
      expect(await t.em().count(User, { email: 'rita@partner.test' })).toBe(1);
      expect((await t.em().findOneOrFail(User, user.id)).role).toBe('client');
      expect((await t.em().findOneOrFail(Contact, contact.id)).user).toBeFalsy();
    } finally {
      await holder.end();
      await t.setSeatLimit(10);
    }
  });

  it('says a contact was already converted, and names the user', async () => {
    const contact = await t.em().findOneOrFail(Contact, { email: 'cleo@partner.test' });
    await t.slack.clickButton(convertButton(contact.id), 'Convert to user', { user: 'UMEMBER' });
    const reply = await t.standin.waitForResponse((r) => String(r.body.text).includes('already converted'));
    expect(reply.body.text).toBe(
      'Cleo Client was already converted: they are the user cleo@partner.test (invited).',
    );
    expect(await t.em().count(User, { email: 'cleo@partner.test' })).toBe(1);
  });

  it('asks for an email when converting a contact without one, and saves it on the contact', async () => {
    const contact = await contactNamed('No Mail', null);
    await t.slack.clickButton(convertButton(contact.id), 'Convert to user', { user: 'UMEMBER' });
    const view = t.standin.lastOpenedView();
    expect(view.blocks.map((b: any) => b.block_id)).toContain('email');
    const blank = await t.slack.submitView(view, { role: 'client' }, { user: 'UMEMBER' });
    expect(blank.json?.errors).toEqual({
      email: 'No Mail has no email address yet: enter the one the invitation should go to.',
    });
    const bad = await t.slack.submitView(view, { role: 'client', email: 'nomail' }, { user: 'UMEMBER' });
    expect(bad.json?.errors).toEqual({ email: 'Enter a valid email address, or leave it empty.' });
    const taken = await t.slack.submitView(
      view,
      { role: 'client', email: 'ana@supplier.test' },
      { user: 'UMEMBER' },
    );
    expect(taken.json?.errors).toEqual({
      email: 'ana@supplier.test is already a contact: Ana Lee at Supplier Ltd.',
    });
    expect(await t.em().count(User, { email: 'nomail' })).toBe(0);
    // Slack asks Roster to slow down as the confirmation goes out: it comes a moment later, not never.
    t.standin.failWithStatus('chat.postMessage', 429);
    const ok = await t.slack.submitView(
      view,
      { role: 'client', email: ' nomail@partner.test ', send_now: false },
      { user: 'UMEMBER' },
    );
    expect(ok.json).toBeUndefined();
    const user = await t.em().findOneOrFail(User, { email: 'nomail@partner.test' });
    expect(user).toMatchObject({ role: 'client', status: 'not_invited', firstName: 'No', lastName: 'Mail' });
    expect(await t.em().findOneOrFail(Contact, contact.id)).toMatchObject({
      email: 'nomail@partner.test',
      user: expect.objectContaining({ id: user.id }),
    });
    const told = await eventually(() =>
      t.standin.messages.find(
        (m) => m.channel === 'DUMEMBER' && String(m.text).includes('nomail@partner.test is now a user'),
      ),
    );
    expect(told.text).toContain('not invited yet');
    expect(await t.em().count(AuditEvent, { action: 'contact.edited', subjectId: contact.id })).toBe(1);
  });

  it('refuses a Convert clicked twice quickly: one user, and the second submission is told why', async () => {
    const contact = await contactNamed('Dot Double', 'dot@partner.test');
    await t.slack.clickButton(convertButton(contact.id), 'Convert to user', { user: 'UMEMBER' });
    const view = t.standin.lastOpenedView();
    const [first, second] = await Promise.all([
      t.slack.submitView(view, { role: 'client' }, { user: 'UMEMBER' }),
      t.slack.submitView(view, { role: 'client' }, { user: 'UMEMBER' }),
    ]);
    expect(await t.em().count(User, { email: 'dot@partner.test' })).toBe(1);
    expect(await t.em().count(AuditEvent, { action: 'contact.converted', subjectId: contact.id })).toBe(1);
    // Either the second saw the first's user before closing the form, or it lost the race under the lock.
    const refused = [first, second].find((r) => r.json?.errors);
    if (refused) {
      expect(refused.json.errors.role).toContain('Dot Double was already converted');
    } else {
      await t.standin.waitForCall('chat.postMessage', (c) =>
        String(c.args.text).includes('Dot Double was already converted'),
      );
    }
  });

  it('tells an admin when no paid seat is free, before closing the form', async () => {
    const contact = await contactNamed('Fran Full', 'fran@partner.test');
    const account = await t.account();
    await t.setSeatLimit(await t.roster.deps.seats.usage(t.em(), account).then((u) => u.used));
    try {
      await t.slack.clickButton(convertButton(contact.id), 'Convert to user', { user: 'UADMIN' });
      const res = await t.slack.submitView(
        t.standin.lastOpenedView(),
        { role: 'contractor' },
        { user: 'UADMIN' },
      );
      expect(res.json?.errors?.role).toMatch(/^No paid seat is free \(\d+ of \d+ used\)\. Raise the limit/);
      expect(await t.em().findOne(User, { email: 'fran@partner.test' })).toBeNull();
      expect(await t.em().count(SeatRequest, { email: 'fran@partner.test' })).toBe(0);
    } finally {
      await t.setSeatLimit(10);
    }
  });

  it('edits a contact from its Edit button, with the same checks', async () => {
    const contact = await t.em().findOneOrFail(Contact, { email: 'ana@supplier.test' });
    const body = await find('UMEMBER', 'ana l');
    await t.slack.clickButton(
      { ...body, channel: 'C0GENERAL', ts: '1' },
      { actionId: 'contact_edit', value: contact.id },
      { user: 'UMEMBER' },
    );
    const view = t.standin.lastOpenedView();
    expect(JSON.parse(view.private_metadata).id).toBe(contact.id);
    const clash = await t.slack.submitView(view, { email: 'cleo@partner.test' }, { user: 'UMEMBER' });
    expect(clash.json?.errors?.email).toBe('cleo@partner.test is already a user (Cleo Client, invited).');
    const ok = await t.slack.submitView(
      view,
      { title: 'Sales director', company: 'Supplier Group' },
      { user: 'UMEMBER' },
    );
    expect(ok.json).toBeUndefined();
    expect(await t.em().findOneOrFail(Contact, contact.id)).toMatchObject({
      name: 'Ana Lee',
      email: 'ana@supplier.test',
      title: 'Sales director',
      company: 'Supplier Group',
    });
    expect(await t.em().count(AuditEvent, { action: 'contact.edited', subjectId: contact.id })).toBe(1);
  });

  it('edits a contact a CSV import wrote with long fields, keeping notes too long for the form', async () => {
    const e = t.em();
    const name = `Long ${'N'.repeat(250)}`;
    const notes = `${'Notes from an older import. '.repeat(143)}end`;
    expect(notes.length).toBeGreaterThan(3000);
    const long = e.create(Contact, { account: await t.account(), name, title: 'T'.repeat(255), notes });
    const mid = e.create(Contact, { account: await t.account(), name: 'Mid Notes', notes: 'm'.repeat(2500) });
    await e.flush();
    const saves = (who: string) =>
      t.standin.messages.filter((m) => m.channel === 'DUMEMBER' && textOf(m).includes(`contact *${who}*`));

    await t.slack.clickButton(buttonMessage('contact_edit', long.id, 'Edit'), 'Edit', { user: 'UMEMBER' });
    const view = t.standin.lastOpenedView();
    const input = (id: string) => view.blocks.find((b: any) => b.block_id === id);
    expect(input('name').element.initial_value).toBe(name);
    expect(input('title').element.initial_value).toBe('T'.repeat(255));
    expect(input('notes').element.initial_value).toBeUndefined();
    expect(textOf(input('notes').hint)).toContain(`holds ${notes.length.toLocaleString('en-US')} characters`);
    const ok = await t.slack.submitView(view, { phone: '+1 555 0199' }, { user: 'UMEMBER' });
    expect(ok.json).toBeUndefined();
    expect(textOf(await eventually(() => saves(name)[0]))).toContain('(phone)');
    expect(await t.em().findOneOrFail(Contact, long.id)).toMatchObject({
      name,
      title: 'T'.repeat(255),
      notes,
      phone: '+1 555 0199',
    });

    await t.slack.clickButton(buttonMessage('contact_edit', mid.id, 'Edit'), 'Edit', { user: 'UMEMBER' });
    const midView = t.standin.lastOpenedView();
    expect(midView.blocks.find((b: any) => b.block_id === 'notes').element.initial_value).toBe(
      'm'.repeat(2500),
    );
    const saved = await t.slack.submitView(midView, { company: 'Mid Co' }, { user: 'UMEMBER' });
    expect(saved.json).toBeUndefined();
    expect(await t.em().findOneOrFail(Contact, mid.id)).toMatchObject({
      notes: 'm'.repeat(2500),
      company: 'Mid Co',
    });

    // Typing in the notes replaces the long ones.
    await t.slack.clickButton(buttonMessage('contact_edit', long.id, 'Edit'), 'Edit', { user: 'UMEMBER' });
    await t.slack.submitView(t.standin.lastOpenedView(), { notes: 'Short' }, { user: 'UMEMBER' });
    await eventually(() => saves(name)[1]);
    expect((await t.em().findOneOrFail(Contact, long.id)).notes).toBe('Short');
  });

  it("lets only an admin edit a converted contact, whose details are its user's, even by a forged form", async () => {
    const contact = await t.em().findOneOrFail(Contact, { email: 'cleo@partner.test' });
    const opened = t.standin.callsTo('views.open').length;
    await t.slack.clickButton(buttonMessage('contact_edit', contact.id, 'Edit'), 'Edit', { user: 'UMEMBER' });
    await t.standin.waitForResponse((r) =>
      String(r.body.text).includes('Cleo Client is a user now, so only an admin can change their details'),
    );
    expect(t.standin.callsTo('views.open')).toHaveLength(opened);
    // The form an admin would get, submitted by the member with his own signature.
    const res = await t.slack.viewSubmission({
      user: 'UMEMBER',
      view: {
        callback_id: 'contact_modal',
        private_metadata: contact.id,
        state: {
          values: {
            name: { name: { type: 'plain_text_input', value: 'Cleo Client' } },
            email: { email: { type: 'plain_text_input', value: 'cleo@partner.test' } },
            company: { company: { type: 'plain_text_input', value: 'Rival Co' } },
          },
        },
      },
    });
    expect(res.status).toBe(200);
    expect(res.json?.errors?.name).toContain('only an admin can change their details');
    expect((await t.em().findOneOrFail(Contact, contact.id)).company).toBe('Partner');
  });

  it('edits a converted contact but keeps the email its user logs in with', async () => {
    const contact = await t.em().findOneOrFail(Contact, { email: 'cleo@partner.test' });
    await t.slack.clickButton(buttonMessage('contact_edit', contact.id, 'Edit'), 'Edit', { user: 'UADMIN' });
    const view = t.standin.lastOpenedView();
    const moved = await t.slack.submitView(view, { email: 'cleo@elsewhere.test' }, { user: 'UADMIN' });
    expect(moved.json?.errors).toEqual({
      email: 'Cleo Client was converted to the user cleo@partner.test, so the email stays cleo@partner.test.',
    });
    const ok = await t.slack.submitView(view, { title: 'Buyer' }, { user: 'UADMIN' });
    expect(ok.json).toBeUndefined();
    expect(await t.em().findOneOrFail(Contact, contact.id)).toMatchObject({
      title: 'Buyer',
      email: 'cleo@partner.test',
    });
    await t.standin.waitForCall('chat.postMessage', (c) =>
      String(c.args.text).includes('Saved your changes to the contact *Cleo Client* (title)'),
    );
    const audits = await t.em().find(AuditEvent, { action: 'contact.edited', subjectId: contact.id });
    expect(audits.map((a) => a.data)).toEqual([{ changes: { title: { from: null, to: 'Buyer' } } }]);
    await t.slack.submitView(view, { title: 'Buyer' }, { user: 'UADMIN' });
    await t.standin.waitForCall('chat.postMessage', (c) =>
      String(c.args.text).includes('Nothing changed on the contact *Cleo Client*'),
    );
    expect(await t.em().count(AuditEvent, { action: 'contact.edited', subjectId: contact.id })).toBe(1);
  });

  it('finds a contact by the start of the surname, and shows which user it became', async () => {
    const body = await find('UMEMBER', 'CLIENT');
    expect(textOf(body)).toContain(
      '*Cleo Client* · cleo@partner.test · Partner\nContact, converted to user cleo@partner.test, invited',
    );
    expect(findButton(body.blocks, { actionId: 'contact_edit' })).toBeDefined();
    expect(() => findButton(body.blocks, { actionId: 'contact_convert' })).toThrow();
  });
});

describe('forms left open while the contact changes', () => {
  async function contactNamed(name: string, email: string | null) {
    const em = t.em();
    const contact = em.create(Contact, { account: await t.account(), name, email, company: 'Partner' });
    await em.flush();
    return contact;
  }
  const convertButton = (id: string) => buttonMessage('contact_convert', id, 'Convert to user');
  const dmsTo = (user: string) => t.standin.messages.filter((m) => m.channel === `D${user}`);

  it('converts no one when the email changed after the Convert form showed another', async () => {
    const contact = await contactNamed('Stan Stale', 'stan@partner.test');
    await t.slack.clickButton(convertButton(contact.id), 'Convert to user', { user: 'UMEMBER' });
    const view = t.standin.lastOpenedView();
    expect(textOf(view)).toContain('stan@partner.test');
    // Someone else corrects the address while the form is open.
    const account = await t.account();
    await t.roster.deps.contacts.edit(
      t.em(),
      account,
      { slackUserId: 'UMANAGER', isAdmin: false, surface: 'slack' },
      contact.id,
      {
        name: 'Stan Stale',
        email: 'stanley@partner.test',
        phone: null,
        company: 'Partner',
        title: null,
        notes: null,
      },
    );
    const res = await t.slack.submitView(view, { role: 'client' }, { user: 'UMEMBER' });
    expect(res.json?.errors?.role).toBe(
      "Stan Stale's email is now stanley@partner.test, not the stan@partner.test this form showed. Nothing was converted: close the form and press Convert to user again.",
    );
    expect(await t.em().count(User, { email: { $in: ['stan@partner.test', 'stanley@partner.test'] } })).toBe(
      0,
    );
    expect((await t.em().findOneOrFail(Contact, contact.id)).user).toBeNull();
  });

  it('does not drop the address typed in the Convert form when the contact was given another meanwhile', async () => {
    const contact = await contactNamed('Nell Noaddress', null);
    await t.slack.clickButton(convertButton(contact.id), 'Convert to user', { user: 'UMEMBER' });
    const view = t.standin.lastOpenedView();
    const e = t.em();
    const stored = await e.findOneOrFail(Contact, contact.id);
    stored.email = 'nell.old@partner.test';
    await e.flush();
    const res = await t.slack.submitView(
      view,
      { role: 'client', email: 'nell@partner.test' },
      { user: 'UMEMBER' },
    );
    expect(res.json?.errors?.role).toBe(
      "Nell Noaddress's email is now nell.old@partner.test, not none as this form showed. Nothing was converted: close the form and press Convert to user again.",
    );
    expect(await t.em().count(User, { email: { $in: ['nell@partner.test', 'nell.old@partner.test'] } })).toBe(
      0,
    );
  });

  it('keeps what someone else changed while the Edit form was open, saving only what was typed', async () => {
    const contact = await contactNamed('Kim Kept', 'kim@partner.test');
    await t.slack.clickButton(buttonMessage('contact_edit', contact.id, 'Edit'), 'Edit', { user: 'UMEMBER' });
    const view = t.standin.lastOpenedView();
    // Someone else corrects the company and adds a phone while the form is open.
    await t.roster.deps.contacts.edit(
      t.em(),
      await t.account(),
      { slackUserId: 'UMANAGER', isAdmin: false, surface: 'slack' },
      contact.id,
      {
        name: 'Kim Kept',
        email: 'kim@partner.test',
        phone: '+1 555 0199',
        company: 'Partner GmbH',
        title: null,
        notes: null,
      },
    );
    const before = dmsTo('UMEMBER').length;
    await t.slack.submitView(view, { title: 'Buyer' }, { user: 'UMEMBER' });
    expect(await t.em().findOneOrFail(Contact, contact.id)).toMatchObject({
      title: 'Buyer',
      phone: '+1 555 0199',
      company: 'Partner GmbH',
    });
    const dm = await eventually(() =>
      dmsTo('UMEMBER')
        .slice(before)
        .find((m) => String(m.text).includes('Kim Kept')),
    );
    expect(dm.text).toContain('Saved your changes to the contact *Kim Kept* (title).');
  });

  it('refuses a member whose Edit is saved while an admin is converting the contact, once the conversion is made', async () => {
    const contact = await contactNamed('Rae Race', 'rae@partner.test');
    await t.slack.clickButton(buttonMessage('contact_edit', contact.id, 'Edit'), 'Edit', { user: 'UMEMBER' });
    const view = t.standin.lastOpenedView();
    const before = dmsTo('UMEMBER').length;
    let submitted: Promise<unknown> | undefined;
    // A conversion holding the contact's row, as convert does, while the member's form is saved.
    await t.em().transactional(async (tx) => {
      await query(tx, sql`select id from contact where id = ${contact.id} for update`);
      const user = tx.create(User, {
        account: await t.account(),
        email: 'rae@partner.test',
        role: 'client',
        status: 'not_invited',
        addedBy: 'UADMIN',
      });
      const locked = await tx.findOneOrFail(Contact, contact.id);
      locked.user = user as never;
      await tx.flush();
      submitted = t.slack.submitView(view, { title: 'Buyer' }, { user: 'UMEMBER' });
      await new Promise((r) => setTimeout(r, 700));
    });
    await submitted;
    const dm = await eventually(() =>
      dmsTo('UMEMBER')
        .slice(before)
        .find((m) => String(m.text).includes('Rae Race')),
    );
    expect(dm.text).toContain('Rae Race is a user now, so only an admin can change their details');
    expect((await t.em().findOneOrFail(Contact, contact.id)).title).toBeNull();
  });

  it("tells a member on the Edit form, before anything else, that a contact converted meanwhile is an admin's to edit", async () => {
    const contact = await contactNamed('Vic Converted', null);
    await t.slack.clickButton(buttonMessage('contact_edit', contact.id, 'Edit'), 'Edit', { user: 'UMEMBER' });
    const view = t.standin.lastOpenedView();
    expect(view.callback_id).toBe('contact_modal');
    // An admin converts the contact, giving it an email, while the member's form is open.
    await t.slack.clickButton(convertButton(contact.id), 'Convert to user', { user: 'UADMIN' });
    await t.slack.submitView(
      t.standin.lastOpenedView(),
      { role: 'client', email: 'vic@partner.test' },
      { user: 'UADMIN' },
    );
    expect((await t.em().findOneOrFail(Contact, contact.id, { populate: ['user'] })).user).not.toBeNull();
    const before = dmsTo('UMEMBER').length;
    const res = await t.slack.submitView(view, { title: 'Buyer' }, { user: 'UMEMBER' });
    expect(res.json?.errors).toEqual({
      name: 'Vic Converted is a user now, so only an admin can change their details (from their card: `/people`). Nothing was changed.',
    });
    expect(dmsTo('UMEMBER')).toHaveLength(before);
    expect((await t.em().findOneOrFail(Contact, contact.id)).title).toBeNull();
  });
});
