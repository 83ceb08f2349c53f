import { Writable } from 'node:stream';
import { WebClient } from '@slack/web-api';
import { createLogger } from '../src/shared/logger.ts';
import { logUnhandledRejections } from '../src/shared/process-errors.ts';
import { boltLogger } from '../src/slack/logger.ts';
import { startSlackStandin } from './support/slack-standin.ts';

function capture(level = 'info') {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk, _enc, done) {
      lines.push(String(chunk));
      done();
    },
  });
  return { logger: createLogger(level, stream), lines };
}

describe('logs', () => {
  it('redact secrets by key and scrub tokens from any text', () => {
    const { logger, lines } = capture();
    logger.info(
      {
        token: 'xoxb-123-456-abc',
        headers: { authorization: 'Bearer xoxb-999' },
        nested: { signingSecret: 's3cret' },
        endpoint: { url: 'https://hooks.example.com/in', secret: 'plainS3cretValue' },
      },
      'calling with xoxb-123-456-abc and xapp-1-A1-2-def, signed with whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw+/Z9=',
    );
    logger.info(
      { url: 'https://roster.example.com/invitations/AbCdEfGhIjKlMnOpQrStUvWxYz0123456789_-abcd' },
      'sent',
    );
    logger.warn(
      {
        err: new Error(
          'failed to fetch https://x.test/join/ZZZZZZZZZZZZZZZZZZZZZZZZZZZZ with Bearer xoxb-777',
        ),
      },
      'oops',
    );
    const out = lines.join('');
    expect(out).not.toMatch(
      /xoxb-\d|xapp-1|s3cret|S3cretValue|MfKQ9r8GKYq|AbCdEfGhIjKlMnOp|ZZZZZZZZZZZZ|xoxb-777/,
    );
    expect(out).toContain('whsec_[redacted]');
    expect(out).toContain('/invitations/[redacted]');
    expect(out).toContain('[redacted]');
    expect(lines).toHaveLength(3);
    const logged = JSON.parse(lines[2]!);
    expect(logged.err.message).toBe('failed to fetch https://x.test/join/[redacted] with Bearer [redacted]');
    expect(logged.err.stack).toContain('logger.test.ts');
  });

  it('scrub read API tokens wherever they appear, and redact the Authorization header', () => {
    const { logger, lines } = capture();
    const token = 'roster_Q2hhbmdlIG1lOiBub3QgYSByZWFsIHRva2VuIGF0IGFsbA';
    logger.info(
      { headers: { authorization: `Bearer ${token}` }, query: `cursor=x&t=${token}` },
      `got ${token}`,
    );
    logger.error({ err: new Error(`refused ${token}`) }, 'failed');
    const out = lines.join('');
    expect(out).not.toContain('Q2hhbmdlIG1l');
    expect(out).toContain('roster_[redacted]');
    expect(JSON.parse(lines[1]!).err.message).toBe('refused roster_[redacted]');
    // Roster's own database functions are named roster_…; an error naming one stays readable.
    logger.error({ err: new Error('in roster_check_seat_limit()') }, 'failed');
    expect(JSON.parse(lines[2]!).err.message).toBe('in roster_check_seat_limit()');
  });

  it('keep no response_url, by its host, its key, or inside a Slack payload written out as text', () => {
    const { logger, lines } = capture('debug');
    const secret = 'T0001/1234567890/ZmFrZS1yZXNwb25zZS11cmw';
    logger.debug(
      `Received a message on the WebSocket: {"payload":{"response_url":"https:\\/\\/hooks.slack.com\\/commands\\/${secret.replaceAll('/', '\\/')}","command":"/invite"}}`,
    );
    logger.info({ body: { response_url: `https://roster-standin.test/response/${secret}` } }, 'posted');
    logger.warn(`could not post to https://hooks.slack.com/actions/${secret}`);
    const out = lines.join('');
    expect(out).not.toContain('ZmFrZS1yZXNwb25zZS11cmw');
    expect(JSON.parse(lines[0]!).msg).toContain('"response_url":"[redacted]","command":"/invite"');
    expect(JSON.parse(lines[2]!).msg).toBe('could not post to https://hooks.slack.com/[redacted]');
  });

  it('keep a URL’s scheme, host and path but not its query string, where a receiver’s token may be', () => {
    const { logger, lines } = capture();
    logger.warn(
      { url: 'https://hooks.example.com/in/roster?token=s3cr3t-hook&x=1' },
      'no answer from https://hooks.example.com/in/roster?token=s3cr3t-hook',
    );
    const out = lines.join('');
    expect(out).not.toContain('s3cr3t-hook');
    const logged = JSON.parse(lines[0]!);
    expect(logged.url).toBe('https://hooks.example.com/in/roster?[redacted]');
    expect(logged.msg).toBe('no answer from https://hooks.example.com/in/roster?[redacted]');
  });

  it('keep no user name or password of an http(s) URL, as a SCIM service URL saved long ago may hold', () => {
    const { logger, lines } = capture();
    logger.warn(
      {
        url: 'https://provisioner:hunter2@app.example.com/scim/v2',
        err: new Error('GET http://ops@127.0.0.1:3001/scim/v2/Users failed'),
        scim: { token: 'scim-s3cret' },
      },
      'no answer from HTTPS://provisioner:hunter2@app.example.com/scim/v2?key=abc123 with Bearer scim-s3cret',
    );
    const out = lines.join('');
    expect(out).not.toMatch(/hunter2|provisioner|ops@|abc123|scim-s3cret/);
    const logged = JSON.parse(lines[0]!);
    expect(logged.url).toBe('https://[redacted]@app.example.com/scim/v2');
    expect(logged.err.message).toBe('GET http://[redacted]@127.0.0.1:3001/scim/v2/Users failed');
    expect(logged.msg).toBe(
      'no answer from HTTPS://[redacted]@app.example.com/scim/v2?[redacted] with Bearer [redacted]',
    );
    // An address after a path is not a user name.
    logger.info('see https://example.com/people/@ana and mailto:ana@example.com');
    expect(JSON.parse(lines[1]!).msg).toBe('see https://example.com/people/@ana and mailto:ana@example.com');
  });

  it('keep the message and stack of the errors Bolt and the Web API client log', () => {
    const { logger, lines } = capture();
    const bolt = boltLogger(logger);
    bolt.error('An unhandled error occurred while Bolt processed an event', new Error('views.open failed'));
    bolt.warn('http request failed', { error: new Error('socket hang up') });
    const first = JSON.parse(lines[0]!);
    expect(first.msg).toBe('An unhandled error occurred while Bolt processed an event');
    expect(first.err.message).toBe('views.open failed');
    expect(first.err.stack).toContain('logger.test.ts');
    expect(JSON.parse(lines[1]!).msg).toContain('socket hang up');
  });

  it("never write Slack's answers with people's emails and phone numbers, even at debug level", async () => {
    const standin = await startSlackStandin({
      members: [{ id: 'UANA', name: 'ana', email: 'ana.private@acme.test', phone: '+1 555 0199' }],
      botToken: 'xoxb-test',
    });
    try {
      const { logger, lines } = capture('debug');
      const client = new WebClient('xoxb-test', {
        slackApiUrl: standin.apiUrl,
        logger: boltLogger(logger),
        retryConfig: { retries: 0 },
      });
      const info = await client.users.info({ user: 'UANA' });
      expect(info.user?.profile?.email).toBe('ana.private@acme.test');
      await client.chat.postMessage({ channel: 'UANA', text: 'Invited bo.private@acme.test' });
      const out = lines.join('');
      expect(out).toContain('http request result (body not logged)');
      expect(out).not.toMatch(/ana\.private|0199|bo\.private/);
    } finally {
      await standin.close();
    }
  });

  it('record promises rejected with nobody listening', () => {
    const { logger, lines } = capture();
    const stop = logUnhandledRejections(logger);
    try {
      process.emit('unhandledRejection', new Error('nobody awaited this'), Promise.resolve());
    } finally {
      stop();
    }
    const logged = JSON.parse(lines[0]!);
    expect(logged).toMatchObject({ level: 50, msg: 'unhandled promise rejection' });
    expect(logged.err.message).toBe('nobody awaited this');
    expect(process.listeners('unhandledRejection')).not.toContain(stop);
  });
});
