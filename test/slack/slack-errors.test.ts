import { startTestApp, type TestApp } from '../support/app.ts';
import { textOf } from '../support/views.ts';

let t: TestApp;

beforeAll(async () => {
  t = await startTestApp();
});
afterAll(() => t.stop());

describe("Slack's refusals, said to the person who acted", () => {
  it('says the form took too long to open when Slack refuses an expired trigger', async () => {
    t.standin.failNext('views.open', 'expired_trigger_id');
    await t.slack.command('/invite', '', { user: 'UMANAGER' });
    const told = await t.standin.waitForResponse((r) =>
      /Slack took too long to open the form/.test(textOf(r.body)),
    );
    expect(textOf(told.body)).toContain('Please try again.');
  });

  it('names what to do when Roster lacks a Slack permission or its token was revoked', async () => {
    t.standin.failNext('views.open', 'missing_scope');
    await t.slack.command('/contact', 'add', { user: 'UMANAGER' });
    await t.standin.waitForResponse((r) =>
      /Roster lacks a Slack permission.*reinstalls Roster/.test(textOf(r.body)),
    );

    t.standin.failNext('views.open', 'token_revoked');
    await t.slack.command('/contact', 'add', { user: 'UMANAGER' });
    await t.standin.waitForResponse((r) => /token was revoked/.test(textOf(r.body)));
  });

  it('says how to add Roster to a channel it is not in, not with `/invite @roster`, which Roster itself takes', async () => {
    t.standin.failNext('conversations.info', 'not_in_channel');
    await t.slack.command('/seats', 'channel #general', { user: 'UADMIN' });
    const told = await t.standin.waitForResponse((r) => /Roster is not in that channel/.test(textOf(r.body)));
    expect(textOf(told.body)).toBe(
      ':no_entry: Roster is not in that channel. First add Roster to it: open the channel’s details (click its name), then Integrations, then Add an app, and pick Roster; then try again.',
    );
  });

  it('still apologises with a reference for a refusal it has no words for', async () => {
    t.standin.failNext('views.open', 'some_new_error');
    await t.slack.command('/contact', 'add', { user: 'UMANAGER' });
    await t.standin.waitForResponse((r) =>
      /Something went wrong on our side.*reference/.test(textOf(r.body)),
    );
  });
});
