import { randomBytes } from 'node:crypto';
import { chmod, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import nodemailer from 'nodemailer';
import type { Logger } from './logger.ts';
import { makeDirectory } from './make-directory.ts';

export type Mail = {
  to: string;
  subject: string;
  text: string;
  html: string;
  /** Where replies go, when not to MAIL_FROM; a name is encoded by the mailer, whatever it holds. */
  replyTo?: string | { name: string; address: string };
};

export interface Mailer {
  send(mail: Mail): Promise<{ messageId: string }>;
  close(): void;
}

/**
 * How long Roster waits on the mail server: 15 s to connect and for its greeting, and two minutes for each
 * answer. Nodemailer's own wait for an answer is ten minutes, so a relay that hung held each delivery (and
 * with four of them, every delivery, DMs included) that long before it was retried. The answer to a whole
 * message comes after the relay has scanned it, which can take a while: a wait shorter than its scan would
 * count a message the relay went on to take as failed, and send it again. SMTP_URL's query changes them
 * (`?socketTimeout=300000`).
 */
export const MAIL_TIMEOUTS = { connectionTimeout: 15_000, greetingTimeout: 15_000, socketTimeout: 120_000 };

/** Sends through SMTP_URL, or, with none set, writes each email as an .eml file under the outbox. */
export function createMailer(opts: {
  smtpUrl?: string;
  from: string;
  outboxDir: string;
  logger: Logger;
}): Mailer {
  if (opts.smtpUrl) {
    const transport = nodemailer.createTransport(
      { ...MAIL_TIMEOUTS, url: opts.smtpUrl },
      { from: opts.from },
    );
    return {
      async send(mail) {
        const info = await transport.sendMail({ from: opts.from, ...mail });
        return { messageId: info.messageId };
      },
      close: () => transport.close(),
    };
  }
  const transport = nodemailer.createTransport({ streamTransport: true, buffer: true, newline: 'unix' });
  return {
    async send(mail) {
      const info = await transport.sendMail({ from: opts.from, ...mail });
      // Its emails hold working links (an invitation's, a join's): for the user Roster runs as only.
      await makeDirectory(opts.outboxDir, 0o700);
      // An outbox made before it was kept private is made private too.
      await chmod(opts.outboxDir, 0o700);
      // Named by time and a random part, not by the recipient: the name is logged, and no address may
      // be; two emails written in the same millisecond get two files.
      const stamp = new Date().toISOString().replace(/[:.]/g, '-');
      const file = join(opts.outboxDir, `${stamp}-${randomBytes(4).toString('hex')}.eml`);
      await writeFile(file, info.message as Buffer, { flag: 'wx', mode: 0o600 });
      opts.logger.info({ subject: mail.subject, file }, 'no SMTP_URL set: email written to the outbox');
      return { messageId: info.messageId };
    },
    close: () => transport.close(),
  };
}

/**
 * An error's text with the email addresses in it replaced, for a log or a person who is not their owner:
 * mail servers repeat the address they refuse (`550 5.1.1 <ana@x.test>: Recipient address rejected`).
 */
export function withoutAddresses(text: string): string {
  return text.replace(/[^\s<>@"']+@[^\s<>@"']+/g, '[address]');
}

/**
 * A failed delivery's error as the job queue logs and stores it: its message and stack without email
 * addresses (a mail server repeats the one it refuses; a database error can quote its query's values), and
 * none of its other fields (a mail error's `rejected` and `response` hold the address whole).
 */
export function withoutAddressesError(err: unknown): Error {
  const e = err instanceof Error ? err : new Error(String(err));
  const clean = new Error(withoutAddresses(e.message));
  clean.name = e.name;
  clean.stack = e.stack && withoutAddresses(e.stack);
  const code = (e as { code?: unknown }).code;
  return typeof code === 'string' ? Object.assign(clean, { code }) : clean;
}

type SmtpError = Error & {
  code?: string;
  command?: string;
  response?: string;
  responseCode?: number;
  /** Which of nodemailer's waits ran out, for ETIMEDOUT: `SOCKET_TIMEOUT`, `GREETING_TIMEOUT`, … */
  timeoutType?: string;
};

/** A reply's enhanced status code (RFC 3463) and its words: `550 5.1.1 User unknown` → `5.1.1`, `User unknown`. */
function replyOf(e: SmtpError): { code: string | null; status: string | null; words: string } {
  const response = typeof e.response === 'string' ? e.response.trim() : '';
  const m = /^(\d{3})[ -](?:(\d\.\d{1,3}\.\d{1,3})\s+)?([\s\S]*)$/.exec(response);
  return { code: m?.[1] ?? null, status: m?.[2] ?? null, words: m ? (m[3] ?? '') : response };
}

/** Words a server without enhanced codes says of an address that has no mailbox. */
const NO_MAILBOX =
  /user unknown|unknown user|no such (user|mailbox|recipient)|does not exist|unknown recipient|invalid recipient|recipient not found|mailbox (unavailable|not found)/i;

/**
 * A refusal that is about how Roster sends rather than what: relaying denied to a login it does not know,
 * a sender the domain's SPF, DKIM or DMARC does not vouch for, credentials refused. A fixed SMTP_URL,
 * MAIL_FROM or DNS record makes the same email go through.
 */
const SENDING_SETUP = /relay|authenticat|\bspf\b|\bdkim\b|\bdmarc\b/i;
const isSetupStatus = (status: string | null) => !!status && /^5\.7\.(2[3-7]|[089])$/.test(status);

/**
 * What the mail server refused for good, if it did: the recipient, an address with no mailbox (a 5xx reply to
 * RCPT TO whose status is 5.1.x, `550 5.1.1 User unknown`, most often a mistyped address, or 5.2.1, a mailbox
 * turned off), or the message itself (a 5xx reply to the message it was sent: `552 5.3.4 Message too large`,
 * `554 5.7.1 Rejected as spam`). Sending the same mail again is refused the same way, so a delivery ends at
 * once rather than after hours of retries. Tried again: a refusal for now (4xx: greylisting, a full mailbox,
 * a full queue), a server that could not be reached or stopped answering, a refusal of Roster's own sender
 * address, and a refusal of how Roster sends (relaying denied, SPF, DKIM or DMARC, at RCPT TO as at the
 * message: `554 5.7.1 Relay access denied`): every email fails alike until the mail settings are fixed, and
 * then the retries go through without anyone pressing Resend.
 */
export function refusedForGood(err: unknown): 'recipient' | 'message' | null {
  const e = (err ?? {}) as SmtpError;
  if (typeof e.responseCode !== 'number' || e.responseCode < 500 || e.responseCode > 599) return null;
  const { status, words } = replyOf(e);
  if (e.command === 'RCPT TO') {
    const noMailbox = status ? /^5\.1\.\d+$/.test(status) || status === '5.2.1' : NO_MAILBOX.test(words);
    return noMailbox ? 'recipient' : null;
  }
  if (e.code === 'EMESSAGE') {
    return isSetupStatus(status) || SENDING_SETUP.test(words) ? null : 'message';
  }
  return null;
}

/**
 * What went wrong sending an email, in words that carry no email address, for logs, a job's stored output
 * and people other than the recipient: e.g. `the mail server refused the recipient (550 5.1.1: Recipient
 * address rejected: User unknown in local recipient table)`.
 */
export function mailFailure(err: unknown): string {
  const e = (err ?? {}) as SmtpError;
  // `550 5.1.1 <ana@x.test>: Recipient address rejected` → `550 5.1.1` and `Recipient address rejected`.
  const reply = replyOf(e);
  const status = reply.code
    ? [reply.code, reply.status].filter(Boolean).join(' ')
    : e.responseCode
      ? String(e.responseCode)
      : '';
  const said =
    reply.code && reply.words
      ? withoutAddresses(reply.words)
          .replace(/^<?\[address\]>?:?\s*/, '')
          .replace(/\s+/g, ' ')
          .slice(0, 200)
      : '';
  const detail = status ? ` (${[status, said].filter(Boolean).join(': ')})` : '';
  const code = e.code ?? '';
  // Nodemailer calls this one EENVELOPE too, yet it is Roster's own address (a relay whose login may not
  // send as MAIL_FROM): every email fails alike, and the recipient's address is not at fault.
  if (e.responseCode && e.command === 'MAIL FROM') {
    return e.responseCode >= 500
      ? `the mail server refused Roster's sender address, MAIL_FROM${detail}`
      : `the mail server did not take Roster's sender address, MAIL_FROM, for now${detail}`;
  }
  if (e.responseCode && (e.command === 'RCPT TO' || code === 'EENVELOPE')) {
    if (e.responseCode < 500) return `the mail server did not take the recipient for now${detail}`;
    return refusedForGood(e) || e.command !== 'RCPT TO'
      ? `the mail server refused the recipient${detail}`
      : `the mail server would not take the recipient under its rules${detail}, most often about how Roster sends (the login in SMTP_URL, MAIL_FROM) rather than the address`;
  }
  if (e.responseCode && code === 'EMESSAGE') {
    if (e.responseCode < 500) return `the mail server did not take the message for now${detail}`;
    return refusedForGood(e)
      ? `the mail server refused the message${detail}`
      : `the mail server refused the message for how Roster sends it${detail}: check SMTP_URL, MAIL_FROM and the sending domain's SPF, DKIM and DMARC records`;
  }
  // Its greeting was a refusal (`554 5.7.1 … client host blocked`, `421 4.3.2 Service not available`).
  if (e.responseCode && code === 'EPROTOCOL' && e.command === 'CONN') {
    return e.responseCode >= 500
      ? `the mail server refused Roster's connection${detail}`
      : `the mail server did not take Roster's connection for now${detail}`;
  }
  if (code === 'EAUTH') return `the mail server refused Roster's login${detail}`;
  const message = withoutAddresses(e.message ?? String(err)).slice(0, 200);
  // Every wait that ran out is ETIMEDOUT; only this one is a server that was reached and then went quiet.
  if (code === 'ETIMEDOUT' && e.timeoutType === 'SOCKET_TIMEOUT') {
    return `the mail server stopped answering (${code}: ${message})`;
  }
  if (['ECONNECTION', 'ESOCKET', 'ETIMEDOUT', 'EDNS', 'ETLS'].includes(code)) {
    return `Roster could not reach the mail server (${code}: ${message})`;
  }
  return code ? `${code}: ${message}` : message;
}
