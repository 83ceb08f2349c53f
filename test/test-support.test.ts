/**
 * What the other tests stand on, checked over real HTTP and SMTP: the Slack Web API stand-in as
 * @slack/web-api sees it, the signer, the driver against a real Bolt app, the view helpers, and the
 * SMTP sink.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { App, isValidSlackRequest, LogLevel, type types } from '@slack/bolt';
import { ErrorCode, WebClient } from '@slack/web-api';
import nodemailer from 'nodemailer';
import { signSlackRequest } from './support/signer.ts';
import { SlackDriver } from './support/slack-driver.ts';
import { escapeCommandText, shouldEscape } from './support/slack-escape.ts';
import {
  type Member,
  type SlackObject,
  type SlackStandin,
  startSlackStandin,
} from './support/slack-standin.ts';
import { links, type SmtpSink, startSmtpSink } from './support/smtp-sink.ts';
import { fillView, findButton, textOf } from './support/views.ts';

const BOT_TOKEN = 'xoxb-bench-token';
const SIGNING_SECRET = 'bench-signing-secret';
const MEMBERS: Member[] = [
  {
    id: 'UADA',
    name: 'ada',
    realName: 'Ada Lovelace',
    email: 'Ada@Example.test',
    isAdmin: true,
    title: 'Countess',
  },
  { id: 'UBOB', name: 'bob', realName: 'Bob Builder', email: 'bob@example.test', phone: '+1 555 0101' },
  { id: 'UGONE', name: 'gone', email: 'gone@example.test', deleted: true },
];

/** The Slack error code of a rejected Web API call, or the HTTP status of a failed one. */
async function failure(
  call: Promise<unknown>,
): Promise<{ code: string; error?: string; status?: number; retryAfter?: number }> {
  try {
    await call;
  } catch (err) {
    const e = err as { code: string; data?: { error?: string }; statusCode?: number; retryAfter?: number };
    return { code: e.code, error: e.data?.error, status: e.statusCode, retryAfter: e.retryAfter };
  }
  throw new Error('the call succeeded');
}

/** A modal titled Bench, from loosely typed blocks (some tests build blocks Slack's types would refuse). */
const modal = (blocks: SlackObject[], extra: SlackObject = {}): types.ModalView =>
  ({
    type: 'modal',
    callback_id: 'bench_modal',
    title: { type: 'plain_text', text: 'Bench' },
    blocks,
    ...extra,
  }) as types.ModalView;

describe('the Slack stand-in, as @slack/web-api sees it', () => {
  let standin: SlackStandin;
  let client: WebClient;

  beforeAll(async () => {
    standin = await startSlackStandin({ members: MEMBERS, teamId: 'TBENCH', botToken: BOT_TOKEN });
    client = new WebClient(BOT_TOKEN, {
      slackApiUrl: standin.apiUrl,
      retryConfig: { retries: 0 },
      logLevel: LogLevel.ERROR,
    });
  });
  afterAll(() => standin.close());
  beforeEach(() => standin.reset());

  it('listens on 127.0.0.1 on an ephemeral port', () => {
    expect(standin.apiUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/api\/$/);
    expect(standin.port).toBeGreaterThan(0);
  });

  it('answers auth.test with the bot identity and records the call with its bearer token', async () => {
    const auth = await client.auth.test();
    expect(auth).toMatchObject({
      ok: true,
      team_id: 'TBENCH',
      user_id: 'UBOT',
      bot_id: 'BBOT',
      team: 'Acme',
    });
    expect(standin.calls).toEqual([
      { method: 'auth.test', args: {}, token: BOT_TOKEN, at: expect.any(Number) },
    ]);
  });

  it('refuses a wrong token, and no token at all, as Slack does', async () => {
    const other = new WebClient('xoxb-wrong', { slackApiUrl: standin.apiUrl, retryConfig: { retries: 0 } });
    expect(await failure(other.auth.test())).toMatchObject({ error: 'invalid_auth' });
    expect(standin.lastCall('auth.test')?.token).toBe('xoxb-wrong');
    const res = await fetch(`${standin.apiUrl}auth.test`, { method: 'POST' });
    expect(await res.json()).toEqual({ ok: false, error: 'not_authed' });
  });

  it('finds members by email case-insensitively and by id, in Slack user shape', async () => {
    const byEmail = await client.users.lookupByEmail({ email: 'ada@EXAMPLE.test' });
    expect(byEmail.user).toMatchObject({
      id: 'UADA',
      team_id: 'TBENCH',
      name: 'ada',
      real_name: 'Ada Lovelace',
      is_admin: true,
      is_owner: false,
      is_bot: false,
      deleted: false,
      profile: { email: 'Ada@Example.test', first_name: 'Ada', last_name: 'Lovelace', title: 'Countess' },
    });
    const byId = await client.users.info({ user: 'UBOB' });
    expect(byId.user?.profile).toMatchObject({
      phone: '+1 555 0101',
      display_name: 'bob',
      real_name: 'Bob Builder',
    });
    expect(standin.lastCall('users.info')).toMatchObject({ args: { user: 'UBOB' }, token: BOT_TOKEN });

    expect(await failure(client.users.lookupByEmail({ email: 'nobody@example.test' }))).toEqual({
      code: ErrorCode.PlatformError,
      error: 'users_not_found',
      status: undefined,
    });
    expect(await failure(client.users.lookupByEmail({ email: 'gone@example.test' }))).toMatchObject({
      error: 'users_not_found',
    });
    expect(await failure(client.users.info({ user: 'UNOBODY' }))).toMatchObject({ error: 'user_not_found' });
    expect((await client.users.info({ user: 'UGONE' })).user?.deleted).toBe(true);
  });

  it('lists members, including ones added later', async () => {
    standin.addMember({ id: 'UNEW', name: 'newt' });
    const list = await client.users.list({});
    expect(list.members?.map((m) => m.id)).toEqual(['UADA', 'UBOB', 'UGONE', 'UNEW']);
    standin.members.delete('UNEW');
  });

  it('posts messages with unique increasing timestamps, to channels and to DMs by user id', async () => {
    const blocks = [
      { type: 'section', text: { type: 'mrkdwn', text: 'Hello *there*' } },
      {
        type: 'actions',
        elements: [{ type: 'button', text: { type: 'plain_text', text: 'OK' }, value: 'ok' }],
      },
    ];
    const first = await client.chat.postMessage({ channel: 'C123', text: 'Hello', blocks });
    const second = await client.chat.postMessage({ channel: 'UBOB', text: 'Psst' });
    expect(first.ts).toMatch(/^\d{10}\.\d{6}$/);
    expect(Number(second.ts)).toBeGreaterThan(Number(first.ts));
    expect(second.channel).toBe('DUBOB');
    expect(first.message?.text).toBe('Hello');

    // Recorded as sent: nested JSON parsed back into objects.
    const call = standin.lastCall('chat.postMessage');
    expect(standin.callsTo('chat.postMessage')[0]?.args.blocks).toEqual(blocks);
    expect(call?.args).toMatchObject({ channel: 'UBOB', text: 'Psst' });

    // Held as Slack holds it: every block and button has an id.
    const [posted] = standin.messagesTo('C123');
    expect(posted).toMatchObject({
      method: 'chat.postMessage',
      channel: 'C123',
      ts: first.ts,
      text: 'Hello',
    });
    expect(posted?.blocks?.every((b) => typeof b.block_id === 'string')).toBe(true);
    expect(findButton(posted?.blocks, 'OK').action.action_id).toEqual(expect.any(String));
    expect(standin.messagesTo('UBOB').map((m) => m.text)).toEqual(['Psst']);

    expect(await failure(client.chat.postMessage({ channel: 'C123' } as never))).toMatchObject({
      error: 'no_text',
    });
  });

  it('records ephemeral messages and updates, and answers permalinks and deletes', async () => {
    const eph = await client.chat.postEphemeral({ channel: 'C123', user: 'UADA', text: 'Only you' });
    expect(eph.message_ts).toMatch(/^\d{10}\.\d{6}$/);
    const posted = await client.chat.postMessage({ channel: 'C123', text: 'v1' });
    const updated = await client.chat.update({ channel: 'C123', ts: posted.ts!, text: 'v2' });
    expect(updated).toMatchObject({ ok: true, channel: 'C123', ts: posted.ts, text: 'v2' });
    expect(standin.messages.map((m) => [m.method, m.text])).toEqual([
      ['chat.postEphemeral', 'Only you'],
      ['chat.postMessage', 'v1'],
      ['chat.update', 'v2'],
    ]);
    expect(standin.messagesTo('UADA').map((m) => m.text)).toEqual(['Only you']);
    const link = await client.chat.getPermalink({ channel: 'C123', message_ts: '1700000000.000100' });
    expect(link.permalink).toBe('https://acme.slack.com/archives/C123/p1700000000000100');
    expect(await client.chat.delete({ channel: 'C123', ts: posted.ts! })).toMatchObject({
      ok: true,
      ts: posted.ts,
    });
  });

  it('opens, pushes and updates views by id, and takes each trigger id once', async () => {
    const trigger = standin.issueTriggerId();
    const view = modal(
      [{ type: 'input', label: { type: 'plain_text', text: 'Name' }, element: { type: 'plain_text_input' } }],
      {
        private_metadata: 'meta',
      },
    );
    const opened = await client.views.open({ trigger_id: trigger, view });
    expect(opened.view).toMatchObject({
      id: expect.stringMatching(/^V/),
      hash: expect.any(String),
      type: 'modal',
      callback_id: 'bench_modal',
      private_metadata: 'meta',
      state: { values: {} },
    });
    expect(opened.view?.blocks?.[0]?.block_id).toEqual(expect.any(String));
    expect(standin.lastOpenedView().id).toBe(opened.view?.id);
    expect(standin.lastCall('views.open')?.args.view).toEqual(view);

    expect(await failure(client.views.open({ trigger_id: trigger, view }))).toMatchObject({
      error: 'exchanged_trigger_id',
    });
    expect(await failure(client.views.open({ trigger_id: '123.456.made-up', view }))).toMatchObject({
      error: 'invalid_arguments',
    });

    const pushed = await client.views.push({
      trigger_id: standin.issueTriggerId(),
      view: modal([], { callback_id: 'second' }),
    });
    expect(pushed.view).toMatchObject({ root_view_id: opened.view?.id, previous_view_id: opened.view?.id });
    expect(standin.lastOpenedView().callback_id).toBe('second');

    const viewId = opened.view?.id ?? '';
    const stale = await failure(client.views.update({ view_id: viewId, hash: 'stale', view: modal([]) }));
    expect(stale.error).toBe('hash_conflict');
    await client.views.update({
      view_id: viewId,
      hash: opened.view?.hash,
      view: modal([], { callback_id: 'changed' }),
    });
    expect(standin.views.get(viewId)?.callback_id).toBe('changed');
    expect(await failure(client.views.update({ view_id: 'VNOPE', view: modal([]) }))).toMatchObject({
      error: 'not_found',
    });
  });

  it("publishes Home tabs, keeping each person's home view id", async () => {
    const home = {
      type: 'home' as const,
      blocks: [{ type: 'section', text: { type: 'mrkdwn', text: 'v1' } }],
    };
    const first = await client.views.publish({ user_id: 'UADA', view: home });
    const again = await client.views.publish({ user_id: 'UADA', view: { ...home, blocks: [] } });
    const bobs = await client.views.publish({ user_id: 'UBOB', view: home });
    expect(first.view).toMatchObject({ type: 'home', user_id: 'UADA' });
    expect(again.view?.id).toBe(first.view?.id);
    expect(bobs.view?.id).not.toBe(first.view?.id);
    expect(standin.homeView('UADA')?.blocks).toEqual([]);
    expect(textOf(standin.homeView('UBOB'))).toBe('v1');
  });

  it('fails the next calls of a method on demand, then answers again', async () => {
    standin.failNext('chat.postMessage', 'channel_not_found', 2);
    for (const _ of [1, 2]) {
      expect(await failure(client.chat.postMessage({ channel: 'C404', text: 'x' }))).toMatchObject({
        error: 'channel_not_found',
      });
    }
    expect((await client.chat.postMessage({ channel: 'C404', text: 'x' })).ok).toBe(true);

    standin.failNext('chat.postMessage', 'not_in_channel', 1, (args) => args.channel === 'CPRIVATE');
    expect((await client.chat.postMessage({ channel: 'COPEN', text: 'x' })).ok).toBe(true);
    expect(await failure(client.chat.postMessage({ channel: 'CPRIVATE', text: 'x' }))).toMatchObject({
      error: 'not_in_channel',
    });

    standin.failWithStatus('users.info', 500, 1);
    expect(await failure(client.users.info({ user: 'UADA' }))).toMatchObject({
      code: ErrorCode.HTTPError,
      status: 500,
    });
    expect((await client.users.info({ user: 'UADA' })).ok).toBe(true);
    expect(standin.callsTo('users.info')).toHaveLength(2);
  });

  it('records unknown methods and answers unknown_method', async () => {
    expect(await failure(client.apiCall('no.such.method', { a: 1 }))).toMatchObject({
      error: 'unknown_method',
    });
    expect(standin.lastCall('no.such.method')?.args).toEqual({ a: '1' });
  });

  it('waits for calls that come later, and explains when none comes', async () => {
    const waiting = standin.waitForCall('users.info', (c) => c.args.user === 'UBOB', 2000);
    await client.users.info({ user: 'UADA' });
    await client.users.info({ user: 'UBOB' });
    expect((await waiting).args.user).toBe('UBOB');
    await expect(standin.waitForCall('views.open', undefined, 50)).rejects.toThrow(
      /no matching views\.open call; recorded: users\.info, users\.info/,
    );
  });

  it('records JSON posted to response URLs', async () => {
    const url = standin.responseUrl();
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/response\/\w+$/);
    const waiting = standin.waitForResponse((r) => r.body.text === 'second');
    for (const text of ['first', 'second']) {
      const res = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ text }),
      });
      expect(res.status).toBe(200);
    }
    expect(await waiting).toMatchObject({ url, body: { text: 'second' } });
    expect(standin.responses.map((r) => r.body.text)).toEqual(['first', 'second']);
    await expect(standin.waitForResponse((r) => r.body.text === 'third', 50)).rejects.toThrow(/received 2/);
  });

  it('serves files only with the bot token, like Slack, and describes them in files.info', async () => {
    const file = standin.addFile({
      id: 'FCSV',
      name: 'people list.csv',
      content: 'email\nada@example.test\n',
    });
    expect(file).toMatchObject({ id: 'FCSV', filetype: 'csv', mimetype: 'text/csv', size: 23 });
    expect(file).not.toHaveProperty('content');

    const anonymous = await fetch(file.url_private_download!);
    expect(anonymous.status).toBe(403);
    expect(anonymous.headers.get('content-type')).toContain('text/html');
    const wrong = await fetch(file.url_private, { headers: { authorization: 'Bearer xoxb-wrong' } });
    expect(wrong.status).toBe(403);

    const ok = await fetch(file.url_private_download!, { headers: { authorization: `Bearer ${BOT_TOKEN}` } });
    expect(ok.status).toBe(200);
    expect(await ok.text()).toBe('email\nada@example.test\n');

    const info = await client.files.info({ file: 'FCSV' });
    expect(info.file).toMatchObject({ id: 'FCSV', name: 'people list.csv', url_private: file.url_private });
    expect(await failure(client.files.info({ file: 'FNONE' }))).toMatchObject({ error: 'file_not_found' });
  });

  it('takes files.uploadV2 end to end: upload URL on itself, bytes stored, completion recorded', async () => {
    const bytes = Buffer.from([0, 1, 2, 250, 251, 252, 10, 13]);
    await client.filesUploadV2({
      channel_id: 'C123',
      file: bytes,
      filename: 'report.bin',
      title: 'The report',
      initial_comment: 'Here it is',
    });
    const url = standin.lastCall('files.getUploadURLExternal');
    expect(url?.args).toMatchObject({ filename: 'report.bin', length: String(bytes.length) });
    expect(standin.uploadedFiles).toHaveLength(1);
    const [uploaded] = standin.uploadedFiles;
    expect(uploaded).toMatchObject({
      filename: 'report.bin',
      title: 'The report',
      channelId: 'C123',
      initialComment: 'Here it is',
    });
    expect(uploaded?.content.equals(bytes)).toBe(true);
    expect(standin.lastCall('files.completeUploadExternal')?.args.files).toEqual([
      { id: uploaded?.id, title: 'The report' },
    ]);
    expect((await client.files.info({ file: uploaded?.id ?? '' })).file?.title).toBe('The report');

    await client.filesUploadV2({ channel_id: 'C123', content: 'a,b\n1,2\n', filename: 'data.csv' });
    expect(standin.uploadedFiles[1]?.content.toString()).toBe('a,b\n1,2\n');
  });

  it('reset() forgets calls, messages and responses', async () => {
    await client.chat.postMessage({ channel: 'C1', text: 'x' });
    await fetch(standin.responseUrl(), { method: 'POST', body: '{}' });
    standin.reset();
    expect([standin.calls.length, standin.messages.length, standin.responses.length]).toEqual([0, 0, 0]);
  });
});

describe("the Slack stand-in's rate limits", () => {
  let standin: SlackStandin;
  let client: WebClient;
  beforeEach(async () => {
    standin = await startSlackStandin({ members: MEMBERS, teamId: 'TBENCH', botToken: BOT_TOKEN });
    client = new WebClient(BOT_TOKEN, {
      slackApiUrl: standin.apiUrl,
      retryConfig: { retries: 0 },
      rejectRateLimitedCalls: true,
      logLevel: LogLevel.ERROR,
    });
  });
  afterEach(() => standin.close());

  it("enforces each method's tier by default: the 21st users.list in a minute gets 429 and Retry-After", async () => {
    for (let i = 0; i < 20; i++) await client.users.list({ limit: 1 });
    const refused = await failure(client.users.list({ limit: 1 }));
    expect(refused).toMatchObject({ code: ErrorCode.RateLimitedError });
    // Retry-After: until the first of the 20 leaves the minute's window.
    expect(refused.retryAfter).toBeGreaterThanOrEqual(59);
    expect(standin.rateLimited.map((c) => c.method)).toEqual(['users.list']);
    // Another method has its own allowance (users.info is Tier 4).
    expect((await client.users.info({ user: 'UADA' })).ok).toBe(true);
  });

  it('lets chat.postMessage post about one message a second per channel, other channels unaffected', async () => {
    for (let i = 0; i < 3; i++) await client.chat.postMessage({ channel: 'C0GENERAL', text: `burst ${i}` });
    expect(
      await failure(client.chat.postMessage({ channel: 'C0GENERAL', text: 'one too many' })),
    ).toMatchObject({
      code: ErrorCode.RateLimitedError,
    });
    // A DM by user id and by D id are the same channel.
    expect((await client.chat.postMessage({ channel: 'UBOB', text: 'hello' })).ok).toBe(true);
    expect((await client.chat.postMessage({ channel: 'DUBOB', text: 'again' })).ok).toBe(true);
    expect((await client.chat.postMessage({ channel: 'UBOB', text: 'third' })).ok).toBe(true);
    expect(await failure(client.chat.postMessage({ channel: 'DUBOB', text: 'fourth' }))).toMatchObject({
      code: ErrorCode.RateLimitedError,
    });
  });

  it('shortens every window by a scale, and limitRate replaces one method’s limit until cleared', async () => {
    await standin.close();
    standin = await startSlackStandin({ members: MEMBERS, botToken: BOT_TOKEN, tiers: { scale: 60 } });
    client = new WebClient(BOT_TOKEN, {
      slackApiUrl: standin.apiUrl,
      retryConfig: { retries: 0 },
      rejectRateLimitedCalls: true,
      logLevel: LogLevel.ERROR,
    });
    // Tier 2 over a one-second window: 20 calls, then 429 for about a second.
    for (let i = 0; i < 20; i++) await client.users.list({ limit: 1 });
    expect(await failure(client.users.list({ limit: 1 }))).toMatchObject({
      code: ErrorCode.RateLimitedError,
    });
    await new Promise((r) => setTimeout(r, 1100));
    expect((await client.users.list({ limit: 1 })).ok).toBe(true);

    standin.limitRate('users.info', { max: 1, windowMs: 60_000, retryAfter: 30 });
    await client.users.info({ user: 'UADA' });
    expect(await failure(client.users.info({ user: 'UADA' }))).toMatchObject({ retryAfter: 30 });
    standin.clearRateLimit('users.info');
    expect((await client.users.info({ user: 'UADA' })).ok).toBe(true);
  });
});

describe("a slash command's text, as Slack sends it", () => {
  const escaped = (typed: string) =>
    escapeCommandText(typed, {
      members: [
        { id: 'UANA', name: 'ana' },
        { id: 'UGONE', name: 'gone', deleted: true },
        { id: 'UBOT', name: 'roster' },
      ],
      channels: [
        ['C0GENERAL', { name: 'general', is_private: false }],
        ['GSECRET', { name: 'secret', is_private: true }],
      ],
    });

  it("reads each command's should_escape from manifest.yml", () => {
    expect(shouldEscape('/invite')).toBe(true);
    expect(shouldEscape('/people')).toBe(true);
    expect(shouldEscape('/seats')).toBe(true);
    expect(shouldEscape('/contact')).toBe(false);
    expect(shouldEscape('/joinlink')).toBe(false);
    expect(shouldEscape('/nonesuch')).toBeUndefined();
  });

  it('links members, channels, addresses and links, and writes a typed & < > as entities', () => {
    expect(escaped('@ana, @roster @gone @nobody @here')).toBe(
      '<@UANA|ana>, <@UBOT|roster> @gone @nobody <!here>',
    );
    expect(escaped('#general #secret #unknown')).toBe('<#C0GENERAL|general> <#GSECRET|> #unknown');
    expect(escaped('Ana Lopez <ana@x.test>; bo@y.test')).toBe(
      'Ana Lopez &lt;<mailto:ana@x.test|ana@x.test>&gt;; <mailto:bo@y.test|bo@y.test>',
    );
    expect(escaped('A & B <https://x.test/a?b=1&c=2>')).toBe(
      'A &amp; B &lt;<https://x.test/a?b=1&amp;c=2>&gt;',
    );
  });

  it('sends a command manifest.yml does not escape as typed, or a verbatim one as given', async () => {
    const standin = await startSlackStandin({ members: MEMBERS, botToken: BOT_TOKEN });
    try {
      const slack = new SlackDriver({ appUrl: 'http://127.0.0.1:1', signingSecret: 's', standin });
      expect(slack.commandText('/contact', 'add ada@x.test & <@ada>')).toBe('add ada@x.test & <@ada>');
      expect(slack.commandText('/invite', '@ada @roster')).toBe('<@UADA|ada> <@UBOT|roster>');
    } finally {
      await standin.close();
    }
  });
});

describe('signSlackRequest', () => {
  it("reproduces Slack's documented example", () => {
    const body =
      'token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c';
    expect(signSlackRequest('8f742231b10e8888abcd99yyyzzz85a5', body, 1531420618)).toEqual({
      'x-slack-signature': 'v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503',
      'x-slack-request-timestamp': '1531420618',
    });
  });

  it("signs now by default, in a way Bolt's verifier accepts, and only for that body", () => {
    const headers = signSlackRequest('s3cret', '{"a":1}');
    const check = (body: string) =>
      isValidSlackRequest({
        signingSecret: 's3cret',
        body,
        headers: {
          'x-slack-signature': headers['x-slack-signature'],
          'x-slack-request-timestamp': Number(headers['x-slack-request-timestamp']),
        },
      });
    expect(check('{"a":1}')).toBe(true);
    expect(check('{"a":2}')).toBe(false);
  });
});

describe('the driver, against a real Bolt app', () => {
  type Seen = { kind: string; body: SlackObject; context: SlackObject };
  let standin: SlackStandin;
  let app: App;
  let slack: SlackDriver;
  let seen: Seen[];
  const seenOf = (kind: string) => seen.filter((s) => s.kind === kind);

  const helloModal = modal(
    [
      {
        type: 'input',
        block_id: 'name_block',
        label: { type: 'plain_text', text: 'Your name' },
        element: { type: 'plain_text_input', action_id: 'name' },
      },
      {
        type: 'input',
        block_id: 'colour_block',
        label: { type: 'plain_text', text: 'Colour' },
        element: {
          type: 'static_select',
          action_id: 'colour',
          options: ['red', 'blue'].map((c) => ({
            text: { type: 'plain_text', text: c.toUpperCase() },
            value: c,
          })),
          initial_option: { text: { type: 'plain_text', text: 'RED' }, value: 'red' },
        },
      },
    ],
    { callback_id: 'hello_modal', private_metadata: 'C0GENERAL' },
  );

  beforeAll(async () => {
    standin = await startSlackStandin({ members: MEMBERS, botToken: BOT_TOKEN });
    app = new App({
      token: BOT_TOKEN,
      signingSecret: SIGNING_SECRET,
      processBeforeResponse: true,
      logLevel: LogLevel.ERROR,
      clientOptions: { slackApiUrl: standin.apiUrl, retryConfig: { retries: 0 } },
    });
    app.command('/hello', async ({ ack, respond, client, command, context }) => {
      seen.push({ kind: 'command', body: command, context });
      await ack();
      await respond({ response_type: 'ephemeral', text: `Hello <@${command.user_id}>` });
      await client.views.open({ trigger_id: command.trigger_id, view: helloModal });
    });
    app.command('/poll', async ({ ack, client, command }) => {
      await ack();
      await client.chat.postMessage({
        channel: command.channel_id,
        text: 'Lunch?',
        blocks: [
          { type: 'section', text: { type: 'mrkdwn', text: '*Lunch?*' } },
          {
            type: 'actions',
            block_id: 'poll',
            elements: [
              { type: 'button', action_id: 'vote', text: { type: 'plain_text', text: 'Yes' }, value: 'yes' },
              { type: 'button', action_id: 'vote_no', text: { type: 'plain_text', text: 'No' }, value: 'no' },
              {
                type: 'static_select',
                action_id: 'when',
                placeholder: { type: 'plain_text', text: 'When' },
                options: ['noon', 'one'].map((v) => ({ text: { type: 'plain_text', text: v }, value: v })),
              },
            ],
          },
        ],
      });
    });
    app.view('hello_modal', async ({ ack, body, view }) => {
      seen.push({ kind: 'view', body, context: {} });
      const name = view.state.values.name_block?.name?.value;
      if (!name) await ack({ response_action: 'errors', errors: { name_block: 'Say your name' } });
      else await ack();
    });
    app.action('vote', async ({ ack, body, action, respond, context }) => {
      seen.push({ kind: 'vote', body: { ...body, clicked: action }, context });
      await ack();
      await respond({ replace_original: false, text: `Voted ${'value' in action ? action.value : '?'}` });
    });
    app.action('when', async ({ ack, body, action }) => {
      seen.push({ kind: 'select', body: { ...body, clicked: action }, context: {} });
      await ack();
    });
    app.event('app_home_opened', async ({ event, context }) => {
      seen.push({ kind: 'event', body: event, context });
    });
    app.command('/slow-ack', async ({ ack }) => {
      await new Promise((r) => setTimeout(r, 3200));
      await ack();
    });
    app.command('/slow-after-ack', async ({ ack }) => {
      await ack();
      await new Promise((r) => setTimeout(r, 3200));
    });
    app.shortcut('global_sc', async ({ ack, body }) => {
      seen.push({ kind: 'shortcut', body, context: {} });
      await ack();
    });
    app.shortcut('message_sc', async ({ ack, body }) => {
      seen.push({ kind: 'message_shortcut', body, context: {} });
      await ack();
    });
    const server = (await app.start({ port: 0, host: '127.0.0.1' })) as Server;
    const { address, port } = server.address() as AddressInfo;
    expect(address).toBe('127.0.0.1');
    slack = new SlackDriver({ appUrl: `http://127.0.0.1:${port}`, signingSecret: SIGNING_SECRET, standin });
  });
  afterAll(async () => {
    await app.stop();
    await standin.close();
  });
  beforeEach(() => {
    seen = [];
  });

  it('delivers a signed slash command; respond() and views.open reach the stand-in', async () => {
    const res = await slack.command('/hello', 'world', { user: 'UADA', channel: 'C0RANDOM' });
    expect(res.status).toBe(200);
    const [command] = seenOf('command');
    expect(command?.body).toMatchObject({
      command: '/hello',
      text: 'world',
      user_id: 'UADA',
      user_name: 'ada',
      channel_id: 'C0RANDOM',
      team_id: 'T0001',
      team_domain: 'acme',
      trigger_id: slack.triggerIds.at(-1),
    });
    // Bolt checked the bot token with auth.test and knows the bot from it.
    expect(command?.context.botUserId).toBe('UBOT');
    expect(standin.callsTo('auth.test')[0]?.token).toBe(BOT_TOKEN);

    const reply = await standin.waitForResponse((r) => r.url === command?.body.response_url);
    expect(reply.body).toMatchObject({ response_type: 'ephemeral', text: 'Hello <@UADA>' });
    expect(standin.lastOpenedView()).toMatchObject({
      callback_id: 'hello_modal',
      private_metadata: 'C0GENERAL',
    });
    expect(standin.lastCall('views.open')?.token).toBe(BOT_TOKEN);
  });

  it('fails a request the app acknowledges after 3 s, as Slack shows the person an error; slow work after the ack is fine', async () => {
    await expect(slack.command('/slow-ack', '', { user: 'UADA' })).rejects.toThrow(
      /did not acknowledge the command \/slow-ack within 3 s/,
    );
    expect(slack.unacked.map((u) => u.what)).toEqual(['the command /slow-ack']);
    const res = await slack.command('/slow-after-ack', '', { user: 'UADA' });
    expect(res.status).toBe(200);
    expect(slack.unacked).toHaveLength(1);
    slack.unacked.length = 0;
  });

  it('submits the opened view with state.values filled as Slack fills them', async () => {
    await slack.command('/hello', '', { user: 'UBOB' });
    const view = standin.lastOpenedView();
    const res = await slack.submitView(view, { name: 'Bob', colour: 'blue' }, { user: 'UBOB' });
    expect(res.status).toBe(200);
    const [submission] = seenOf('view');
    expect(submission?.body.user.id).toBe('UBOB');
    expect(submission?.body.view).toMatchObject({
      id: view.id,
      hash: view.hash,
      private_metadata: 'C0GENERAL',
    });
    expect(submission?.body.view.state.values).toEqual({
      name_block: { name: { type: 'plain_text_input', value: 'Bob' } },
      colour_block: {
        colour: {
          type: 'static_select',
          selected_option: { text: { type: 'plain_text', text: 'BLUE' }, value: 'blue' },
        },
      },
    });
  });

  it("returns the app's answer to a submission, such as input errors", async () => {
    await slack.command('/hello', '', { user: 'UBOB' });
    const res = await slack.submitView(standin.lastOpenedView(), {}, { user: 'UBOB' });
    expect(res.status).toBe(200);
    expect(res.json).toEqual({ response_action: 'errors', errors: { name_block: 'Say your name' } });
    // Untouched inputs keep their initial values, as in Slack.
    expect(seenOf('view')[0]?.body.view.state.values.colour_block.colour.selected_option.value).toBe('red');
  });

  it('clicks a button in a posted message: block_actions with container, message and action', async () => {
    await slack.command('/poll', '', { user: 'UADA', channel: 'CLUNCH' });
    const [message] = standin.messagesTo('CLUNCH');
    const res = await slack.clickButton(message!, 'Yes', { user: 'UBOB' });
    expect(res.status).toBe(200);
    const [vote] = seenOf('vote');
    expect(vote?.body).toMatchObject({
      type: 'block_actions',
      user: { id: 'UBOB', name: 'bob' },
      container: { type: 'message', message_ts: message?.ts, channel_id: 'CLUNCH' },
      channel: { id: 'CLUNCH' },
      message: { ts: message?.ts, text: 'Lunch?' },
      clicked: { type: 'button', action_id: 'vote', block_id: 'poll', value: 'yes', text: { text: 'Yes' } },
    });
    const reply = await standin.waitForResponse((r) => r.url === vote?.body.response_url);
    expect(reply.body.text).toBe('Voted yes');

    // Slack's retry of the same request: same body, retry headers.
    const again = await res.resend();
    expect(again.status).toBe(200);
    expect(seenOf('vote')[1]?.context).toMatchObject({ retryNum: 1, retryReason: 'http_timeout' });
    expect(seenOf('vote')[1]?.body.trigger_id).toBe(vote?.body.trigger_id);
  });

  it('picks an option in a select menu of a message', async () => {
    await slack.command('/poll', '', { user: 'UADA', channel: 'CPICK' });
    const [message] = standin.messagesTo('CPICK');
    await slack.selectOption(message!, 'when', 'one', { user: 'UADA' });
    const [select] = seenOf('select');
    expect(select?.body.clicked).toMatchObject({
      type: 'static_select',
      action_id: 'when',
      block_id: 'poll',
      selected_option: { value: 'one', text: { text: 'one' } },
    });
    expect(select?.body.state.values.poll.when.selected_option.value).toBe('one');
    expect(() => slack.selectOption(message!, 'when', 'dinner', { user: 'UADA' })).toThrow(
      /no option "dinner"/,
    );
  });

  it('delivers events in their envelope, and retries with the same event id and retry headers', async () => {
    const first = await slack.event(
      { type: 'app_home_opened', user: 'UADA', tab: 'home' },
      { eventId: 'Ev1' },
    );
    expect(first.status).toBe(200);
    const retry = await slack.event(
      { type: 'app_home_opened', user: 'UADA', tab: 'home' },
      { eventId: 'Ev1', retryNum: 2, retryReason: 'http_error' },
    );
    expect(retry.status).toBe(200);
    const [a, b] = seenOf('event');
    expect(a?.body).toMatchObject({ type: 'app_home_opened', user: 'UADA' });
    expect(a?.context.retryNum).toBeUndefined();
    expect(b?.context).toMatchObject({ retryNum: 2, retryReason: 'http_error' });
  });

  it('sends global and message shortcuts', async () => {
    await slack.shortcut({ user: 'UADA', callbackId: 'global_sc' });
    await slack.messageShortcut({
      user: 'UBOB',
      callbackId: 'message_sc',
      message: { ts: '1700000000.000100', user: 'UADA', text: 'Hi' },
      channel: 'CMSG',
    });
    expect(seenOf('shortcut')[0]?.body).toMatchObject({
      type: 'shortcut',
      callback_id: 'global_sc',
      user: { id: 'UADA' },
    });
    expect(seenOf('message_shortcut')[0]?.body).toMatchObject({
      type: 'message_action',
      callback_id: 'message_sc',
      message: { ts: '1700000000.000100', text: 'Hi' },
      channel: { id: 'CMSG' },
    });
  });

  it("answers Slack's URL verification", async () => {
    const res = await slack.urlVerification('challenge-accepted');
    expect(res.json).toEqual({ challenge: 'challenge-accepted' });
  });

  it("sends Slack's app_rate_limited notice as Slack does: its own signed JSON body, with no event envelope", async () => {
    const got: { headers: Record<string, unknown>; body: string }[] = [];
    const recorder = createServer((req, res) => {
      let body = '';
      req.on('data', (c) => {
        body += c;
      });
      req.on('end', () => {
        got.push({ headers: req.headers, body });
        res.end();
      });
    });
    await new Promise<void>((r) => recorder.listen(0, '127.0.0.1', r));
    try {
      const { port } = recorder.address() as AddressInfo;
      const driver = new SlackDriver({
        appUrl: `http://127.0.0.1:${port}`,
        signingSecret: SIGNING_SECRET,
        standin,
      });
      expect((await driver.appRateLimited(1518467820)).status).toBe(200);
    } finally {
      await new Promise((r) => recorder.close(r));
    }
    const [{ headers, body }] = got as [(typeof got)[0]];
    expect(headers['content-type']).toBe('application/json');
    expect(JSON.parse(body)).toEqual({
      token: expect.any(String),
      type: 'app_rate_limited',
      team_id: 'T0001',
      minute_rate_limited: 1518467820,
      api_app_id: expect.stringMatching(/^A/),
    });
    expect(
      isValidSlackRequest({
        signingSecret: SIGNING_SECRET,
        body,
        headers: {
          'x-slack-signature': String(headers['x-slack-signature']),
          'x-slack-request-timestamp': Number(headers['x-slack-request-timestamp']),
        },
      }),
    ).toBe(true);
  });

  it('delivers app_rate_limited to a Bolt app, which verifies it but finds no type in it and never acks it', async () => {
    expect((await slack.appRateLimited(1518467820, { badSignature: true })).status).toBe(401);
    // Bolt alone answers nothing: Slack gets a 404 after 3 s, and the driver says so.
    await expect(slack.appRateLimited(1518467820)).rejects.toThrow(/did not acknowledge a app_rate_limited/);
    expect(seen).toEqual([]);
  });

  it('is refused with 401 when the signature is bad, stale or missing, and nothing runs', async () => {
    const before = standin.responses.length;
    expect((await slack.command('/hello', '', { user: 'UADA', badSignature: true })).status).toBe(401);
    expect((await slack.command('/hello', '', { user: 'UADA', staleTimestamp: true })).status).toBe(401);
    const unsigned = await slack.raw(
      'command=%2Fhello&user_id=UADA&team_id=T0001',
      'application/x-www-form-urlencoded',
    );
    expect(unsigned.status).toBe(401);
    expect(seen).toEqual([]);
    expect(standin.responses.length).toBe(before);
  });
});

describe('the view helpers', () => {
  const plain = (text: string) => ({ type: 'plain_text', text });
  const option = (value: string, text = value.toUpperCase()) => ({ text: plain(text), value });
  const input = (blockId: string, element: SlackObject) => ({
    type: 'input',
    block_id: blockId,
    label: plain(blockId),
    element,
  });
  const view = modal([
    input('b_text', { type: 'plain_text_input', action_id: 'text', initial_value: 'initial' }),
    input('b_email', { type: 'email_text_input', action_id: 'email' }),
    input('b_number', { type: 'number_input', action_id: 'number', is_decimal_allowed: false }),
    input('b_select', { type: 'static_select', action_id: 'select', options: [option('a'), option('b')] }),
    input('b_groups', {
      type: 'static_select',
      action_id: 'groups',
      option_groups: [{ label: plain('G'), options: [option('g1')] }],
    }),
    input('b_external', { type: 'external_select', action_id: 'external' }),
    input('b_multi', {
      type: 'multi_static_select',
      action_id: 'multi',
      options: [option('x'), option('y')],
    }),
    input('b_check', { type: 'checkboxes', action_id: 'check', options: [option('c1'), option('c2')] }),
    input('b_agree', { type: 'checkboxes', action_id: 'agree', options: [option('yes', 'I agree')] }),
    input('b_radio', {
      type: 'radio_buttons',
      action_id: 'radio',
      options: [option('r1'), option('r2')],
      initial_option: option('r2'),
    }),
    input('b_user', { type: 'users_select', action_id: 'user' }),
    input('b_users', { type: 'multi_users_select', action_id: 'users', initial_users: ['UADA'] }),
    input('b_conv', { type: 'conversations_select', action_id: 'conv', initial_conversation: 'C1' }),
    input('b_chan', { type: 'channels_select', action_id: 'chan' }),
    input('b_date', { type: 'datepicker', action_id: 'date' }),
    input('b_file', { type: 'file_input', action_id: 'file' }),
    { type: 'section', text: { type: 'mrkdwn', text: 'Not an input' } },
  ]);

  it('fills state.values by element type, by action id or block id, keeping initial values', () => {
    const filled = fillView(view, {
      email: 'a@b.test',
      b_number: 42,
      select: 'b',
      groups: 'g1',
      external: 'anything',
      multi: ['y', 'x'],
      check: ['c2'],
      agree: true,
      user: 'UBOB',
      chan: 'C9',
      date: '2025-01-31',
      file: { files: [{ id: 'F1' }] },
    });
    expect(filled.state.values).toEqual({
      b_text: { text: { type: 'plain_text_input', value: 'initial' } },
      b_email: { email: { type: 'email_text_input', value: 'a@b.test' } },
      b_number: { number: { type: 'number_input', value: '42' } },
      b_select: { select: { type: 'static_select', selected_option: option('b') } },
      b_groups: { groups: { type: 'static_select', selected_option: option('g1') } },
      b_external: {
        external: {
          type: 'external_select',
          selected_option: { text: plain('anything'), value: 'anything' },
        },
      },
      b_multi: { multi: { type: 'multi_static_select', selected_options: [option('y'), option('x')] } },
      b_check: { check: { type: 'checkboxes', selected_options: [option('c2')] } },
      b_agree: { agree: { type: 'checkboxes', selected_options: [option('yes', 'I agree')] } },
      b_radio: { radio: { type: 'radio_buttons', selected_option: option('r2') } },
      b_user: { user: { type: 'users_select', selected_user: 'UBOB' } },
      b_users: { users: { type: 'multi_users_select', selected_users: ['UADA'] } },
      b_conv: { conv: { type: 'conversations_select', selected_conversation: 'C1' } },
      b_chan: { chan: { type: 'channels_select', selected_channel: 'C9' } },
      b_date: { date: { type: 'datepicker', selected_date: '2025-01-31' } },
      b_file: { file: { type: 'file_input', files: [{ id: 'F1' }] } },
    });
    expect(view).not.toHaveProperty('state');
    const empty = fillView(view, { text: null, select: 'A' });
    expect(empty.state.values.b_text.text.value).toBeNull();
    expect(empty.state.values.b_select.select.selected_option.value).toBe('a');
    expect(empty.state.values.b_email.email.value).toBeNull();
    expect(empty.state.values.b_check.check.selected_options).toEqual([]);
  });

  it('throws clearly for unknown inputs, unknown options and values of the wrong kind', () => {
    expect(() => fillView(view, { nope: 'x' })).toThrow(
      /no input for nope; inputs are b_text\/text, b_email\/email/,
    );
    expect(() => fillView(view, { select: 'z' })).toThrow(
      /input "b_select" \(select\): no option "z"; options are "a"/,
    );
    expect(() => fillView(view, { check: true })).toThrow(/single checkbox; this one has 2/);
    expect(() => fillView(view, { text: ['a'] })).toThrow(/expects a single value/);
    expect(() => fillView(view, { date: '31/01/2025' })).toThrow(/not YYYY-MM-DD/);
  });

  const blocks = [
    { type: 'header', text: plain('Title here') },
    {
      type: 'section',
      block_id: 's1',
      text: { type: 'mrkdwn', text: 'Body *text*' },
      fields: [{ type: 'mrkdwn', text: 'Field one' }],
    },
    {
      type: 'section',
      block_id: 's2',
      text: { type: 'mrkdwn', text: 'With accessory' },
      accessory: { type: 'button', action_id: 'acc', text: plain('Open'), value: 'o' },
    },
    { type: 'context', elements: [{ type: 'mrkdwn', text: 'Small print' }] },
    {
      type: 'actions',
      block_id: 'a1',
      elements: [
        { type: 'button', action_id: 'approve', text: plain('Approve'), value: 'req-1' },
        { type: 'button', action_id: 'approve', text: plain('Approve'), value: 'req-2' },
      ],
    },
  ];

  it('finds buttons in actions blocks and accessories, by label, action id or value', () => {
    expect(findButton(blocks, 'Open')).toMatchObject({ blockId: 's2', action: { action_id: 'acc' } });
    expect(findButton(blocks, { actionId: 'approve', value: 'req-2' }).action.value).toBe('req-2');
    expect(findButton(blocks, { actionId: 'approve' }).action.value).toBe('req-1');
    expect(() => findButton(blocks, 'Reject')).toThrow(
      /no button matching .*Reject.*; buttons: "Open" \(acc=o\), "Approve"/,
    );
  });

  it('reads all visible text of a message or view', () => {
    const text = textOf({ text: 'Fallback', blocks });
    for (const part of [
      'Fallback',
      'Title here',
      'Body *text*',
      'Field one',
      'Open',
      'Small print',
      'Approve',
    ]) {
      expect(text).toContain(part);
    }
    expect(text).not.toContain('req-1');
    expect(textOf(modal(blocks, { submit: plain('Save') }))).toMatch(/^Bench\nSave\n/);
  });
});

describe('the SMTP sink', () => {
  let sink: SmtpSink;
  const send = (to: string, subject: string) =>
    nodemailer
      .createTransport({ host: '127.0.0.1', port: sink.port, secure: false, ignoreTLS: true })
      .sendMail({
        from: 'Roster <roster@acme.test>',
        to,
        subject,
        text: 'Open https://roster.test/a?x=1&y=2. Thanks',
        html: '<p><a href="https://roster.test/b?x=1&amp;y=2">here</a></p>',
      });

  beforeAll(async () => {
    sink = await startSmtpSink();
  });
  afterAll(() => sink.close());

  it('receives mail sent with nodemailer and parses it', async () => {
    expect(sink.url).toBe(`smtp://127.0.0.1:${sink.port}`);
    await send('Ada <ada@example.test>', 'Welcome');
    const mail = await sink.waitForMail((m) => m.subject === 'Welcome');
    // nodemailer quotes display names on the wire.
    expect(mail.toText).toBe('"Ada" <ada@example.test>');
    expect(mail.from?.value).toEqual([{ name: 'Roster', address: 'roster@acme.test' }]);
    expect(mail.text?.trim()).toBe('Open https://roster.test/a?x=1&y=2. Thanks');
    expect(links(mail)).toEqual(['https://roster.test/b?x=1&y=2', 'https://roster.test/a?x=1&y=2']);
    expect(sink.messagesTo('ADA@example.test')).toHaveLength(1);
    expect(sink.messagesTo('bob@example.test')).toHaveLength(0);
    await expect(sink.waitForMail((m) => m.subject === 'Never', 50)).rejects.toThrow(/received 1: .*Welcome/);
  });

  it('refuses connections while stopped, and takes mail again on the same port once started', async () => {
    const port = sink.port;
    await sink.stop();
    await expect(send('ada@example.test', 'While down')).rejects.toThrow(/ECONNREFUSED/);
    await sink.start();
    expect(sink.port).toBe(port);
    await send('ada@example.test', 'Back up');
    expect((await sink.waitForMail((m) => m.subject === 'Back up')).toText).toBe('ada@example.test');
    expect(sink.messages.some((m) => m.subject === 'While down')).toBe(false);
    sink.reset();
    expect(sink.messages).toEqual([]);
  });
});
