import type { AddressInfo } from 'node:net';
import { type AddressObject, type ParsedMail, simpleParser } from 'mailparser';
import { SMTPServer } from 'smtp-server';

/** A received mail, parsed; `toText` is its To header as text (`a@x.test, B <b@y.test>`). */
export type Mail = ParsedMail & { toText: string };

function addressText(field: AddressObject | AddressObject[] | undefined): string {
  return [field ?? []]
    .flat()
    .map((a) => a.text)
    .join(', ');
}

/** How Postfix and spam filters word their answers to a message they refuse. */
const DATA_REFUSALS = {
  451: '4.3.0 Error: queue file write error',
  552: '5.3.4 Message size exceeds fixed limit',
  554: '5.7.1 Message rejected as spam',
} as const;

/**
 * A real SMTP server on 127.0.0.1 that accepts any sender and recipient, without TLS or authentication, and
 * keeps every message parsed. It can be stopped (connections are refused: a mail server that is down) and
 * started again on the same port.
 */
export class SmtpSink {
  readonly messages: Mail[] = [];
  port = 0;
  private server?: SMTPServer;
  private readonly waiters = new Set<() => void>();
  /**
   * Recipients the server refuses, as Postfix does an address it will not take (`550 5.1.1 <address>:
   * Recipient address rejected`, the address in the reply): a failure of one mail while the server stays
   * up for the others.
   */
  refusedRecipients = new Set<string>();
  /**
   * Recipients the server will not take for now, as Postfix greylists (`450 4.2.0 <address>: Recipient
   * address rejected: Greylisted`): a refusal that a later try gets past.
   */
  deferredRecipients = new Set<string>();
  /**
   * Recipients whose mails the server reads and then refuses, answering the message (DATA) with this code as
   * a relay or its spam filter does: 552 (too large) and 554 (spam, policy) for good, 451 for now.
   */
  refusedAtData = new Map<string, 451 | 552 | 554>();

  get url(): string {
    return `smtp://127.0.0.1:${this.port}`;
  }

  /** Listens (again) on 127.0.0.1: on a free port the first time, then on the same port. */
  async start(): Promise<void> {
    if (this.server) return;
    const server = new SMTPServer({
      authOptional: true,
      disabledCommands: ['STARTTLS'],
      logger: false,
      // Idle pooled client connections must not hold stop() up for smtp-server's default 30 s.
      closeTimeout: 500,
      onRcptTo: (address, _session, callback) => {
        if (this.deferredRecipients.has(address.address.toLowerCase())) {
          return callback(
            Object.assign(new Error(`4.2.0 <${address.address}>: Recipient address rejected: Greylisted`), {
              responseCode: 450,
            }),
          );
        }
        if (!this.refusedRecipients.has(address.address.toLowerCase())) return callback();
        // As Postfix words it, enhanced status code and refused address included.
        callback(
          Object.assign(
            new Error(
              `5.1.1 <${address.address}>: Recipient address rejected: User unknown in local recipient table`,
            ),
            { responseCode: 550 },
          ),
        );
      },
      onData: (stream, session, callback) => {
        const refusal = session.envelope.rcptTo
          .map((a) => this.refusedAtData.get(a.address.toLowerCase()))
          .find((code) => code !== undefined);
        if (refusal) {
          // Read to its end first, as a server that refuses a message has taken all of it.
          stream.on('end', () =>
            callback(Object.assign(new Error(DATA_REFUSALS[refusal]), { responseCode: refusal })),
          );
          stream.resume();
          return;
        }
        simpleParser(stream)
          .then((mail) => {
            this.messages.push(Object.assign(mail, { toText: addressText(mail.to) }));
            for (const w of [...this.waiters]) w();
            callback();
          })
          .catch((err: Error) => callback(err));
      },
    });
    await new Promise<void>((ok, fail) => {
      server.server.once('error', fail);
      server.listen(this.port, '127.0.0.1', () => {
        server.server.off('error', fail);
        ok();
      });
    });
    this.server = server;
    this.port = (server.server.address() as AddressInfo).port;
  }

  /** Stops listening and drops open connections, so connections are refused: a mail server that is down. */
  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (server) await new Promise<void>((ok) => server.close(() => ok()));
  }

  close(): Promise<void> {
    return this.stop();
  }

  /** Mails whose To header names `address` (case-insensitive). */
  messagesTo(address: string): Mail[] {
    const wanted = address.toLowerCase();
    return this.messages.filter((m) => m.toText.toLowerCase().includes(wanted));
  }

  /** The first mail matching `predicate`, waiting for one if there is none yet. */
  waitForMail(predicate: (m: Mail) => boolean = () => true, timeoutMs = 10000): Promise<Mail> {
    const hit = this.messages.find(predicate);
    if (hit) return Promise.resolve(hit);
    return new Promise((ok, fail) => {
      const check = () => {
        const found = this.messages.find(predicate);
        if (found) {
          cleanup();
          ok(found);
        }
      };
      const timer = setTimeout(() => {
        cleanup();
        const seen = this.messages.map((m) => `${m.toText}: ${m.subject}`).join('; ');
        fail(new Error(`no matching mail within ${timeoutMs} ms; received ${this.messages.length}: ${seen}`));
      }, timeoutMs);
      const cleanup = () => {
        clearTimeout(timer);
        this.waiters.delete(check);
      };
      this.waiters.add(check);
    });
  }

  reset(): void {
    this.messages.length = 0;
  }
}

const ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', '#39': "'", apos: "'" };
const decodeEntities = (s: string) =>
  s.replace(/&(amp|lt|gt|quot|#39|apos);/g, (_, e: string) => ENTITIES[e] ?? _);

/**
 * The http(s) links in a mail, in order and each once: the HTML's hrefs and any URL in its text or HTML,
 * with HTML entities decoded and sentence punctuation after a URL left out.
 */
export function links(mail: ParsedMail): string[] {
  const html = typeof mail.html === 'string' ? mail.html : '';
  const hrefs = [...html.matchAll(/href\s*=\s*["']([^"']+)["']/gi)].map((m) => m[1] ?? '');
  const bare = `${mail.text ?? ''}\n${html}`.match(/https?:\/\/[^\s"'<>]+/g) ?? [];
  const urls = [...hrefs, ...bare]
    .map((u) => decodeEntities(u).replace(/[.,;:!?)\]]+$/, ''))
    .filter((u) => /^https?:\/\//.test(u));
  return [...new Set(urls)];
}

export async function startSmtpSink(): Promise<SmtpSink> {
  const sink = new SmtpSink();
  await sink.start();
  return sink;
}
