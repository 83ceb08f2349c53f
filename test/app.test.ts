import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { Account, SlackInstallation } from '../src/features/accounts/account.entity.ts';
import { startTestApp, type TestApp } from './support/app.ts';
import { textOf } from './support/views.ts';

const run = promisify(execFile);
let t: TestApp;

beforeAll(async () => {
  t = await startTestApp();
});
afterAll(() => t.stop());

describe('the running app', () => {
  it('answers /healthz while the process runs', async () => {
    const res = await fetch(`${t.url}/healthz`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: 'ok' });
  });

  it('records the workspace from auth.test at startup, with the bot token', async () => {
    const installation = await t.em().findOneOrFail(SlackInstallation, { teamId: 'T0001' });
    expect(installation).toMatchObject({ botUserId: 'UBOT', botId: 'BBOT', teamName: 'Acme' });
    expect(t.standin.callsTo('auth.test')[0]?.token).toBe('xoxb-test-bot-token');
    expect(await t.em().count(Account, { teamId: 'T0001' })).toBe(1);
  });

  it('takes a signed slash command and its reply reaches Slack', async () => {
    const res = await t.slack.command('/seats', '', { user: 'UMEMBER' });
    expect(res.status).toBe(200);
    const reply = await t.standin.waitForResponse((r) => textOf(r.body).includes('Paid seats'));
    expect(reply.body.response_type).toBe('ephemeral');
  });

  it('refuses requests with a bad signature or an old timestamp, and does nothing', async () => {
    const before = t.standin.responses.length;
    const forged = await t.slack.command('/seats', '99', { user: 'UADMIN', badSignature: true });
    expect(forged.status).toBe(401);
    const stale = await t.slack.command('/seats', '99', { user: 'UADMIN', staleTimestamp: true });
    expect(stale.status).toBe(401);
    expect((await t.account()).seatLimit).not.toBe(99);
    expect(t.standin.responses.length).toBe(before);
  });

  it('answers unknown pages with a plain 404 page', async () => {
    const res = await fetch(`${t.url}/no/such/page`);
    expect(res.status).toBe(404);
    expect(res.headers.get('content-type')).toContain('text/html');
    expect(await res.text()).toContain('There is nothing here');
  });

  it('sends email through SMTP_URL', async () => {
    await t.roster.mailer.send({
      to: 'someone@example.com',
      subject: 'Hello',
      text: 'Plain',
      html: '<p>Rich</p>',
    });
    const mail = await t.smtp.waitForMail((m) => m.subject === 'Hello');
    expect(mail.toText).toBe('someone@example.com');
    expect(mail.from?.text).toContain('roster@acme.test');
    expect(mail.text?.trim()).toBe('Plain');
  });

  it('publishes the Home tab: admins see seats, others only themselves', async () => {
    await t.slack.event({ type: 'app_home_opened', user: 'UADMIN', tab: 'home', channel: 'DUADMIN' });
    const adminHome = await t.standin.waitForCall('views.publish', (c) => c.args.user_id === 'UADMIN');
    expect(textOf(adminHome.args.view)).toContain('paid seats used');
    await t.slack.event({ type: 'app_home_opened', user: 'UMEMBER', tab: 'home', channel: 'DUMEMBER' });
    const memberHome = await t.standin.waitForCall('views.publish', (c) => c.args.user_id === 'UMEMBER');
    expect(textOf(memberHome.args.view)).toContain('not in Roster yet');
    expect(textOf(memberHome.args.view)).not.toContain('paid seats used');
  });
});

describe('starting without settings', () => {
  it('exits non-zero naming every missing Slack setting and pointing to the README', async () => {
    const env = { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '' };
    const err = await run(process.execPath, ['src/main.ts'], { env, cwd: process.cwd() }).then(
      () => null,
      (e: { code: number; stderr: string }) => e,
    );
    expect(err?.code).toBe(78);
    expect(err?.stderr).toContain('SLACK_SIGNING_SECRET is missing');
    expect(err?.stderr).toContain('SLACK_BOT_TOKEN is missing');
    expect(err?.stderr).toContain('README.md, section "Create the Slack app"');
  });
});
