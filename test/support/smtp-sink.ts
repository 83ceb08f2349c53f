import type { AddressInfo } from 'node:net';
import { type ParsedMail, simpleParser } from 'mailparser';
import { SMTPServer } from 'smtp-server';

export type Mail = ParsedMail & { toText: string };

/** A real SMTP server on 127.0.0.1 that keeps and parses every message; it can be stopped and restarted. */
export class SmtpSink {
  readonly messages: Mail[] = [];
  port = 0;
  private server?: SMTPServer;
  private readonly waiters = new Set<() => void>();

  get url(): string {
    return `smtp://127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    const server = new SMTPServer({
      authOptional: true,
      disabledCommands: ['STARTTLS'],
      logger: false,
      onData: (stream, _session, callback) => {
        simpleParser(stream)
          .then((mail) => {
            const toText = [mail.to]
              .flat()
              .map((a) => (a && 'text' in a ? a.text : ''))
              .join(', ');
            this.messages.push(Object.assign(mail, { toText }));
            for (const w of [...this.waiters]) w();
            callback();
          })
          .catch(callback);
      },
    });
    await new Promise<void>((ok, fail) => {
      server.once('error', fail);
      server.listen(this.port, '127.0.0.1', () => ok());
    });
    this.server = server;
    this.port = (server.server.address() as AddressInfo).port;
  }

  /** Stops listening, so connections are refused: a mail server that is down. */
  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (server) await new Promise<void>((ok) => server.close(() => ok()));
  }

  close(): Promise<void> {
    return this.stop();
  }

  messagesTo(address: string): Mail[] {
    return this.messages.filter((m) => m.toText.toLowerCase().includes(address.toLowerCase()));
  }

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
        fail(
          new Error(
            `no matching mail within ${timeoutMs} ms; received ${this.messages.length}: ${this.messages.map((m) => `${m.toText}: ${m.subject}`).join('; ')}`,
          ),
        );
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

/** The http(s) links in a mail's text and HTML. */
export function links(mail: ParsedMail): string[] {
  const text = `${mail.text ?? ''}\n${typeof mail.html === 'string' ? mail.html : ''}`;
  return [...new Set(text.match(/https?:\/\/[^\s"'<>)]+/g) ?? [])];
}

export async function startSmtpSink(): Promise<SmtpSink> {
  const sink = new SmtpSink();
  await sink.start();
  return sink;
}
