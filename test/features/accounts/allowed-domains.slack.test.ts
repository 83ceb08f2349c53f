import { Account } from '../../../src/features/accounts/account.entity.ts';
import { Contact } from '../../../src/features/contacts/contact.entity.ts';
import { CsvImport } from '../../../src/features/csv-import/csv-import.entity.ts';
import { Invitation } from '../../../src/features/invites/invitation.entity.ts';
import { type IUser, type Role, User, type UserStatus } from '../../../src/features/people/user.entity.ts';
import { SeatRequest } from '../../../src/features/seats/seat-request.entity.ts';
import { eventually, jobsDrained, startTestApp, TEAM_ID, type TestApp } from '../../support/app.ts';
import { buttonMessage, textOf } from '../../support/views.ts';

// The account's "Allowed email domains" hold on every path that invites someone or gives them a login
// email, not only in /invite; admins are bound too (they change the setting instead).

let t: TestApp;
const REFUSAL = 'invitations and logins go only to @acme.test, @acme.co.uk addresses';

beforeAll(async () => {
  t = await startTestApp({ seatLimit: 10 });
  await t
    .em()
    .nativeUpdate(Account, { teamId: TEAM_ID }, { allowedEmailDomains: ['acme.test', 'acme.co.uk'] });
});
afterAll(() => t.stop());

let n = 0;
async function person(
  status: UserStatus,
  email: string,
  role: Role = 'employee',
  extra: Partial<IUser> = {},
) {
  const em = t.em();
  const user = em.create(User, {
    account: await t.account(),
    email,
    firstName: 'Gina',
    lastName: `Outside${++n}`,
    role,
    status,
    addedBy: 'UMEMBER',
    ...extra,
  });
  await em.flush();
  return user;
}

async function contact(name: string, email: string) {
  const em = t.em();
  const c = em.create(Contact, { account: await t.account(), name, email, company: 'Gmail' });
  await em.flush();
  return c;
}

const mailsTo = (address: string) => t.smtp.messages.filter((m) => m.toText === address);

describe('converting a contact', () => {
  it("refuses a requester's conversion with send now on the form: no user, no invitation, no email", async () => {
    const gina = await contact('Gina Gmail', 'gina@gmail.example');
    await t.slack.clickButton(buttonMessage('contact_convert', gina.id), 'Button', { user: 'UMEMBER' });
    const res = await t.slack.submitView(t.standin.lastOpenedView(), { role: 'client' }, { user: 'UMEMBER' });
    expect(res.json.errors.role).toContain('gina@gmail.example is not at an allowed domain');
    expect(res.json.errors.role).toContain(REFUSAL);
    expect(await t.em().findOne(User, { email: 'gina@gmail.example' })).toBeNull();
    expect((await t.em().findOneOrFail(Contact, gina.id)).user).toBeNull();
    await jobsDrained(t.em());
    expect(mailsTo('gina@gmail.example')).toHaveLength(0);
  });

  it('refuses an admin too, and files no seat request for a paid role', async () => {
    const gus = await contact('Gus Gmail', 'gus@gmail.example');
    for (const user of ['UADMIN', 'UMEMBER']) {
      await t.slack.clickButton(buttonMessage('contact_convert', gus.id), 'Button', { user });
      const res = await t.slack.submitView(t.standin.lastOpenedView(), { role: 'employee' }, { user });
      expect(res.json.errors.role).toContain(REFUSAL);
    }
    expect(await t.em().findOne(User, { email: 'gus@gmail.example' })).toBeNull();
    expect(await t.em().count(SeatRequest, { email: 'gus@gmail.example' })).toBe(0);
  });

  it('refuses on the email field an address typed for a contact without one, and saves nothing', async () => {
    const em = t.em();
    const noEmail = em.create(Contact, { account: await t.account(), name: 'Nora Noemail', email: null });
    await em.flush();
    await t.slack.clickButton(buttonMessage('contact_convert', noEmail.id), 'Button', { user: 'UMEMBER' });
    const res = await t.slack.submitView(
      t.standin.lastOpenedView(),
      { role: 'client', email: 'nora@gmail.example' },
      { user: 'UMEMBER' },
    );
    expect(res.json.errors.email).toContain(REFUSAL);
    expect((await t.em().findOneOrFail(Contact, noEmail.id)).email).toBeNull();
  });

  it('converts a contact at an allowed domain, any case', async () => {
    const ok = await contact('Olga Okay', 'olga@ACME.co.uk');
    await t.slack.clickButton(buttonMessage('contact_convert', ok.id), 'Button', { user: 'UMEMBER' });
    const res = await t.slack.submitView(t.standin.lastOpenedView(), { role: 'client' }, { user: 'UMEMBER' });
    expect(res.json?.errors).toBeUndefined();
    expect(await t.em().findOneOrFail(User, { email: 'olga@ACME.co.uk' })).toMatchObject({
      status: 'invited',
    });
  });
});

describe('sending an invitation to someone already in Roster', () => {
  it('refuses Send invitation and Resend for an address outside the domains, to an admin too', async () => {
    const added = await person('not_invited', 'added@gmail.example');
    const invited = await person('invited', 'invited@gmail.example');
    for (const [user, action] of [
      [added, 'invite_send'],
      [invited, 'invite_resend'],
    ] as const) {
      for (const who of ['UMEMBER', 'UADMIN']) {
        const before = t.standin.responses.length;
        await t.slack.clickButton(buttonMessage(action, user.id), 'Button', { user: who });
        const answer = await eventually(() => t.standin.responses.slice(before).at(-1));
        expect(textOf(answer.body)).toContain(`${user.email} is not at an allowed domain`);
      }
      expect(await t.em().count(Invitation, { user: user.id })).toBe(0);
      expect((await t.em().findOneOrFail(User, user.id)).status).toBe(user.status);
    }
    await jobsDrained(t.em());
    expect(mailsTo('added@gmail.example')).toHaveLength(0);
    expect(mailsTo('invited@gmail.example')).toHaveLength(0);
  });
});

describe('the person card', () => {
  async function card(user: string, text: string) {
    const before = t.standin.responses.length;
    await t.slack.command('/people', text, { user });
    return eventually(() => t.standin.responses.slice(before).at(-1));
  }

  it('refuses to reactivate or unlock someone outside the domains, with or without an invitation', async () => {
    const gone = await person('deactivated', 'gone@gmail.example');
    const locked = await person('locked', 'locked@gmail.example');
    for (const [user, button] of [
      [gone, 'Reactivate'],
      [locked, 'Unlock'],
    ] as const) {
      for (const sendNow of [true, false]) {
        await t.slack.clickButton((await card('UADMIN', user.email)).body, button, { user: 'UADMIN' });
        const view = t.standin.lastOpenedView();
        const res = await t.slack.submitView(view, sendNow ? {} : { send_now: [] }, { user: 'UADMIN' });
        expect(Object.values(res.json.errors).join(' ')).toContain(REFUSAL);
      }
      expect((await t.em().findOneOrFail(User, user.id)).status).toBe(user.status);
      expect(await t.em().count(Invitation, { user: user.id })).toBe(0);
    }
    // A requester's ask is refused the same way: no seat request an admin could not approve.
    await t.slack.clickButton((await card('UMEMBER', gone.email)).body, 'Ask an admin to reactivate', {
      user: 'UMEMBER',
    });
    const asked = await t.slack.submitView(t.standin.lastOpenedView(), {}, { user: 'UMEMBER' });
    expect(Object.values(asked.json.errors).join(' ')).toContain(REFUSAL);
    expect(await t.em().count(SeatRequest, { email: gone.email })).toBe(0);
  });

  it('refuses to approve an unlock asked for before the domains left the person out, and closes the request', async () => {
    const locked = await person('locked', 'earlier@gmail.example');
    await t.em().nativeUpdate(Account, { teamId: TEAM_ID }, { allowedEmailDomains: [] });
    try {
      await t.slack.clickButton((await card('UMEMBER', locked.email)).body, 'Ask an admin to unlock', {
        user: 'UMEMBER',
      });
      await t.slack.submitView(t.standin.lastOpenedView(), { send_now: [] }, { user: 'UMEMBER' });
    } finally {
      await t
        .em()
        .nativeUpdate(Account, { teamId: TEAM_ID }, { allowedEmailDomains: ['acme.test', 'acme.co.uk'] });
    }
    const request = await t.em().findOneOrFail(SeatRequest, { email: locked.email, status: 'pending' });
    const decided = await t.roster.deps.seats.decide(t.em(), await t.account(), {
      requestId: request.id,
      actor: { slackUserId: 'UADMIN', isAdmin: true, surface: 'slack' },
      decision: 'approve',
    });
    // Said why, and closed rather than left pending with buttons no admin could use.
    expect(decided).toMatchObject({ outcome: 'refused', reason: expect.stringContaining(REFUSAL) });
    expect((await t.em().findOneOrFail(SeatRequest, request.id)).status).toBe('rejected');
    expect((await t.em().findOneOrFail(User, locked.id)).status).toBe('locked');
  });

  it('refuses a login email outside the domains on the field, and takes one inside', async () => {
    const user = await person('active', 'pat@acme.test');
    await t.slack.clickButton((await card('UADMIN', user.email)).body, 'Change email', { user: 'UADMIN' });
    const view = t.standin.lastOpenedView();
    const refused = await t.slack.submitView(view, { email: 'pat@gmail.example' }, { user: 'UADMIN' });
    expect(refused.json.errors.email).toContain(`pat@gmail.example is not at an allowed domain: ${REFUSAL}`);
    expect((await t.em().findOneOrFail(User, user.id)).email).toBe('pat@acme.test');
    const ok = await t.slack.submitView(view, { email: 'pat@acme.co.uk' }, { user: 'UADMIN' });
    expect(ok.json?.errors).toBeUndefined();
    expect((await t.em().findOneOrFail(User, user.id)).email).toBe('pat@acme.co.uk');
  });
});

describe('a CSV import', () => {
  it('puts a row asking for an invitation outside the domains in error in the preview, and only that row', async () => {
    await person('locked', 'lena@gmail.example', 'client');
    const csv = [
      'type,first_name,last_name,email,role,send_invitation',
      'user,In,Side,inside@acme.test,client,yes',
      'user,Out,Side,outside@gmail.example,client,yes',
      'user,Kept,Locked,kept@gmail.example,client,no',
      'user,Lena,Locked,lena@gmail.example,client,yes',
    ].join('\n');
    const file = t.standin.addFile({ id: 'FDOMAINS1', name: 'domains.csv', content: csv });
    await t.slack.fileShare('UADMIN', file);
    const preview = await eventually(() =>
      t.standin.messages.findLast(
        (m) => m.channel === 'DUADMIN' && textOf(m).includes('Preview of domains.csv'),
      ),
    );
    const text = textOf(preview);
    expect(text).toContain('*2* in error');
    expect(text).toContain(
      'email outside@gmail.example is outside the allowed email domains, so no invitation can be sent: invitations go only to @acme.test, @acme.co.uk addresses',
    );
    expect(text).toContain('lena@gmail.example is outside the allowed email domains');
    expect(text).not.toContain('kept@gmail.example');
    await t.slack.clickButton(preview, 'Import 2 rows', { user: 'UADMIN' });
    await eventually(async () => {
      const done = await t.em().findOne(CsvImport, { fileId: 'FDOMAINS1' });
      return done?.status === 'completed' ? done : undefined;
    }, 10_000);
    expect(await t.em().findOneOrFail(User, { email: 'inside@acme.test' })).toMatchObject({
      status: 'invited',
    });
    expect(await t.em().findOneOrFail(User, { email: 'kept@gmail.example' })).toMatchObject({
      status: 'locked',
    });
    expect(await t.em().findOne(User, { email: 'outside@gmail.example' })).toBeNull();
    expect(await t.em().findOneOrFail(User, { email: 'lena@gmail.example' })).toMatchObject({
      status: 'locked',
    });
  });

  it('ends a row in error when the domains changed between the preview and Import', async () => {
    await t.em().nativeUpdate(Account, { teamId: TEAM_ID }, { allowedEmailDomains: [] });
    const file = t.standin.addFile({
      id: 'FDOMAINS3',
      name: 'changed.csv',
      content: [
        'type,first_name,last_name,email,role,send_invitation',
        'user,Ira,Inside,ira@acme.test,client,yes',
        'user,Ola,Outside,ola@gmail.example,client,yes',
      ].join('\n'),
    });
    try {
      await t.slack.fileShare('UADMIN', file);
      const preview = await eventually(() =>
        t.standin.messages.findLast(
          (m) => m.channel === 'DUADMIN' && textOf(m).includes('Preview of changed.csv'),
        ),
      );
      expect(textOf(preview)).toContain('*0* in error');
    } finally {
      await t
        .em()
        .nativeUpdate(Account, { teamId: TEAM_ID }, { allowedEmailDomains: ['acme.test', 'acme.co.uk'] });
    }
    const preview = t.standin.messages.findLast(
      (m) => m.channel === 'DUADMIN' && textOf(m).includes('Preview of changed.csv'),
    )!;
    await t.slack.clickButton(preview, 'Import 2 rows', { user: 'UADMIN' });
    const summary = await eventually(() =>
      t.standin.messages.findLast(
        (m) => m.method === 'chat.update' && String(m.text).startsWith('Imported changed.csv'),
      ),
    );
    expect(summary.text).toBe('Imported changed.csv: 1 created, 0 updated, 0 unchanged, 1 in error.');
    expect(await t.em().findOneOrFail(User, { email: 'ira@acme.test' })).toMatchObject({ status: 'invited' });
    expect(await t.em().findOne(User, { email: 'ola@gmail.example' })).toBeNull();
    const [row] = await t
      .em()
      .getConnection()
      .execute(
        `select r.error from csv_import_row r join csv_import i on i.id = r.csv_import_id
         where i.file_id = 'FDOMAINS3' and r.result = 'error'`,
      );
    expect(row?.error).toContain('email ola@gmail.example is outside the allowed email domains');
  });

  it('leaves people outside the domains locked on Unlock and invite all, invites the rest and says why', async () => {
    const file = t.standin.addFile({
      id: 'FDOMAINS2',
      name: 'locked-domains.csv',
      content: [
        'type,first_name,last_name,email,role,send_invitation',
        'user,Una,Inside,una@acme.test,client,no',
        'user,Otto,Outside,otto@gmail.example,client,no',
        'user,Ulla,Inside,ulla@acme.co.uk,employee,no',
      ].join('\n'),
    });
    await t.slack.fileShare('UADMIN', file);
    const preview = await eventually(() =>
      t.standin.messages.findLast(
        (m) => m.channel === 'DUADMIN' && textOf(m).includes('Preview of locked-domains.csv'),
      ),
    );
    await t.slack.clickButton(preview, 'Import 3 rows', { user: 'UADMIN' });
    const summary = await eventually(() =>
      t.standin.messages.findLast(
        (m) => m.method === 'chat.update' && String(m.text).startsWith('Imported locked-domains.csv'),
      ),
    );
    const now = t.standin.messages.filter((m) => m.channel === 'DUADMIN' && m.ts === summary.ts).at(-1)!;
    await t.slack.clickButton(now, 'Unlock and invite all', { user: 'UADMIN' });
    const answer = await eventually(() =>
      t.standin
        .messagesTo('DUADMIN')
        .find((m) => m.method === 'chat.postMessage' && textOf(m).includes('Unlocked and invited 2 people')),
    );
    expect(textOf(answer)).toContain('1 has an email outside the allowed email domains, so they stay locked');
    expect(textOf(answer)).not.toContain('no paid seat was free');
    const statusOf = async (email: string) => (await t.em().findOneOrFail(User, { email })).status;
    expect(await statusOf('una@acme.test')).toBe('invited');
    expect(await statusOf('ulla@acme.co.uk')).toBe('invited');
    expect(await statusOf('otto@gmail.example')).toBe('locked');
  });
});
