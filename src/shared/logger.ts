import { type Logger, pino } from 'pino';

export type { Logger };

/**
 * Slack tokens, API tokens, webhook signing secrets, link tokens in URLs, bearer headers, and the user names, passwords and query
 * strings of URLs (a webhook receiver's or SCIM service's URL may carry a secret there), wherever they
 * appear in a string.
 */
const SECRET_PATTERNS: [RegExp, string][] = [
  [/xox[abposr]-[A-Za-z0-9-]+/g, 'xox?-[redacted]'],
  [/xapp-[A-Za-z0-9-]+/g, 'xapp-[redacted]'],
  [/roster_[A-Za-z0-9_-]{32,}/g, 'roster_[redacted]'],
  // A webhook endpoint's signing secret (Standard Webhooks' form: base64 after the prefix).
  [/whsec_[A-Za-z0-9+/=]+/g, 'whsec_[redacted]'],
  [/\/(invitations|join|confirm)\/[A-Za-z0-9_-]{16,}/g, '/$1/[redacted]'],
  [/(Bearer\s+)[^\s"']+/gi, '$1[redacted]'],
  [/(smtps?:\/\/[^:/\s]+:)[^@\s]+@/g, '$1[redacted]@'],
  [/(postgres(?:ql)?:\/\/[^:/\s]+:)[^@\s]+@/g, '$1[redacted]@'],
  [/(https?:\/\/)[^\s"'/?#@]+@/gi, '$1[redacted]@'],
  // A response_url lets whoever holds it post as Roster into the conversation for 30 minutes: by its host,
  // and by its name in a payload written out as text (Socket Mode's debug lines hold whole payloads).
  [/(https:\/\/hooks\.slack\.com\/)[^\s"'\\]+/g, '$1[redacted]'],
  [/("response_url"\s*:\s*")(?:[^"\\]|\\.)+/g, '$1[redacted]'],
  [/(https?:\/\/[^\s"'?#]+)[?#][^\s"']*/gi, '$1?[redacted]'],
];

export function scrub(text: string): string {
  return SECRET_PATTERNS.reduce((s, [re, to]) => s.replace(re, to), text);
}

function scrubDeep(value: unknown, depth = 0): unknown {
  if (typeof value === 'string') return scrub(value);
  if (depth > 6 || value === null || typeof value !== 'object') return value;
  if (value instanceof Error) {
    const { code } = value as Error & { code?: unknown };
    return { type: value.name, message: scrub(value.message), stack: scrub(value.stack ?? ''), code };
  }
  if (Array.isArray(value)) return value.map((v) => scrubDeep(v, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) out[k] = scrubDeep(v, depth + 1);
  return out;
}

const REDACT = [
  'token',
  '*.token',
  'botToken',
  '*.botToken',
  'appToken',
  '*.appToken',
  'signingSecret',
  '*.signingSecret',
  'secret',
  '*.secret',
  'password',
  '*.password',
  'headers.authorization',
  '*.headers.authorization',
  'headers["x-slack-signature"]',
  '*.headers["x-slack-signature"]',
  'csrf',
  '*.csrf',
  'response_url',
  '*.response_url',
];

/** The root logger: JSON lines, secrets redacted by key and scrubbed from strings. */
export function createLogger(level = 'info', destination?: pino.DestinationStream): Logger {
  return pino(
    {
      level,
      base: { app: 'roster' },
      redact: { paths: REDACT, censor: '[redacted]' },
      serializers: { err: pino.stdSerializers.err },
      formatters: { log: (obj) => scrubDeep(obj) as Record<string, unknown> },
      hooks: {
        logMethod(args, method) {
          method.apply(
            this,
            args.map((a) => (typeof a === 'string' ? scrub(a) : a)) as Parameters<typeof method>,
          );
        },
      },
    },
    // Written synchronously: a line logged just before the process exits (why it stopped, why it could not
    // start) is never lost or put out of order by the exit, and Roster logs a few lines a request at most.
    destination ?? pino.destination({ dest: 1, sync: true }),
  );
}
