import type { AddressInfo } from 'node:net';
import { createServer, type Socket } from 'node:net';
import nodemailer from 'nodemailer';
import { SMTPServer } from 'smtp-server';
import { createLogger } from '../src/shared/logger.ts';
import { createMailer, MAIL_TIMEOUTS, mailFailure, refusedForGood } from '../src/shared/mailer.ts';
import { type SmtpSink, startSmtpSink } from './support/smtp-sink.ts';

let sink: SmtpSink;
beforeAll(async () => {
  sink = await startSmtpSink();
});
afterAll(() => sink.close());

/** The error sending one mail to `to` through the sink raises. */
async function failureSending(to: string): Promise<unknown> {
  const transport = nodemailer.createTransport({ host: '127.0.0.1', port: sink.port, ignoreTLS: true });
  try {
    await transport.sendMail({ from: 'roster@acme.test', to, subject: 'Hello', text: 'Hello' });
  } catch (err) {
    return err;
  } finally {
    transport.close();
  }
  throw new Error(`sending to ${to} did not fail`);
}

describe('a mail failure, described', () => {
  it('says what the server answered, without the address it repeats', async () => {
    sink.refusedRecipients.add('ana@acme.test');
    try {
      const err = await failureSending('ana@acme.test');
      expect(JSON.stringify({ ...(err as object), message: (err as Error).message })).toContain(
        'ana@acme.test',
      );
      expect(mailFailure(err)).toBe(
        'the mail server refused the recipient (550 5.1.1: Recipient address rejected: User unknown in local recipient table)',
      );
    } finally {
      sink.refusedRecipients.clear();
    }
  });

  it('says the server could not be reached, and any other error without addresses', async () => {
    await sink.stop();
    try {
      expect(mailFailure(await failureSending('bo@acme.test'))).toMatch(
        /^Roster could not reach the mail server \(E[A-Z]+: .*ECONNREFUSED/,
      );
    } finally {
      await sink.start();
    }
    expect(mailFailure(new Error('No mailbox for "bo@acme.test" here'))).toBe(
      'No mailbox for "[address]" here',
    );
  });
});

describe('a refusal for good, told from one worth trying again', () => {
  it('is a 5xx for the recipient; a 4xx, a server that is down and a refused sender are tried again', async () => {
    sink.refusedRecipients.add('typo@acme.test');
    sink.deferredRecipients.add('greylisted@acme.test');
    try {
      const refused = await failureSending('typo@acme.test');
      expect(refusedForGood(refused)).toBe('recipient');
      const deferred = await failureSending('greylisted@acme.test');
      expect(mailFailure(deferred)).toBe(
        'the mail server did not take the recipient for now (450 4.2.0: Recipient address rejected: Greylisted)',
      );
      expect(refusedForGood(deferred)).toBeNull();
    } finally {
      sink.refusedRecipients.clear();
      sink.deferredRecipients.clear();
    }
    await sink.stop();
    try {
      expect(refusedForGood(await failureSending('bo@acme.test'))).toBeNull();
    } finally {
      await sink.start();
    }
    // Roster's own sender address refused: every email fails alike until MAIL_FROM is fixed.
    expect(refusedForGood({ code: 'EENVELOPE', command: 'MAIL FROM', responseCode: 553 })).toBeNull();
  });
});

describe('a message the mail server refuses once it has read it (its answer to DATA)', () => {
  it('is refused for good at 552 and 554, said in words of the message, and tried again at 451', async () => {
    sink.refusedAtData.set('big@acme.test', 552);
    sink.refusedAtData.set('spam@acme.test', 554);
    sink.refusedAtData.set('queue@acme.test', 451);
    try {
      const tooLarge = await failureSending('big@acme.test');
      expect(refusedForGood(tooLarge)).toBe('message');
      expect(refusedForGood(tooLarge)).toBe('message');
      expect(mailFailure(tooLarge)).toBe(
        'the mail server refused the message (552 5.3.4: Message size exceeds fixed limit)',
      );
      const spam = await failureSending('spam@acme.test');
      expect(refusedForGood(spam)).toBe('message');
      expect(mailFailure(spam)).toBe(
        'the mail server refused the message (554 5.7.1: Message rejected as spam)',
      );
      const forNow = await failureSending('queue@acme.test');
      expect(refusedForGood(forNow)).toBeNull();
      expect(refusedForGood(forNow)).toBeNull();
      expect(mailFailure(forNow)).toBe(
        'the mail server did not take the message for now (451 4.3.0: Error: queue file write error)',
      );
    } finally {
      sink.refusedAtData.clear();
    }
  });
});

describe('a mail server that stops answering', () => {
  it('is given up on after the wait SMTP_URL sets, not held for ten minutes', async () => {
    // Two minutes by default, beyond a relay's scan of the message; a short one here.
    expect(MAIL_TIMEOUTS.socketTimeout).toBeLessThan(10 * 60_000);
    // Greets, then reads every command and answers none: a relay whose filter or disk hangs.
    const sockets = new Set<Socket>();
    const stalled = createServer((socket) => {
      sockets.add(socket);
      socket.on('error', () => {});
      socket.write('220 stalled.test ESMTP\r\n');
    });
    await new Promise<void>((ok) => stalled.listen(0, '127.0.0.1', ok));
    const mailer = createMailer({
      smtpUrl: `smtp://127.0.0.1:${(stalled.address() as AddressInfo).port}?socketTimeout=3000`,
      from: 'Roster <roster@acme.test>',
      outboxDir: '/nonexistent',
      logger: createLogger('silent'),
    });
    const started = Date.now();
    try {
      const err = await mailer
        .send({ to: 'ana@acme.test', subject: 'Hello', text: 'Hello', html: '<p>Hello</p>' })
        .then(
          () => null,
          (e: unknown) => e,
        );
      expect(Date.now() - started).toBeLessThan(15_000);
      expect(mailFailure(err)).toMatch(/^the mail server stopped answering \(ETIMEDOUT/);
    } finally {
      mailer.close();
      for (const s of sockets) s.destroy();
      await new Promise((ok) => stalled.close(ok));
    }
  }, 60_000);
});

describe('a mail server that refuses Roster at its greeting', () => {
  it("says so in Roster's words, with the server's codes and reason", async () => {
    const said: string[] = [];
    for (const greeting of [
      '554 5.7.1 Service unavailable; client host [127.0.0.1] blocked',
      '421 4.3.2 Service not available, closing transmission channel',
    ]) {
      const refusing = createServer((socket) => {
        socket.on('error', () => {});
        socket.end(`${greeting}\r\n`);
      });
      await new Promise<void>((ok) => refusing.listen(0, '127.0.0.1', ok));
      const mailer = createMailer({
        smtpUrl: `smtp://127.0.0.1:${(refusing.address() as AddressInfo).port}`,
        from: 'Roster <roster@acme.test>',
        outboxDir: '/nonexistent',
        logger: createLogger('silent'),
      });
      try {
        const err = await mailer
          .send({ to: 'ana@acme.test', subject: 'Hello', text: 'Hello', html: '<p>Hello</p>' })
          .then(
            () => null,
            (e: unknown) => e,
          );
        said.push(mailFailure(err));
      } finally {
        mailer.close();
        await new Promise((ok) => refusing.close(ok));
      }
    }
    expect(said).toEqual([
      "the mail server refused Roster's connection (554 5.7.1: Service unavailable; client host [127.0.0.1] blocked)",
      "the mail server did not take Roster's connection for now (421 4.3.2: Service not available, closing transmission channel)",
    ]);
  });
});

describe("a mail server that refuses Roster's sender address", () => {
  it('says the sender (MAIL_FROM) was refused, not the recipient, whose address is not at fault', async () => {
    // As a relay answers a MAIL_FROM its login may not send as: every email fails alike.
    const relay = new SMTPServer({
      authOptional: true,
      disabledCommands: ['STARTTLS'],
      logger: false,
      onMailFrom: (address, _session, callback) =>
        callback(
          Object.assign(
            new Error(`5.7.1 <${address.address}>: Sender address rejected: not owned by user relay`),
            { responseCode: 553 },
          ),
        ),
    });
    await new Promise<void>((ok) => relay.listen(0, '127.0.0.1', () => ok()));
    const mailer = createMailer({
      smtpUrl: `smtp://127.0.0.1:${(relay.server.address() as AddressInfo).port}`,
      from: 'Roster <roster@acme.test>',
      outboxDir: '/nonexistent',
      logger: createLogger('silent'),
    });
    try {
      const err = await mailer
        .send({ to: 'ana@acme.test', subject: 'Hello', text: 'Hello', html: '<p>Hello</p>' })
        .then(
          () => null,
          (e: unknown) => e,
        );
      expect(mailFailure(err)).toBe(
        "the mail server refused Roster's sender address, MAIL_FROM (553 5.7.1: Sender address rejected: not owned by user relay)",
      );
    } finally {
      mailer.close();
      await new Promise<void>((ok) => relay.close(() => ok()));
    }
  });
});

describe('a mail server that refuses how Roster sends, not the address or the email', () => {
  /** Sends one mail through a relay that answers RCPT TO and the message as given; the error it raises. */
  async function refusal(answers: { rcpt?: [number, string]; data?: [number, string] }): Promise<unknown> {
    const refuse = ([code, said]: [number, string]) => Object.assign(new Error(said), { responseCode: code });
    const relay = new SMTPServer({
      authOptional: true,
      disabledCommands: ['STARTTLS'],
      logger: false,
      onRcptTo: (_address, _session, callback) => callback(answers.rcpt ? refuse(answers.rcpt) : undefined),
      onData: (stream, _session, callback) => {
        stream.resume();
        stream.on('end', () => callback(answers.data ? refuse(answers.data) : null));
      },
    });
    await new Promise<void>((ok) => relay.listen(0, '127.0.0.1', () => ok()));
    const mailer = createMailer({
      smtpUrl: `smtp://127.0.0.1:${(relay.server.address() as AddressInfo).port}`,
      from: 'Roster <roster@acme.test>',
      outboxDir: '/nonexistent',
      logger: createLogger('silent'),
    });
    try {
      return await mailer
        .send({ to: 'ana@acme.test', subject: 'Hello', text: 'Hello', html: '<p>Hello</p>' })
        .then(
          () => null,
          (e: unknown) => e,
        );
    } finally {
      mailer.close();
      await new Promise((ok) => relay.close(() => ok(null)));
    }
  }

  it('tries again a relay that will not relay, saying it is about the mail settings, not the address', async () => {
    const denied = await refusal({ rcpt: [554, '5.7.1 <ana@acme.test>: Relay access denied'] });
    expect(refusedForGood(denied)).toBeNull();
    expect(mailFailure(denied)).toBe(
      'the mail server would not take the recipient under its rules (554 5.7.1: Relay access denied), most often about how Roster sends (the login in SMTP_URL, MAIL_FROM) rather than the address',
    );
    // Without an enhanced code, the words tell: relaying denied is tried again, no such user is not.
    expect(refusedForGood(await refusal({ rcpt: [550, 'Relaying denied'] }))).toBeNull();
    expect(refusedForGood(await refusal({ rcpt: [550, 'No such user here'] }))).toBe('recipient');
    expect(refusedForGood(await refusal({ rcpt: [550, '5.2.1 Mailbox disabled'] }))).toBe('recipient');
  });

  it('tries again an email refused for its sender not being vouched for (DMARC), saying what to check', async () => {
    const dmarc = await refusal({ data: [550, '5.7.26 Unauthenticated email is not accepted (DMARC)'] });
    expect(refusedForGood(dmarc)).toBeNull();
    expect(refusedForGood(dmarc)).toBeNull();
    expect(mailFailure(dmarc)).toBe(
      "the mail server refused the message for how Roster sends it (550 5.7.26: Unauthenticated email is not accepted (DMARC)): check SMTP_URL, MAIL_FROM and the sending domain's SPF, DKIM and DMARC records",
    );
    // Refused as spam, with no word of how it was sent: the email itself, for good.
    expect(refusedForGood(await refusal({ data: [554, '5.7.1 Message rejected as spam'] }))).toBe('message');
  });
});
