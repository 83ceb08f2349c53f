import { query, sql } from '../../../src/db/sql.ts';
import { User } from '../../../src/features/people/user.entity.ts';
import { SeatRequest } from '../../../src/features/seats/seat-request.entity.ts';
import { eventually, startTestApp, type TestApp } from '../../support/app.ts';
import { links } from '../../support/smtp-sink.ts';
import { textOf } from '../../support/views.ts';
import { httpFrom, openForm, postLink } from './support.ts';

let t: TestApp;

beforeAll(async () => {
  t = await startTestApp({ seatLimit: 1000 });
});
afterAll(() => t.stop());

type Guest = 'multi_channel' | 'single_channel';

let n = 0;
/** A new workspace member Roster does not know yet: a full member, or a guest of either kind. */
function member(guest?: Guest): { id: string; email: string } {
  const i = ++n;
  const id = `UGUEST${i}`;
  const email = `guest${i}@acme.test`;
  t.standin.addMember({
    id,
    name: `guest${i}`,
    realName: `Gale Guest${i}`,
    email,
    ...(guest ? { guest } : {}),
  });
  return { id, email };
}

/** Slack tells Roster, as it does, that this member joined the workspace: their whole user object. */
async function slackIntroduces(id: string) {
  await t.slack.event({ type: 'team_join', user: t.standin.userOf(id) });
}

async function joinAs(message: Record<string, any>, user: string): Promise<string> {
  const since = t.standin.responses.length;
  await t.slack.clickButton(message, 'Join', { user });
  const answers = t.standin.responses.slice(since).map((r) => textOf(r.body));
  expect(answers).toHaveLength(1);
  return answers[0]!;
}

async function seatsUsed(): Promise<number> {
  return (await t.roster.deps.seats.usage(t.em(), await t.account())).used;
}

async function mirrored(id: string) {
  const [row] = await query<{ is_restricted: boolean | null; is_ultra_restricted: boolean | null }>(
    t.em(),
    sql`select is_restricted, is_ultra_restricted from slack_member where slack_user_id = ${id}`,
  );
  return row;
}

const LABEL: Record<Guest, string> = {
  multi_channel: 'a multi-channel guest',
  single_channel: 'a single-channel guest',
};

describe('a Slack guest pressing Join', () => {
  for (const kind of ['multi_channel', 'single_channel'] as const) {
    it(`on an employee link, as ${LABEL[kind]}: a seat request an admin must approve, no seat taken, and they are told`, async () => {
      const { message, linkId } = await postLink(t);
      const guest = member(kind);
      await slackIntroduces(guest.id);
      expect(await mirrored(guest.id)).toEqual({
        is_restricted: true,
        is_ultra_restricted: kind === 'single_channel',
      });
      const used = await seatsUsed();

      expect(await joinAs(message, guest.id)).toBe(
        `:hourglass_flowing_sand: You are ${LABEL[kind]} in this Slack workspace, not a full member, so a join link does not give you a paid seat on its own: an admin of Acme has been asked to approve your place. Nothing else changed. You will get a message when they decide.`,
      );
      expect(await t.em().findOne(User, { email: guest.email })).toBeNull();
      expect(await seatsUsed()).toBe(used);
      expect(await t.em().findOneOrFail(SeatRequest, { email: guest.email })).toMatchObject({
        kind: 'join',
        status: 'pending',
        role: 'employee',
        requestedBy: guest.id,
        payload: expect.objectContaining({ joinLinkId: linkId, slackGuest: kind }),
      });
      // The admins asked are told that the person is a guest.
      const asked = await t.standin.waitForMessage(
        (m) =>
          m.method === 'chat.postMessage' &&
          textOf(m).includes('Seat request*') &&
          textOf(m).includes(guest.email),
      );
      expect(textOf(asked)).toContain(
        `:warning: *<@${guest.id}> is a Slack guest* (${LABEL[kind]}), not a full member of the workspace: approving gives them a paid seat.`,
      );

      // An admin approves: then, and only then, they are in.
      await t.slack.clickButton(asked, 'Approve', { user: 'UADMIN' });
      const user = await eventually(() => t.em().findOne(User, { email: guest.email }));
      expect(user).toMatchObject({ role: 'employee', status: 'active', slackUserId: guest.id });
    });

    it(`on a client link, as ${LABEL[kind]}: joins at once as a client, taking no seat`, async () => {
      const { message } = await postLink(t, { role: 'client' });
      const guest = member(kind);
      await slackIntroduces(guest.id);
      const used = await seatsUsed();
      expect(await joinAs(message, guest.id)).toBe(':tada: You joined Acme as a client. Welcome!');
      expect(await t.em().findOneOrFail(User, { email: guest.email })).toMatchObject({
        role: 'client',
        status: 'active',
      });
      expect(await seatsUsed()).toBe(used);
      expect(await t.em().findOne(SeatRequest, { email: guest.email })).toBeNull();
    });
  }

  it('pressed twice is one request: the second press is told it is already waiting', async () => {
    const { message } = await postLink(t);
    const guest = member('multi_channel');
    await slackIntroduces(guest.id);
    await joinAs(message, guest.id);
    expect(await joinAs(message, guest.id)).toBe(
      ":hourglass_flowing_sand: Your place in Acme is already waiting for an admin's approval. You will get a message when they decide.",
    );
    expect(await t.em().count(SeatRequest, { email: guest.email })).toBe(1);
  });

  it('a full member still joins an employee link at once', async () => {
    const { message } = await postLink(t);
    const full = member();
    await slackIntroduces(full.id);
    expect(await mirrored(full.id)).toEqual({ is_restricted: false, is_ultra_restricted: false });
    expect(await joinAs(message, full.id)).toBe(':tada: You joined Acme as an employee. Welcome!');
    expect(await t.em().findOneOrFail(User, { email: full.email })).toMatchObject({ status: 'active' });
  });

  it('a guest the mirror recorded before it kept the guest flags is asked of Slack once, and waits for an admin', async () => {
    const { message } = await postLink(t);
    const guest = member('single_channel');
    await slackIntroduces(guest.id);
    // As a row from before the upgrade: the flags not known.
    await query(
      t.em(),
      sql`update slack_member set is_restricted = null, is_ultra_restricted = null where slack_user_id = ${guest.id}`,
    );
    const asked = () =>
      t.standin.calls.filter((c) => c.method === 'users.info' && c.args.user === guest.id).length;
    const before = asked();

    expect(await joinAs(message, guest.id)).toContain(
      'You are a single-channel guest in this Slack workspace',
    );
    expect(asked()).toBe(before + 1);
    expect(await mirrored(guest.id)).toEqual({ is_restricted: true, is_ultra_restricted: true });
    expect(await t.em().findOne(User, { email: guest.email })).toBeNull();
    expect(await t.em().findOneOrFail(SeatRequest, { email: guest.email })).toMatchObject({
      status: 'pending',
    });

    // Now known: pressing again asks Slack nothing more.
    await joinAs(message, guest.id);
    expect(asked()).toBe(before + 1);
  });

  it('a member whose guest flags are unknown and about whom Slack will not answer is admitted to nothing', async () => {
    const { message } = await postLink(t);
    const guest = member('multi_channel');
    await slackIntroduces(guest.id);
    await query(
      t.em(),
      sql`update slack_member set is_restricted = null, is_ultra_restricted = null where slack_user_id = ${guest.id}`,
    );
    for (const error of ['internal_error', 'user_not_found']) {
      t.standin.failNext('users.info', error, 1, (args) => args.user === guest.id);
      const answer = await joinAs(message, guest.id);
      expect(answer).not.toContain('You joined');
      if (error === 'user_not_found')
        expect(answer).toContain('Roster could not learn from Slack whether you are a full member');
    }
    expect(await t.em().findOne(User, { email: guest.email })).toBeNull();
    expect(await t.em().findOne(SeatRequest, { email: guest.email })).toBeNull();
  });

  it('a member who became a guest in Slack (user_change) is a guest from then on', async () => {
    const { message } = await postLink(t);
    const person = member();
    await slackIntroduces(person.id);
    t.standin.addMember({ ...t.standin.members.get(person.id)!, guest: 'multi_channel' });
    await t.slack.event({ type: 'user_change', user: t.standin.userOf(person.id) });
    expect(await joinAs(message, person.id)).toContain(
      'You are a multi-channel guest in this Slack workspace',
    );
    expect(await t.em().findOne(User, { email: person.email })).toBeNull();
  });
});

describe('a Slack guest asking for a paid seat through /invite', () => {
  it('files a seat request whose message tells the admins the one asking is a guest', async () => {
    const guest = member('multi_channel');
    await slackIntroduces(guest.id);
    await t.slack.command('/invite', guest.email, { user: guest.id });
    await t.slack.submitView(t.standin.lastOpenedView(), {}, { user: guest.id });
    expect(await t.em().findOne(User, { email: guest.email })).toBeNull();
    expect(await t.em().findOneOrFail(SeatRequest, { email: guest.email })).toMatchObject({
      kind: 'invite',
      status: 'pending',
      requestedBy: guest.id,
      payload: expect.objectContaining({ requesterGuest: 'multi_channel' }),
    });
    const asked = await t.standin.waitForMessage(
      (m) =>
        m.method === 'chat.postMessage' &&
        textOf(m).includes('Seat request*') &&
        textOf(m).includes(guest.email),
      20_000,
    );
    expect(textOf(asked)).toContain(
      `:warning: *<@${guest.id}>, who asks, is a Slack guest* (a multi-channel guest), not a full member of the workspace.`,
    );
  });
});

/**
 * Joins on the web as a person does: the form filled in from one address, the emailed confirmation
 * opened and confirmed from another. Returns the confirmation page's answer, its spaces folded.
 */
async function joinOnWeb(url: string, name: string, email: string, [from, confirmFrom]: [string, string]) {
  const form = await openForm(from, url);
  expect((await form.submit(name, email)).status).toBe(200);
  const mail = await t.smtp.waitForMail((m) => m.toText === email);
  const confirm = links(mail).find((l) => l.includes('/join/confirm/'))!;
  const page = await httpFrom(confirmFrom, confirm);
  const csrf = page.body.match(/name="csrf" value="([^"]+)"/)![1]!;
  const cookie = String(page.headers['set-cookie']).split(';')[0]!;
  const pressed = await httpFrom(confirmFrom, confirm, {
    method: 'POST',
    cookie,
    body: new URLSearchParams({ csrf }).toString(),
  });
  return pressed.body.replace(/\s+/g, ' ');
}

describe('a Slack guest joining on the web page with their Slack address', () => {
  it('waits for an admin like the Join button, and the admins asked are told the address is a guest’s', async () => {
    const { url } = await postLink(t);
    const guest = member('single_channel');
    await slackIntroduces(guest.id);
    expect(await joinOnWeb(url, 'Gale Guest', guest.email, ['127.0.0.61', '127.0.0.62'])).toContain(
      'You are a single-channel guest in this Slack workspace, not a full member, so a join link does not give you a paid seat on its own',
    );
    expect(await t.em().findOne(User, { email: guest.email })).toBeNull();
    expect(await t.em().findOneOrFail(SeatRequest, { email: guest.email })).toMatchObject({
      status: 'pending',
      payload: expect.objectContaining({ slackGuest: 'single_channel' }),
    });
    const asked = await t.standin.waitForMessage(
      (m) =>
        m.method === 'chat.postMessage' &&
        textOf(m).includes('Seat request*') &&
        textOf(m).includes(guest.email),
      20_000,
    );
    expect(textOf(asked)).toContain(
      `:warning: *${guest.email} is a Slack guest* (a single-channel guest), not a full member of the workspace`,
    );
  });

  it('asks Slack about an address whose guest flags the mirror has not learnt yet, and a guest waits for an admin', async () => {
    const { url } = await postLink(t);
    const guest = member('multi_channel');
    await slackIntroduces(guest.id);
    // As the mirror held members seen before guests were recorded.
    await query(
      t.em(),
      sql`update slack_member set is_restricted = null, is_ultra_restricted = null where slack_user_id = ${guest.id}`,
    );
    const used = await seatsUsed();
    expect(await joinOnWeb(url, 'Gil Guest', guest.email, ['127.0.0.63', '127.0.0.64'])).toContain(
      'You are a multi-channel guest in this Slack workspace',
    );
    expect(await t.em().findOne(User, { email: guest.email })).toBeNull();
    expect(await seatsUsed()).toBe(used);
    expect(await mirrored(guest.id)).toEqual({ is_restricted: true, is_ultra_restricted: false });
  });
});
