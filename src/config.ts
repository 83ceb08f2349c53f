import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { domainToASCII } from 'node:url';
import { parseEnv } from 'node:util';
import addressparser from 'nodemailer/lib/addressparser';
import { z } from 'zod';

const README_SLACK_APP = 'README.md, section "Create the Slack app" (the app is created from manifest.yml)';

const SIGNING_SECRET_HELP =
  'copy the Signing Secret from the app\'s "Basic Information" page (32 characters, 0-9 and a-f)';

const BOT_TOKEN_HELP = 'copy the Bot User OAuth Token from the app\'s "OAuth & Permissions" page';

/** A value repeated in a message, cut short; only for settings that hold no secret. */
const shown = (value: string) => JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);

/** A whole number from `min` to `max`; anything else is refused as not being `what`, repeating the value. */
function wholeNumber(what: string, min: number, max: number) {
  return z.string().transform((value, ctx) => {
    const n = /^\d+$/.test(value.trim()) ? Number(value.trim()) : Number.NaN;
    if (n >= min && n <= max) return n;
    // `continue`: the checks across settings below still run, so one message names every problem.
    ctx.addIssue({ code: 'custom', message: `must be ${what}, got ${shown(value)}`, continue: true });
    return z.NEVER;
  });
}

/**
 * An http(s) URL that Roster adds paths to, so it must be the base alone: no query string or fragment (they
 * would land before the paths) and no user name or password (the URL is shown and logged). The value is
 * not repeated in the message, as it might hold a secret.
 */
function baseUrl(example: string) {
  return z.string().superRefine((value, ctx) => {
    const problem = baseUrlProblem(value, example);
    if (problem) ctx.addIssue({ code: 'custom', message: problem });
  });
}

/**
 * A base URL as links and cookies need it: as the URL standard writes it (spaces around it dropped, scheme
 * and host in lower case, an international host and the path in ASCII), without a trailing slash, as
 * Roster adds paths after it. Checked by {@link baseUrlProblem} first.
 */
function normalUrl(value: string): string {
  return new URL(value).href.replace(/\/+$/, '');
}

function baseUrlProblem(value: string, example: string): string | null {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return `must be an http(s) URL like ${example}`;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return `must be an http(s) URL like ${example}`;
  if (url.username || url.password) return `must not hold a user name or password: set it like ${example}`;
  if (url.href.includes('?') || url.href.includes('#')) {
    return `must not have a ?query or #fragment, since Roster adds paths after it: set it like ${example}`;
  }
  return null;
}

/** Why a SCIM base URL cannot be used (see {@link scimUrlFault}). */
export type ScimUrlFault = 'not_url' | 'insecure' | 'too_long' | 'credentials' | 'query';

/** The longest SCIM base URL Roster keeps. */
export const MAX_SCIM_URL = 500;

/**
 * Why a URL cannot be a SCIM base URL, or null; the one rule for the connect form, SCIM_URL and connections
 * saved before it. The token travels with every call, so plain http only to this machine. Roster appends
 * paths (`/Users`, `/ServiceProviderConfig`) to the URL, so a query string or fragment would end up before
 * them and break every call; a user name or password would be kept and shown as part of the URL.
 */
export function scimUrlFault(raw: string): ScimUrlFault | null {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return 'not_url';
  }
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && isLocal(url.toString()))) return 'insecure';
  if (raw.length > MAX_SCIM_URL) return 'too_long';
  if (url.username || url.password) return 'credentials';
  // `href`, not `search`/`hash`: a bare "?" or "#" leaves those empty but stays in the URL.
  if (url.href.includes('?') || url.href.includes('#')) return 'query';
  return null;
}

const SCIM_URL_EXAMPLE = 'https://app.example.com/scim/v2';

/** SCIM_URL, checked as the connect form checks a URL; the value is not repeated (it might hold a secret). */
const scimUrl = z.string().superRefine((value, ctx) => {
  const fault = scimUrlFault(value);
  if (!fault) return;
  const message =
    fault === 'not_url' || !/^https?:\/\//i.test(value)
      ? `must be an http(s) URL like ${SCIM_URL_EXAMPLE}`
      : fault === 'insecure'
        ? `must start with https:// (plain http:// only to this machine: localhost or 127.0.0.1), since Roster sends SCIM_TOKEN with every call: set it like ${SCIM_URL_EXAMPLE}`
        : fault === 'too_long'
          ? `must be at most ${MAX_SCIM_URL} characters`
          : (baseUrlProblem(value, SCIM_URL_EXAMPLE) ?? `must be a base URL like ${SCIM_URL_EXAMPLE}`);
  ctx.addIssue({ code: 'custom', message });
});

/** One of `values`; the message repeats what it got. A refinement, so the other checks still run. */
function oneOf<const T extends string>(values: readonly T[], what: string) {
  // In any case: `LOG_LEVEL=INFO` and `TRUST_PROXY=True` mean what they say.
  return z
    .string()
    .refine((value) => (values as readonly string[]).includes(value.toLowerCase()), {
      error: (issue) => `must be ${what}, got ${shown(String(issue.input))}`,
    })
    .transform((value) => value.toLowerCase() as T);
}

const MAIL_FROM_EXAMPLE = 'like roster@example.com or Roster <roster@example.com>';

/**
 * Why MAIL_FROM cannot be Roster's sender, read as nodemailer reads it (its address parser), or null. That
 * parser takes much that is a typo (an unclosed `<`, two addresses, a name alone) and sends it on, where the
 * mail server refuses every email or sends them from an address nobody meant.
 */
function mailFromProblem(value: string): string | null {
  const unquoted = value.replace(/"(?:[^"\\]|\\.)*"/g, '""');
  const opened = (unquoted.match(/</g) ?? []).length;
  const closed = (unquoted.match(/>/g) ?? []).length;
  if (opened !== closed || opened > 1 || /^[^<]*>|<[^>]*$/.test(unquoted)) {
    return `must be one email address, ${MAIL_FROM_EXAMPLE}: its < and > do not enclose an address, got ${shown(value)}`;
  }
  const parsed = addressparser(value);
  const addresses = parsed.flatMap((a) => ('group' in a ? a.group : [a]));
  if (parsed.length > 1 || addresses.length > 1) {
    return `must be one email address, ${MAIL_FROM_EXAMPLE}, got ${addresses.length || parsed.length} of them in ${shown(value)}`;
  }
  const address = addresses[0]?.address ?? '';
  if ('group' in (parsed[0] ?? {}) || !/^[^\s@<>",;:()[\]\\]+@[^\s@<>",;:()[\]\\]+$/.test(address)) {
    return `must be an email address, ${MAIL_FROM_EXAMPLE}`;
  }
  // What every mail server takes as a sender: plain ASCII (another script needs SMTPUTF8, which mail servers
  // may refuse, and arrives garbled where they do not), and a domain of whole labels.
  const at = address.lastIndexOf('@');
  const local = address.slice(0, at);
  const domain = address.slice(at + 1);
  if (!/^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*$/.test(local)) {
    return `must be an email address of plain ASCII letters, digits and dots before its @, ${MAIL_FROM_EXAMPLE}, got ${shown(address)}`;
  }
  const label = '[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?';
  if (!new RegExp(`^${label}(?:\\.${label})*$`).test(domain)) {
    const ascii = domainToASCII(domain);
    return ascii && ascii !== domain.toLowerCase() && !ascii.endsWith('.')
      ? `must have its domain in ASCII, as mail servers take it: ${shown(`${local}@${ascii}`)} rather than ${shown(address)}`
      : `must be an email address whose domain is whole names joined by single dots (no dot at its start or end), ${MAIL_FROM_EXAMPLE}, got ${shown(address)}`;
  }
  return null;
}

const UNREADABLE_URL =
  'and this one cannot be read as one: check that its port is a number up to 65535, and write a #, / or ? in the user name or password percent-encoded (%23, %2F, %3F)';

/**
 * A connection URL (DATABASE_URL, SMTP_URL): its scheme, and that it reads as a URL at all, as its client
 * would read it later (a port like 99999 or a # in the password failed deep in the client with a stack trace).
 * The value is never repeated: it holds a password.
 */
function connectionUrl(scheme: RegExp, what: string, read: (value: string) => string | null) {
  return z.string().superRefine((value, ctx) => {
    const problem = scheme.test(value) ? read(value) : `must be ${what}`;
    if (problem) ctx.addIssue({ code: 'custom', message: problem });
  });
}

/** `value` as a URL, or null when it is not one. */
function asUrl(value: string): URL | null {
  try {
    return new URL(value);
  } catch {
    return null;
  }
}

/** DATABASE_URL read as pg reads it: spaces and stray % encoded first, and a host left empty for a socket. */
function databaseUrlProblem(value: string): string | null {
  const encoded = /[ ]|%[^a-f0-9]|%[a-f0-9][^a-f0-9]/i.test(value)
    ? encodeURI(value).replace(/%25(\d\d)/g, '%$1')
    : value;
  const url = asUrl(encoded) ?? asUrl(encoded.replace('@/', '@localhost/'));
  if (!url)
    return `must be a postgres:// URL like postgres://user:password@host:5432/roster, ${UNREADABLE_URL}`;
  if (!url.pathname.replace(/^\/+/, '')) {
    return 'must name the database at its end, like postgres://user:password@host:5432/roster';
  }
  return null;
}

const SMTP_URL_EXAMPLE = 'smtp://user:password@mail.example.com:587';

/** SMTP_URL as nodemailer reads it, which also needs the mail server's host. */
function smtpUrlProblem(value: string): string | null {
  const url = asUrl(value);
  if (!url) return `must be an smtp:// or smtps:// URL like ${SMTP_URL_EXAMPLE}, ${UNREADABLE_URL}`;
  if (!url.hostname) return `must name the mail server, like ${SMTP_URL_EXAMPLE}`;
  return null;
}

/** The settings that say where the database is; migrations need only these. */
const databaseFields = {
  DATABASE_URL: connectionUrl(/^postgres(ql)?:\/\//, 'a postgres:// URL', databaseUrlProblem).optional(),
  DATA_DIR: z.string().min(1).default('.data'),
  LOG_LEVEL: oneOf(
    ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'],
    'one of trace, debug, info, warn, error, fatal or silent',
  ).default('info'),
};

/**
 * Whether a secret or token is plain ASCII, as Slack makes them; true too when it holds spaces or quotes,
 * which are said on their own. Another character (the README's placeholder `…`, a dash a rich-text editor
 * put in) made every call to Slack fail with an error that blamed the network.
 */
const APP_TOKEN_HELP =
  'paste the whole app-level token from Basic Information > App-Level Tokens, or leave it empty to run over HTTP';
const plainOrSaid = (v: string) => /[\s"']/.test(v) || /^[\x21-\x7e]*$/.test(v);
const NOT_PLAIN =
  'holds a character that is not plain ASCII (a placeholder like … left in, or a paste from a rich-text editor)';

/** Every setting, each read from the environment variable of its name. */
const fields = {
  ...databaseFields,
  // Slack's signing secrets are 32 hex characters; only what is surely something else is refused (the bot or
  // app token pasted in its place, or a value copied with spaces or quotes), never repeating the value.
  SLACK_SIGNING_SECRET: z
    .string({ error: 'is missing' })
    .min(1, 'is missing')
    .refine((v) => !/^(xox[a-z]|xapp)-/.test(v), {
      error: `is a token, not the signing secret: ${SIGNING_SECRET_HELP}`,
    })
    .refine((v) => !/[\s"']/.test(v), { error: `must not hold spaces or quotes: ${SIGNING_SECRET_HELP}` })
    .refine(plainOrSaid, { error: `${NOT_PLAIN}: ${SIGNING_SECRET_HELP}` }),
  SLACK_BOT_TOKEN: z
    .string({ error: 'is missing' })
    .min(1, 'is missing')
    .startsWith('xoxb-', 'must be a bot token (it starts with xoxb-)')
    // .env.example's placeholder is the bare prefix: left as it is, it is a missing token, not a bad one.
    .refine((v) => v !== 'xoxb-', {
      error: `is missing (only its xoxb- beginning is set): ${BOT_TOKEN_HELP}`,
    })
    .refine((v) => !/[\s"']/.test(v), { error: `must not hold spaces or quotes: ${BOT_TOKEN_HELP}` })
    .refine(plainOrSaid, { error: `${NOT_PLAIN}: ${BOT_TOKEN_HELP}` }),
  SLACK_APP_TOKEN: z
    .string()
    .startsWith('xapp-', 'must be an app-level token (it starts with xapp-)')
    // The prefix alone is an unfinished paste, not a token: Socket Mode would only fail to connect.
    .refine((v) => v !== 'xapp-', {
      error:
        'is missing (only its xapp- beginning is set): paste the whole app-level token from Basic Information > App-Level Tokens, or leave it empty to run over HTTP',
    })
    .refine((v) => !/[\s"']/.test(v), { error: `must not hold spaces or quotes: ${APP_TOKEN_HELP}` })
    .refine(plainOrSaid, { error: `${NOT_PLAIN}: ${APP_TOKEN_HELP}` })
    .optional(),
  SLACK_API_URL: baseUrl('https://slack.com/api/').default('https://slack.com/api/'),
  SMTP_URL: connectionUrl(/^smtps?:\/\//, 'an smtp:// or smtps:// URL', smtpUrlProblem).optional(),
  MAIL_FROM: z
    .string()
    .superRefine((value, ctx) => {
      const problem = mailFromProblem(value);
      if (problem) ctx.addIssue({ code: 'custom', message: problem });
    })
    .default('Roster <roster@localhost>'),
  PUBLIC_URL: baseUrl('https://roster.example.com').optional(),
  PORT: wholeNumber('a port number (1-65535, or 0 for any free port)', 0, 65535).default(3000),
  ROSTER_REQUIRE_DATABASE_URL: z.string().optional(),
  NODE_ENV: z.string().optional(),
  STOP_GRACE_SECONDS: wholeNumber('a whole number of seconds from 0 to 60', 0, 60).default(5),
  STOP_DRAIN_SECONDS: wholeNumber('a whole number of seconds from 0 to 300', 0, 300).default(0),
  TRUST_PROXY: oneOf(['true', 'false', '1', '0'], 'true or false')
    .default('false')
    .transform((v) => v === 'true' || v === '1'),
  SCIM_URL: scimUrl.optional(),
  SCIM_TOKEN: z.string().optional(),
  BULK_JOBS: oneOf(['thread', 'inline', 'off', 'true', 'false', '1', '0'], 'thread, inline or off')
    .default('thread')
    .transform(
      (v): BulkJobs => (v === 'inline' ? 'inline' : ['off', 'false', '0'].includes(v) ? 'off' : 'thread'),
    ),
  API_TOKEN: z
    .string()
    .regex(
      /^roster_[A-Za-z0-9_-]{32,200}$/,
      'must be roster_ followed by 32 to 200 letters, digits, - or _ (README, "Read API")',
    )
    .optional(),
  API_RATE_LIMIT: wholeNumber('a whole number from 1 to 100000', 1, 100_000).default(600),
  ALLOW_PRIVATE_URLS: oneOf(['true', 'false', '1', '0'], 'true or false')
    .default('false')
    .transform((v) => v === 'true' || v === '1'),
  // Checked below with NODE_ENV (webhookUrlProblem); a query string is allowed, the URL is called as is.
  WEBHOOK_URL: z.string().optional(),
  WEBHOOK_SECRET: z
    .string()
    .refine(
      isWebhookSecret,
      'must be a signing secret in the whsec_… form (whsec_ and base64 of 24 to 64 bytes)',
    )
    .optional(),
};

/** The names of every environment variable Roster reads as a setting. */
export const SETTING_NAMES = Object.keys(fields);

const schema = z.object(fields).superRefine((env, ctx) => {
  if (env.ROSTER_REQUIRE_DATABASE_URL && !env.DATABASE_URL) {
    ctx.addIssue({ code: 'custom', path: ['DATABASE_URL'], message: 'is required in this deployment' });
  }
  if (env.SCIM_URL && !env.SCIM_TOKEN) {
    ctx.addIssue({ code: 'custom', path: ['SCIM_TOKEN'], message: 'is required with SCIM_URL' });
  }
  if (env.SCIM_TOKEN && !env.SCIM_URL) {
    ctx.addIssue({ code: 'custom', path: ['SCIM_URL'], message: 'is required with SCIM_TOKEN' });
  }
  if (env.WEBHOOK_URL && !env.WEBHOOK_SECRET) {
    ctx.addIssue({ code: 'custom', path: ['WEBHOOK_SECRET'], message: 'is missing: WEBHOOK_URL needs it' });
  }
  if (env.WEBHOOK_SECRET && !env.WEBHOOK_URL) {
    ctx.addIssue({ code: 'custom', path: ['WEBHOOK_URL'], message: 'is missing: WEBHOOK_SECRET needs it' });
  }
  // The default PUBLIC_URL is made from PORT before the port is bound: with 0 every link would say port 0.
  if (env.PORT === 0 && !env.PUBLIC_URL) {
    ctx.addIssue({
      code: 'custom',
      path: ['PUBLIC_URL'],
      message:
        'is required with PORT=0 (any free port): links in invitations and join links need the address people reach Roster at, and the port is only known once Roster listens. Set PUBLIC_URL, or a fixed PORT',
    });
  }
  const problem = env.WEBHOOK_URL && webhookUrlProblem(env.WEBHOOK_URL, env.NODE_ENV === 'production');
  if (problem) ctx.addIssue({ code: 'custom', path: ['WEBHOOK_URL'], message: problem });
});

/** Standard Webhooks' secret form: `whsec_` and the base64 of the key (24 to 64 bytes). */
export function isWebhookSecret(value: string): boolean {
  const m = /^whsec_([A-Za-z0-9+/]+={0,2})$/.exec(value);
  if (!m?.[1] || m[1].length % 4 !== 0) return false;
  const bytes = Buffer.from(m[1], 'base64').length;
  return bytes >= 24 && bytes <= 64;
}

/**
 * Why a webhook URL cannot be used, or null: https only, except http to this machine (localhost,
 * 127.0.0.1) outside production, for trying a receiver locally.
 */
export function webhookUrlProblem(url: string, production: boolean): string | null {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return 'must be a URL, like https://example.com/webhooks';
  }
  if (parsed.username || parsed.password) return 'must not hold a user name or password';
  if (parsed.protocol === 'https:') return null;
  const local = parsed.hostname === 'localhost' || parsed.hostname === '127.0.0.1';
  if (parsed.protocol === 'http:' && local && !production) return null;
  return production
    ? 'must start with https://'
    : 'must start with https:// (or http:// to localhost or 127.0.0.1)';
}

/** Where an instance works its bulk jobs (BULK_JOBS). */
export type BulkJobs = 'thread' | 'inline' | 'off';

export type Config = {
  slack: { signingSecret: string; botToken: string; appToken?: string; apiUrl: string };
  databaseUrl?: string;
  smtpUrl?: string;
  mailFrom: string;
  publicUrl: string;
  port: number;
  logLevel: string;
  dataDir: string;
  /** NODE_ENV=production: settings that only suit a laptop are warned about. */
  production?: boolean;
  /** Believe X-Forwarded-For (set when Roster runs behind a proxy that sets it). */
  trustProxy?: boolean;
  /** On a stop, how long running jobs may finish before they are handed back to the queue. */
  stopGraceSeconds?: number;
  /**
   * On a stop, how long /readyz answers 503 "stopping" while Roster still serves, before its port closes:
   * time for a load balancer to take it out. 0 (the default) closes at once.
   */
  stopDrainSeconds?: number;
  /**
   * Where the bulk jobs (CSV imports, invitation deliveries, the directory sync, SCIM pushes) are worked:
   * in a thread of their own (the default), so a large import never holds up the event loop that
   * acknowledges Slack; `inline` on that event loop; `off` leaves them to other instances.
   */
  bulkJobs?: BulkJobs;
  /** The SCIM 2.0 service set by the deployment (SCIM_URL, SCIM_TOKEN); Slack then shows it as managed. */
  scim?: { url: string; token: string };
  /** A read API token set by the deployment; stored hashed for the account of SLACK_BOT_TOKEN's workspace. */
  apiToken?: string;
  /** Read API requests per minute per token. */
  apiRateLimit?: number;
  /**
   * Webhook and SCIM URLs may reach this machine and private networks (ALLOW_PRIVATE_URLS, off unless set,
   * in every environment: see src/shared/outbound.ts).
   */
  allowPrivateUrls?: boolean;
  /** One webhook endpoint set by the deployment (WEBHOOK_URL, WEBHOOK_SECRET), for every event. */
  webhook?: { url: string; secret: string };
};

/** Every bad or missing setting, in one message a person can act on. */
export class ConfigError extends Error {
  readonly problems: string[];
  constructor(problems: string[]) {
    const slackMissing = problems.some(
      (p) => p.startsWith('SLACK_SIGNING_SECRET') || p.startsWith('SLACK_BOT_TOKEN'),
    );
    super(
      [
        'Roster cannot start because of its settings:',
        ...problems.map((p) => `  - ${p}`),
        slackMissing ? `Create the Slack app and copy its credentials: see ${README_SLACK_APP}.` : '',
      ]
        .filter(Boolean)
        .join('\n'),
    );
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

/** A settings file that is there but cannot be read: said in one line, as a settings problem. */
export class EnvFileError extends ConfigError {
  constructor(path: string, err: unknown) {
    const code = (err as { code?: unknown }).code;
    const why =
      code === 'EISDIR'
        ? 'it is a directory, not a file'
        : code === 'EACCES' || code === 'EPERM'
          ? 'Roster may not read it (permission denied)'
          : (err as Error).message;
    const line = `Roster cannot read its settings file ${path} (${resolve(path)}): ${why}${typeof code === 'string' && !why.includes(code) ? ` (${code})` : ''}. Make it a readable file of NAME=value lines, or remove it and set the variables in the environment.`;
    super([line]);
    this.message = line;
    this.name = 'EnvFileError';
  }
}

/**
 * Reads a .env file in the working directory when there is one; variables already set win over it. Node's
 * own reader fails on a directory with a TypeError and a stack trace that do not name the file.
 */
export function loadEnvFile(path = '.env'): void {
  if (!existsSync(path)) return;
  try {
    // Read as process.loadEnvFile reads it (a variable already set stays), without the byte-order mark
    // some editors put first, which would hide the first setting under another name.
    const text = readFileSync(path, 'utf8').replace(/^\uFEFF/, '');
    for (const [key, value] of Object.entries(parseEnv(text))) {
      if (process.env[key] === undefined) process.env[key] = value;
    }
  } catch (err) {
    throw new EnvFileError(path, err);
  }
}

function parse<T>(zodSchema: z.ZodType<T>, env: NodeJS.ProcessEnv): T {
  const blanksRemoved = Object.fromEntries(
    Object.entries(env).filter(([, v]) => v !== undefined && v.trim() !== ''),
  );
  const parsed = zodSchema.safeParse(blanksRemoved);
  if (!parsed.success) {
    throw new ConfigError(
      parsed.error.issues.map((i) => `${i.path.join('.') || 'environment'} ${i.message}`),
    );
  }
  return parsed.data;
}

export type DatabaseConfig = Pick<Config, 'databaseUrl' | 'dataDir' | 'logLevel'>;

/** Only where the database is (DATABASE_URL, or the embedded one under DATA_DIR), as the app reads it. */
export function loadDatabaseConfig(env: NodeJS.ProcessEnv = process.env): DatabaseConfig {
  const e = parse(z.object(databaseFields), env);
  return { databaseUrl: e.DATABASE_URL, dataDir: e.DATA_DIR, logLevel: e.LOG_LEVEL };
}

/** Reads the settings from the environment; a pure function of `env`. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const e = parse(schema, env);
  return {
    slack: {
      signingSecret: e.SLACK_SIGNING_SECRET,
      botToken: e.SLACK_BOT_TOKEN,
      appToken: e.SLACK_APP_TOKEN,
      apiUrl: e.SLACK_API_URL.endsWith('/') ? e.SLACK_API_URL : `${e.SLACK_API_URL}/`,
    },
    databaseUrl: e.DATABASE_URL,
    smtpUrl: e.SMTP_URL,
    mailFrom: e.MAIL_FROM,
    publicUrl: normalUrl(e.PUBLIC_URL ?? `http://localhost:${e.PORT}`),
    port: e.PORT,
    logLevel: e.LOG_LEVEL,
    dataDir: e.DATA_DIR,
    production: e.NODE_ENV === 'production',
    trustProxy: e.TRUST_PROXY,
    stopGraceSeconds: e.STOP_GRACE_SECONDS,
    stopDrainSeconds: e.STOP_DRAIN_SECONDS,
    bulkJobs: e.BULK_JOBS,
    ...(e.SCIM_URL && e.SCIM_TOKEN ? { scim: { url: e.SCIM_URL, token: e.SCIM_TOKEN } } : {}),
    apiToken: e.API_TOKEN,
    apiRateLimit: e.API_RATE_LIMIT,
    allowPrivateUrls: e.ALLOW_PRIVATE_URLS,
    webhook: e.WEBHOOK_URL && e.WEBHOOK_SECRET ? { url: e.WEBHOOK_URL, secret: e.WEBHOOK_SECRET } : undefined,
  };
}

/** Whether a URL points at this machine only (localhost, 127.x, ::1). */
export function isLocal(url: string): boolean {
  const host = new URL(url).hostname;
  return host === 'localhost' || host === '[::1]' || host === '0.0.0.0' || /^127\./.test(host);
}

/** Settings that start but are probably not what the operator wants, each saying what to do. */
export function configWarnings(config: Config): string[] {
  const warnings: string[] = [];
  if (config.production && isLocal(config.publicUrl)) {
    warnings.push(
      `PUBLIC_URL is ${config.publicUrl} while NODE_ENV=production: links in invitations and join links will not open for anyone else. Set PUBLIC_URL to the address people reach Roster at, e.g. https://roster.example.com.`,
    );
  }
  if (config.production && !config.smtpUrl) {
    warnings.push(
      `SMTP_URL is not set while NODE_ENV=production: emails are only written to ${config.dataDir}/outbox/ and nobody receives them. Set SMTP_URL, e.g. smtp://user:password@mail.example.com:587.`,
    );
  }
  // Mail servers refuse, and receivers file as spam, mail from an address at localhost.
  if (config.production && config.smtpUrl && /@localhost>?$/i.test(config.mailFrom.trim())) {
    warnings.push(
      `MAIL_FROM is ${config.mailFrom} while NODE_ENV=production: mail servers refuse or mark as spam mail from localhost. Set MAIL_FROM to an address of your domain, e.g. Roster <roster@example.com>.`,
    );
  }
  return warnings;
}
