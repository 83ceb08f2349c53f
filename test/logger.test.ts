import { Writable } from 'node:stream';
import { createLogger } from '../src/shared/logger.ts';

function capture() {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk, _enc, done) {
      lines.push(String(chunk));
      done();
    },
  });
  return { logger: createLogger('info', stream), lines };
}

describe('logs', () => {
  it('redact secrets by key and scrub tokens from any text', () => {
    const { logger, lines } = capture();
    logger.info(
      {
        token: 'xoxb-123-456-abc',
        headers: { authorization: 'Bearer xoxb-999' },
        nested: { signingSecret: 's3cret' },
      },
      'calling with xoxb-123-456-abc and xapp-1-A1-2-def',
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
    expect(out).not.toMatch(/xoxb-\d|xapp-1|s3cret|AbCdEfGhIjKlMnOp|ZZZZZZZZZZZZ|xoxb-777/);
    expect(out).toContain('/invitations/[redacted]');
    expect(out).toContain('[redacted]');
    expect(lines).toHaveLength(3);
    const logged = JSON.parse(lines[2]!);
    expect(logged.err.message).toBe('failed to fetch https://x.test/join/[redacted] with Bearer [redacted]');
    expect(logged.err.stack).toContain('logger.test.ts');
  });
});
