import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { WebClient } from '@slack/web-api';
import { User } from '../../src/features/people/user.entity.ts';
import { createLogger } from '../../src/shared/logger.ts';
import { tellPerson } from '../../src/slack/notify.ts';
import { isSlackResponseUrl } from '../../src/slack/response-url.ts';
import { BOT_TOKEN, startTestApp, TEAM_ID, type TestApp } from '../support/app.ts';

/**
 * Slack puts a response_url in commands and clicks, and Roster (Bolt's respond() and its own replies)
 * posts its answer there. Slack's are on hooks.slack.com (the stand-in's, on the stand-in); a request
 * naming any other must not make Roster post to it: an address inside Roster's network, say.
 */
let t: TestApp;
const logLines: string[] = [];
/** A service on Roster's network that no payload should be able to make Roster post to. */
let elsewhere: Server;
const received: { url: string; body: string }[] = [];
let elsewhereUrl: string;

beforeAll(async () => {
  elsewhere = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => {
      body += c;
    });
    req.on('end', () => {
      received.push({ url: req.url ?? '', body });
      res.end('ok');
    });
  });
  await new Promise<void>((ok) => elsewhere.listen(0, '127.0.0.1', ok));
  elsewhereUrl = `http://127.0.0.1:${(elsewhere.address() as AddressInfo).port}`;
  const sink = new Writable({
    write(chunk, _enc, done) {
      logLines.push(String(chunk));
      done();
    },
  });
  t = await startTestApp({ seatLimit: 10, logger: createLogger('debug', sink) });
});
afterAll(async () => {
  await t.stop();
  await new Promise((ok) => elsewhere.close(ok));
});

const FORM = 'application/x-www-form-urlencoded';

function seatsCommand(responseUrl: string) {
  return new URLSearchParams({
    team_id: TEAM_ID,
    team_domain: 'acme',
    channel_id: 'C0GENERAL',
    channel_name: 'general',
    user_id: 'UMEMBER',
    user_name: 'max',
    command: '/seats',
    text: '',
    api_app_id: 'AROSTER',
    is_enterprise_install: 'false',
    response_url: responseUrl,
    trigger_id: t.standin.issueTriggerId(),
  }).toString();
}

const warnings = () =>
  logLines.filter((l) => l.includes('a Slack request whose response_url is not on Slack was ignored'));

describe('a response_url that is not on Slack', () => {
  it('gets no post from a slash command, and a warning naming only its host is logged', async () => {
    const before = t.standin.responses.length;
    const res = await t.slack.sendSigned(seatsCommand(`${elsewhereUrl}/internal/admin?key=s3cret`), FORM);
    expect(res.status).toBe(200);
    // The same command with Slack's response_url is answered there: the path does post when it should.
    const ok = await t.slack.sendSigned(seatsCommand(t.standin.responseUrl()), FORM);
    expect(ok.status).toBe(200);
    await t.standin.waitForResponse((r) => /Paid seats/.test(JSON.stringify(r.body)));
    expect(t.standin.responses.length).toBe(before + 1);
    expect(received).toEqual([]);
    expect(warnings()).toHaveLength(1);
    expect(warnings()[0]).toContain(`"host":"${elsewhereUrl}"`);
    expect(warnings()[0]).not.toContain('s3cret');
    expect(warnings()[0]).not.toContain('/internal/admin');
  });

  it('gets no post from a button click either', async () => {
    const em = t.em();
    const person = em.create(User, {
      account: await t.account(),
      email: 'card@acme.test',
      role: 'employee',
      status: 'active',
    });
    await em.flush();
    const payload = {
      type: 'block_actions',
      team: { id: TEAM_ID, domain: 'acme' },
      user: { id: 'UADMIN', username: 'adam', name: 'adam', team_id: TEAM_ID },
      api_app_id: 'AROSTER',
      trigger_id: t.standin.issueTriggerId(),
      container: { type: 'message', message_ts: '1.000001', channel_id: 'C0GENERAL', is_ephemeral: true },
      channel: { id: 'C0GENERAL', name: 'general' },
      actions: [{ type: 'button', action_id: 'person_open', value: person.id, action_ts: '1.000002' }],
      response_url: `${elsewhereUrl}/actions/x`,
    };
    const res = await t.slack.interaction(payload);
    expect(res.status).toBe(200);
    // Nor is anything said to the clicker some other way: the request is not acted on at all.
    const ok = await t.slack.command('/seats', '', { user: 'UMEMBER' });
    expect(ok.status).toBe(200);
    await t.standin.waitForResponse((r) => /Paid seats/.test(JSON.stringify(r.body)));
    expect(received).toEqual([]);
    expect(t.standin.responses.some((r) => JSON.stringify(r.body).includes('card@acme.test'))).toBe(false);
    expect(warnings()).toHaveLength(2);
  });

  it('is passed over when Roster tells a person about an error, who is told through the Web API', async () => {
    const client = new WebClient(BOT_TOKEN, { slackApiUrl: t.standin.apiUrl, retryConfig: { retries: 0 } });
    const body = { user_id: 'UMEMBER', channel_id: 'C0GENERAL', response_url: `${elsewhereUrl}/errors` };
    await tellPerson(t.roster.jobs, client, body, 'That did not work.');
    expect(received).toEqual([]);
    const told = await t.standin.waitForCall('chat.postEphemeral', (c) => c.args.user === 'UMEMBER');
    expect(told.args.text).toBe('That did not work.');
  });
});

describe('isSlackResponseUrl', () => {
  const api = 'https://slack.com/api/';
  it.each([
    ['https://hooks.slack.com/commands/T1/2/abc', true],
    ['https://hooks.slack.com:443/actions/T1/2/abc', true],
    ['http://hooks.slack.com/commands/T1/2/abc', false],
    ['https://hooks.slack.com.evil.test/commands/x', false],
    ['https://hooks.slack.com@evil.test/commands/x', false],
    ['https://user@hooks.slack.com/commands/x', false],
    ['http://169.254.169.254/latest/meta-data/', false],
    ['not a url', false],
  ])('%s: %s', (url, ok) => {
    expect(isSlackResponseUrl(url, api)).toBe(ok);
  });

  it('takes the host Roster reaches the Web API at, and its hooks host (GovSlack)', () => {
    expect(isSlackResponseUrl('https://hooks.slack-gov.com/commands/x', 'https://slack-gov.com/api/')).toBe(
      true,
    );
    expect(isSlackResponseUrl('http://127.0.0.1:4000/response/ab', 'http://127.0.0.1:4000/api/')).toBe(true);
    expect(isSlackResponseUrl('http://127.0.0.1:4001/response/ab', 'http://127.0.0.1:4000/api/')).toBe(false);
  });
});
