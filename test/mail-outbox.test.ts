import { chmod, mkdir, mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { createLogger } from '../src/shared/logger.ts';
import { createMailer } from '../src/shared/mailer.ts';

// Without SMTP_URL, each email is written to the outbox and logged: the log, like every other, holds no
// recipient's address.

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'roster-outbox-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

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

const mail = (to: string) => ({
  to,
  subject: 'Adam Admin invited you to Acme',
  text: 'Accept the invitation',
  html: '<p>Accept the invitation</p>',
});

describe('the outbox', () => {
  it('writes each email as a file and logs it without the recipient’s address', async () => {
    const { logger, lines } = capture();
    const mailer = createMailer({ from: 'Roster <roster@acme.test>', outboxDir: dir, logger });
    await mailer.send(mail('ana.lopez@example.com'));
    mailer.close();
    const [file, ...others] = await readdir(dir);
    expect(others).toEqual([]);
    expect(await readFile(join(dir, file!), 'utf8')).toContain('To: ana.lopez@example.com');
    expect(lines).toHaveLength(1);
    expect(JSON.parse(lines[0]!)).toMatchObject({ msg: 'no SMTP_URL set: email written to the outbox' });
    expect(lines[0]).not.toMatch(/ana\.lopez|ana_lopez|example\.com/);
  });

  it('keeps every email, even two written at once to addresses that look alike in a file name', async () => {
    const { logger } = capture();
    const mailer = createMailer({ from: 'Roster <roster@acme.test>', outboxDir: dir, logger });
    await Promise.all([mailer.send(mail('a+b@example.com')), mailer.send(mail('a_b@example.com'))]);
    mailer.close();
    const files = await readdir(dir);
    expect(files).toHaveLength(2);
    const contents = await Promise.all(files.map((f) => readFile(join(dir, f), 'utf8')));
    expect(contents.some((c) => c.includes('To: a+b@example.com'))).toBe(true);
    expect(contents.some((c) => c.includes('To: a_b@example.com'))).toBe(true);
  });

  it('is readable by the user Roster runs as only: its emails hold working links', async () => {
    const { logger } = capture();
    const outbox = join(dir, 'outbox');
    // One an earlier version made, readable by anyone on the machine.
    await mkdir(outbox, { mode: 0o755 });
    await chmod(outbox, 0o755);
    const mailer = createMailer({ from: 'Roster <roster@acme.test>', outboxDir: outbox, logger });
    await mailer.send(mail('ana@example.com'));
    mailer.close();
    const [file] = await readdir(outbox);
    const mode = async (path: string) => ((await stat(path)).mode & 0o777).toString(8);
    expect({ dir: await mode(outbox), file: await mode(join(outbox, file!)) }).toEqual({
      dir: '700',
      file: '600',
    });
  });
});
