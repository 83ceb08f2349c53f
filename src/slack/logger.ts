import { type Logger as BoltLogger, LogLevel } from '@slack/bolt';
import type { Logger } from '../shared/logger.ts';

/**
 * The Web API client logs, at debug level, the whole body of every request and response: users.info and
 * users.list answers hold people's emails and phone numbers. Those lines keep only whether the call
 * worked and its error.
 */
const BODY_LINE = /^(http request result|http request body): ([\s\S]*)$/;

/**
 * Socket Mode's client logs, at debug level, every message it receives and every answer it sends: what
 * people typed in forms (a SCIM token, an email), and answers that show a new secret once. Those lines keep
 * only the message's kind and size.
 */
const SOCKET_LINE =
  /^(Received a message on the WebSocket|Unable to parse an incoming WebSocket message|Calling ack\(\)|Sending a WebSocket message)[^:]*:? ?([\s\S]*)$/;

/** Bolt's own lines around an acknowledgement carry the answer: `ack() response sent (body: {...})`. */
const ACK_BODY = /^([\s\S]*?)\s*\(body: ([\s\S]*)\)$/;

function socketSummary(text: string): Record<string, unknown> {
  const type = /"type"\s*:\s*"([a-z_]+)"/.exec(text)?.[1] ?? /type: ([a-z_]+)/.exec(text)?.[1];
  return { type, bytes: text.length };
}

function bodySummary(json: string): Record<string, unknown> {
  try {
    const body = JSON.parse(json) as Record<string, unknown>;
    return { ok: body.ok, error: body.error, bytes: json.length };
  } catch {
    return { bytes: json.length };
  }
}

/** An argument as text; an Error nested in an object keeps its name and message (JSON makes it `{}`). */
function asText(arg: unknown): string {
  if (typeof arg === 'string') return arg;
  try {
    return JSON.stringify(arg, (_key, value) =>
      value instanceof Error ? { name: value.name, message: value.message } : value,
    );
  } catch {
    return String(arg);
  }
}

/** Bolt's and the Web API client's log lines, through pino (so they are redacted like ours). */
export function boltLogger(logger: Logger): BoltLogger {
  const log = logger.child({ component: 'bolt' });
  let level = LogLevel.INFO;
  // An Error argument goes to pino as `err`, so its message and stack are kept.
  const write = (method: 'debug' | 'info' | 'warn' | 'error', args: unknown[]) => {
    const err = args.find((a): a is Error => a instanceof Error);
    const text = args
      .filter((a) => a !== err)
      .map(asText)
      .join(' ');
    if (err) log[method]({ err }, text || err.message);
    else log[method](text);
  };
  return {
    debug: (...args) => {
      const body = typeof args[0] === 'string' ? BODY_LINE.exec(args[0]) : null;
      const socket =
        !body && typeof args[0] === 'string' ? (SOCKET_LINE.exec(args[0]) ?? ACK_BODY.exec(args[0])) : null;
      if (body) log.debug({ slack: bodySummary(body[2] ?? '') }, `${body[1]} (body not logged)`);
      else if (socket) log.debug({ slack: socketSummary(socket[2] ?? '') }, `${socket[1]} (body not logged)`);
      else write('debug', args);
    },
    info: (...args) => write('info', args),
    warn: (...args) => write('warn', args),
    error: (...args) => write('error', args),
    setLevel: (l) => {
      level = l;
    },
    getLevel: () => level,
    setName: () => {},
  };
}
