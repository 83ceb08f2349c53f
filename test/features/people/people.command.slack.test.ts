import { User } from '../../../src/features/people/user.entity.ts';
import { DEFAULT_MEMBERS, eventually, startTestApp, type TestApp } from '../../support/app.ts';
import { textOf } from '../../support/views.ts';

let t: TestApp;

beforeAll(async () => {
  t = await startTestApp({
    seatLimit: 10,
    members: [
      ...DEFAULT_MEMBERS,
      { id: 'UHELPER', name: 'helper', realName: 'Helper App', isBot: true },
      { id: 'ULEFT', name: 'lena', realName: 'Lena Left', email: 'lena@acme.test', deleted: true },
    ],
  });
});
afterAll(() => t.stop());

/** `/people TEXT` as `user`, typed as a person types it (Slack escapes it): the reply. */
async function people(user: string, text: string, verbatim = false) {
  const before = t.standin.responses.length;
  await t.slack.command('/people', text, { user, verbatim });
  return eventually(() => t.standin.responses.slice(before).at(-1));
}

describe('/people with what people really type', () => {
  it('finds someone whose address holds an `&`, which Slack sends as `&amp;`', async () => {
    const em = t.em();
    em.create(User, {
      account: await t.account(),
      email: 'r&d@acme.test',
      firstName: 'Rae',
      lastName: 'Andd',
      role: 'employee',
      status: 'active',
      addedBy: 'UADMIN',
    });
    await em.flush();
    const reply = await people('UADMIN', 'r&d@acme.test');
    expect(textOf(reply.body)).toContain('Rae Andd');
    expect(textOf(reply.body)).toContain('*Email:* r&amp;d@acme.test');
  });

  it('names an unknown address with an `&` once escaped, not twice', async () => {
    const reply = await people('UADMIN', 'q&a@acme.test');
    expect(textOf(reply.body)).toContain('q&amp;a@acme.test is not a user in Roster.');
    expect(textOf(reply.body)).not.toContain('&amp;amp;');
  });

  it('points a name to the search, which finds people by name', async () => {
    const reply = await people('UMEMBER', 'Ana & Bo');
    const text = textOf(reply.body);
    expect(text).toContain('I could not read `Ana &amp; Bo` as an email or a mention.');
    expect(text).toContain('To find someone by name, type `/contact find Ana &amp; Bo`.');
  });
});

describe('/people @name that Slack did not make a mention', () => {
  it('says to pick the person or type their email, and gives the search without the @', async () => {
    // Someone who left Slack is no longer offered as a mention: Slack sends what was typed.
    const reply = await people('UADMIN', '@gone.person');
    const text = textOf(reply.body);
    expect(text).toContain(
      'Slack did not send `@gone.person` as a mention: pick the person from the list as you type, or type their email',
    );
    expect(text).toContain('To find someone by name, type `/contact find gone.person`.');
  });
});

describe('the card on Enterprise Grid', () => {
  it('names who added someone, and who changed them, by mention when their Slack id starts with W', async () => {
    const em = t.em();
    const user = em.create(User, {
      account: await t.account(),
      email: 'grid@acme.test',
      role: 'client',
      status: 'active',
      addedBy: 'W0GRIDADMIN',
    });
    await em.flush();
    await t.roster.deps.person.editDetails(
      em,
      await t.account(),
      { slackUserId: 'W0GRIDADMIN', isAdmin: true, surface: 'slack' },
      user.id,
      { title: 'Engineer' },
    );
    const text = textOf((await people('UADMIN', 'grid@acme.test')).body);
    expect(text).toContain('*Added by:* <@W0GRIDADMIN>');
    expect(text).toMatch(/user edited · <@W0GRIDADMIN>/);
  });
});

describe('/people with something that is not one person', () => {
  const reply = async (text: string, verbatim = true) =>
    textOf((await people('UMEMBER', text, verbatim)).body);

  it('says a user group, a channel or @here is not a person, without a search for its markup', async () => {
    for (const [typed, said] of [
      ['<!subteam^S0TEAM|@design-team>', '`@design-team` is a user group, not a person.'],
      ['<!subteam^S0TEAM>', 'That is a user group, not a person.'],
      ['<#C0GENERAL|general>', '`#general` is a channel, not a person.'],
      ['<!here>', '`@here` is not a person.'],
    ] as const) {
      const text = await reply(typed);
      expect(text).toContain(said);
      expect(text).toContain(
        '`/people` shows one person: type `/people @name` or `/people name@example.com`.',
      );
      expect(text).not.toContain('/contact find');
      expect(text).not.toContain('&lt;');
    }
  });

  it('asks for one person at a time when two are mentioned', async () => {
    const text = await reply('<@UADMIN|adam> <@UMEMBER|max>');
    expect(text).toContain(
      'You mentioned 2 people: `/people` shows one at a time, as in `/people <@UADMIN>`.',
    );
    expect(text).not.toContain('/contact find');
  });

  it('says an app is not a person rather than offering to invite it', async () => {
    const text = await reply('@helper', false);
    expect(text).toContain('<@UHELPER> is an app, not a person: Roster has no card for it.');
    expect(text).not.toContain('/invite');
  });

  it('says someone who left Slack and is not in Roster left, rather than offering to invite them', async () => {
    const text = await reply('<@ULEFT|lena>');
    expect(text).toContain('<@ULEFT> has left this Slack workspace and is not a user in Roster.');
    expect(text).not.toContain('/invite');
  });

  it('offers to invite a member not in Roster by the address Slack has for them', async () => {
    const text = await reply('<@UMANAGER|mia>');
    expect(text).toContain('<@UMANAGER> is not a user in Roster. Invite them with `/invite mia@acme.test`');
  });

  it('reads an address typed between angle brackets, as copied from an email', async () => {
    const em = t.em();
    em.create(User, {
      account: await t.account(),
      email: 'bracket@acme.test',
      firstName: 'Bea',
      lastName: 'Bracket',
      role: 'client',
      status: 'active',
      addedBy: 'UADMIN',
    });
    await em.flush();
    expect(await reply(' <BRACKET@acme.test> ', false)).toContain('*Email:* bracket@acme.test');
  });
});

describe('/people @someone when Slack cannot say who they are', () => {
  it('says so and asks for their email, rather than that they are not in Roster', async () => {
    await eventually(
      async () => (await t.roster.deps.directory.syncedAt(t.em(), await t.account())) !== null,
    );
    // Joined Slack after the last directory sync: Roster asks Slack who they are, and Slack fails.
    t.standin.addMember({ id: 'UJOINED', name: 'jo', realName: 'Jo Joined', email: 'jo@acme.test' });
    const em = t.em();
    em.create(User, {
      account: await t.account(),
      email: 'jo@acme.test',
      firstName: 'Jo',
      role: 'client',
      status: 'invited',
      addedBy: 'UADMIN',
    });
    await em.flush();
    t.standin.failNext('users.info', 'internal_error');
    const text = textOf((await people('UADMIN', '<@UJOINED|jo>', true)).body);
    expect(text).toContain(
      'Slack could not say who <@UJOINED> is just now, so Roster cannot tell whether they are in Roster. Try again in a moment, or type their email: `/people name@example.com`.',
    );
    expect(text).not.toContain('is not a user in Roster');
    // Once Slack answers, the card is found by the address Slack gives.
    expect(textOf((await people('UADMIN', '<@UJOINED|jo>', true)).body)).toContain('*Email:* jo@acme.test');
  });
});
