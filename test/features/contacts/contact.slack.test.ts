import { AuditEvent } from '../../../src/features/audit/audit-event.entity.ts';
import { Contact } from '../../../src/features/contacts/contact.entity.ts';
import { User } from '../../../src/features/people/user.entity.ts';
import { SeatRequest } from '../../../src/features/seats/seat-request.entity.ts';
import { eventually, startTestApp, type TestApp } from '../../support/app.ts';
import { links } from '../../support/smtp-sink.ts';
import { findButton, textOf } from '../../support/views.ts';

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

  it('saves a message author as a contact, prefilled from their Slack profile', async () => {
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
    await t.slack.submitView(view, {}, { user: 'UADMIN' });
    expect(await t.em().findOne(Contact, { email: 'max@acme.test' })).toMatchObject({
      name: 'Max Member',
      phone: '+1 555 0100',
    });
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
      errors: { email: 'TAKEN@acme.test is already a user: Tess Taken, already active.' },
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
    });
    em.create(User, {
      account,
      email: 'nia@acme.test',
      firstName: 'Nia',
      lastName: 'Notyet',
      role: 'client',
      status: 'not_invited',
    });
    await em.flush();
  });

  it('says when nothing matches and offers to add a contact', async () => {
    const body = await find('UMEMBER', 'qwerty');
    expect(body.response_type).toBe('ephemeral');
    expect(textOf(body)).toContain('No contact or user matches “qwerty”.');
    expect(findButton(body.blocks, { actionId: 'contact_add_open' }).action.value).toBe('qwerty');
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

  it('finds users with the invitation button that fits their status', async () => {
    const invited = await find('UMEMBER', 'ina');
    expect(textOf(invited)).toContain('User, Employee (paid seat), invited');
    expect(findButton(invited.blocks, { actionId: 'invite_resend' })).toBeDefined();
    const notYet = await find('UMEMBER', 'NOTYET');
    expect(findButton(notYet.blocks, { actionId: 'invite_send' })).toBeDefined();
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
  const convertButton = (id: string) => ({
    channel: 'C0GENERAL',
    ts: '1',
    blocks: [
      {
        type: 'actions',
        block_id: `contact:${id}`,
        elements: [
          {
            type: 'button',
            action_id: 'contact_convert',
            value: id,
            text: { type: 'plain_text', text: 'Convert to user' },
          },
        ],
      },
    ],
  });

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
  });

  it('says a contact was already converted, and names the user', async () => {
    const contact = await t.em().findOneOrFail(Contact, { email: 'cleo@partner.test' });
    await t.slack.clickButton(convertButton(contact.id), 'Convert to user', { user: 'UMEMBER' });
    const reply = await t.standin.waitForResponse((r) => String(r.body.text).includes('already converted'));
    expect(reply.body.text).toBe(
      'Cleo Client was already converted: they are user cleo@partner.test (invited).',
    );
    expect(await t.em().count(User, { email: 'cleo@partner.test' })).toBe(1);
  });

  it('asks for an email before converting a contact without one', async () => {
    const contact = await contactNamed('No Mail', null);
    await t.slack.clickButton(convertButton(contact.id), 'Convert to user', { user: 'UMEMBER' });
    await t.standin.waitForResponse((r) =>
      String(r.body.text).includes('No Mail has no email address. Use Edit to add one'),
    );
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
    expect(view.private_metadata).toBe(contact.id);
    const clash = await t.slack.submitView(view, { email: 'cleo@partner.test' }, { user: 'UMEMBER' });
    expect(clash.json?.errors?.email).toBe('cleo@partner.test is already a user: Cleo Client, invited.');
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
});
