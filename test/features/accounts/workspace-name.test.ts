import { query, sql } from '../../../src/db/sql.ts';
import { startSecondInstance, startTestApp, TEAM_ID, type TestApp } from '../../support/app.ts';
import { links } from '../../support/smtp-sink.ts';

// Invitations, the invitation and join pages and Roster's messages name the workspace: after an admin
// renames it in Slack, they use the new name, not the one it had when Roster was installed.

let t: TestApp;

beforeAll(async () => {
  t = await startTestApp({ seatLimit: 10 });
});
afterAll(() => t.stop());

async function invite(email: string) {
  await t.slack.command('/invite', '', { user: 'UADMIN' });
  const res = await t.slack.submitView(t.standin.lastOpenedView(), { emails: email }, { user: 'UADMIN' });
  expect(res.status).toBe(200);
  const mail = await t.smtp.waitForMail((m) => m.toText === email);
  const link = links(mail).find((l) => l.includes('/invitations/'));
  if (!link) throw new Error(`no invitation link in the mail to ${email}`);
  return { mail, link };
}

const installation = async () =>
  (
    await query<{ team_name: string }>(
      t.em(),
      sql`select team_name from slack_installation where team_id = ${TEAM_ID}`,
    )
  )[0]?.team_name;

describe("the workspace's name", () => {
  it('follows a rename in Slack: the next invitation and its page use the new name', async () => {
    expect((await t.account()).name).toBe('Acme');
    t.standin.teamName = 'Acme Widgets';
    const res = await t.slack.event({ type: 'team_rename', name: 'Acme Widgets', team_id: TEAM_ID });
    expect(res.status).toBe(200);
    expect((await t.account()).name).toBe('Acme Widgets');
    expect(await installation()).toBe('Acme Widgets');

    const { mail, link } = await invite('renamed@example.com');
    expect(mail.subject).toBe('Adam Admin invited you to Acme Widgets');
    expect(mail.text).toContain('join Acme Widgets as');
    const page = await (await fetch(link)).text();
    expect(page).toContain('invited to Acme Widgets');
  });

  it('keeps its name when an event brings an empty one', async () => {
    for (const name of ['   ', '']) {
      expect((await t.slack.event({ type: 'team_rename', name, team_id: TEAM_ID })).status).toBe(200);
    }
    expect((await t.account()).name).toBe('Acme Widgets');
  });

  it('renamed while Roster was stopped, is read from Slack at the next start', async () => {
    t.standin.teamName = 'Widgets Worldwide';
    const before = t.standin.callsTo('team.info').length;
    const second = await startSecondInstance(t);
    try {
      expect(t.standin.callsTo('team.info').length).toBe(before + 1);
      expect((await t.account()).name).toBe('Widgets Worldwide');
      expect(await installation()).toBe('Widgets Worldwide');
    } finally {
      await second.stop();
    }
  });

  it('keeps the newer name when Slack delivers an older rename after it', async () => {
    const renamed = await t.slack.event({ type: 'team_rename', name: 'Widgets Today', team_id: TEAM_ID });
    expect(renamed.status).toBe(200);
    expect((await t.account()).name).toBe('Widgets Today');
    // A rename of a minute ago, redelivered or held up, reaches Roster now.
    const late = await t.slack.event(
      { type: 'team_rename', name: 'Widgets Yesterday', team_id: TEAM_ID },
      { eventTime: Date.now() - 60_000 },
    );
    expect(late.status).toBe(200);
    expect((await t.account()).name).toBe('Widgets Today');
    expect(await installation()).toBe('Widgets Today');
  });

  it('keeps the name team.info gave at a start over a rename Slack made before it, delivered late', async () => {
    t.standin.teamName = 'Widgets Restarted';
    const second = await startSecondInstance(t);
    try {
      expect((await t.account()).name).toBe('Widgets Restarted');
      const late = await t.slack.event(
        { type: 'team_rename', name: 'Widgets Before', team_id: TEAM_ID },
        { eventTime: Date.now() - 60_000 },
      );
      expect(late.status).toBe(200);
      expect((await t.account()).name).toBe('Widgets Restarted');
      expect(await installation()).toBe('Widgets Restarted');
    } finally {
      await second.stop();
    }
  });
});
