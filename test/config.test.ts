import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { smtpProblem } from '../src/app.ts';
import { ConfigError, configWarnings, loadConfig, loadDatabaseConfig, SETTING_NAMES } from '../src/config.ts';
import { parseConnection } from '../src/features/scim/scim.service.ts';
import { Csrf, type WebRequest } from '../src/web/router.ts';
import { startSmtpSink } from './support/smtp-sink.ts';

const base = { SLACK_SIGNING_SECRET: 'secret', SLACK_BOT_TOKEN: 'xoxb-1' };

describe('settings', () => {
  it('fills the defaults from PRODUCT: embedded database, outbox mail, port 3000, public URL from the port', () => {
    const config = loadConfig(base);
    expect(config).toMatchObject({
      databaseUrl: undefined,
      smtpUrl: undefined,
      port: 3000,
      publicUrl: 'http://localhost:3000',
      slack: { apiUrl: 'https://slack.com/api/', appToken: undefined },
    });
  });

  it('takes API_TOKEN only in the roster_ form, without repeating a wrong value, and API_RATE_LIMIT as a number', () => {
    const good = `roster_${'a'.repeat(43)}`;
    expect(loadConfig({ ...base, API_TOKEN: good })).toMatchObject({ apiToken: good, apiRateLimit: 600 });
    expect(loadConfig({ ...base, API_RATE_LIMIT: '30' }).apiRateLimit).toBe(30);
    let error: ConfigError | undefined;
    try {
      loadConfig({ ...base, API_TOKEN: 'secret-but-short', API_RATE_LIMIT: '0' });
    } catch (e) {
      error = e as ConfigError;
    }
    expect(error?.problems).toEqual([
      'API_TOKEN must be roster_ followed by 32 to 200 letters, digits, - or _ (README, "Read API")',
      'API_RATE_LIMIT must be a whole number from 1 to 100000, got "0"',
    ]);
    expect(error?.message).not.toContain('secret-but-short');
    // A token too long is told the upper bound, not only "at least 32", which it already has.
    expect(() => loadConfig({ ...base, API_TOKEN: `roster_${'a'.repeat(201)}` })).toThrow(
      'API_TOKEN must be roster_ followed by 32 to 200 letters, digits, - or _',
    );
    expect(loadConfig({ ...base, API_TOKEN: `roster_${'a'.repeat(200)}` }).apiToken).toHaveLength(207);
  });

  it('names every bad or missing setting in one error', () => {
    let error: ConfigError | undefined;
    try {
      loadConfig({
        SLACK_BOT_TOKEN: 'xoxp-user-token',
        PORT: 'eighty',
        DATABASE_URL: 'mysql://x',
        SMTP_URL: 'mail.example.com',
      });
    } catch (e) {
      error = e as ConfigError;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect(error?.problems).toEqual(
      expect.arrayContaining([
        'SLACK_SIGNING_SECRET is missing',
        'SLACK_BOT_TOKEN must be a bot token (it starts with xoxb-)',
        'DATABASE_URL must be a postgres:// URL',
        'SMTP_URL must be an smtp:// or smtps:// URL',
      ]),
    );
    expect(error?.problems.some((p) => p.startsWith('PORT'))).toBe(true);
    expect(error?.message).toContain('Create the Slack app');
  });

  it('refuses a DATABASE_URL that names no database, saying where it goes', () => {
    for (const url of ['postgres://postgres@127.0.0.1:5432', 'postgres://postgres@127.0.0.1:5432/']) {
      expect(() => loadConfig({ ...base, DATABASE_URL: url })).toThrow(
        'DATABASE_URL must name the database at its end, like postgres://user:password@host:5432/roster',
      );
    }
    expect(
      loadConfig({ ...base, DATABASE_URL: 'postgres://u@/roster?host=/var/run/postgresql' }).databaseUrl,
    ).toBe('postgres://u@/roster?host=/var/run/postgresql');
  });

  it('treats blank values as unset and trims a trailing slash from PUBLIC_URL', () => {
    const config = loadConfig({
      ...base,
      DATABASE_URL: '  ',
      PUBLIC_URL: 'https://roster.example.com/',
      SLACK_API_URL: 'http://127.0.0.1:9/api',
    });
    expect(config.databaseUrl).toBeUndefined();
    expect(config.publicUrl).toBe('https://roster.example.com');
    expect(config.slack.apiUrl).toBe('http://127.0.0.1:9/api/');
  });

  it('writes PUBLIC_URL as links and cookies need it, however it was typed', () => {
    const publicUrl = (value: string) => loadConfig({ ...base, PUBLIC_URL: value }).publicUrl;
    // A space left around it in an .env file would split every emailed link in two.
    expect(publicUrl(' https://roster.example.com/ ')).toBe('https://roster.example.com');
    // HTTPS in capitals is https: the CSRF and answer-page cookies must still be Secure.
    const shouting = publicUrl('HTTPS://Roster.Example.com/Roster/');
    expect(shouting).toBe('https://roster.example.com/Roster');
    const req = { cookies: {}, base: '/Roster', path: '/join/x' } as unknown as WebRequest;
    expect(new Csrf('secret', shouting).issue(req).cookie).toMatch(/; Secure$/);
    // Mail apps link an address in ASCII only up to its first space or accented letter.
    expect(publicUrl('https://bücher.example/équipe rh/')).toBe(
      'https://xn--bcher-kva.example/%C3%A9quipe%20rh',
    );
  });

  it('requires DATABASE_URL where the deployment says so (the Docker image)', () => {
    expect(() => loadConfig({ ...base, ROSTER_REQUIRE_DATABASE_URL: '1' })).toThrow(
      'DATABASE_URL is required in this deployment',
    );
  });

  it('turns on Socket Mode with an app token', () => {
    expect(loadConfig({ ...base, SLACK_APP_TOKEN: 'xapp-1-A-1-abc' }).slack.appToken).toBe('xapp-1-A-1-abc');
    expect(() => loadConfig({ ...base, SLACK_APP_TOKEN: 'xoxb-wrong' })).toThrow(
      'SLACK_APP_TOKEN must be an app-level token',
    );
    expect(() => loadConfig({ ...base, SLACK_APP_TOKEN: 'xapp-' })).toThrow(
      'SLACK_APP_TOKEN is missing (only its xapp- beginning is set)',
    );
  });

  it('refuses a TRUST_PROXY that is not true or false, and reads NODE_ENV', () => {
    expect(() => loadConfig({ ...base, TRUST_PROXY: 'yes' })).toThrow('TRUST_PROXY must be true or false');
    expect(loadConfig({ ...base, TRUST_PROXY: 'true', NODE_ENV: 'production' })).toMatchObject({
      trustProxy: true,
      production: true,
    });
    expect(loadConfig(base).trustProxy).toBe(false);
    expect(loadConfig(base).stopGraceSeconds).toBe(5);
    expect(() => loadConfig({ ...base, STOP_GRACE_SECONDS: '600' })).toThrow('STOP_GRACE_SECONDS');
  });

  it('keeps admin-entered URLs off private networks in every environment unless ALLOW_PRIVATE_URLS says so', () => {
    // A VM set up from the quick start has no NODE_ENV: it must not reach 169.254.169.254 either.
    expect(loadConfig(base).allowPrivateUrls).toBe(false);
    expect(loadConfig({ ...base, NODE_ENV: 'development' }).allowPrivateUrls).toBe(false);
    expect(loadConfig({ ...base, NODE_ENV: 'production' }).allowPrivateUrls).toBe(false);
    expect(loadConfig({ ...base, ALLOW_PRIVATE_URLS: 'true' }).allowPrivateUrls).toBe(true);
    expect(loadConfig({ ...base, ALLOW_PRIVATE_URLS: '1', NODE_ENV: 'production' }).allowPrivateUrls).toBe(
      true,
    );
    expect(loadConfig({ ...base, ALLOW_PRIVATE_URLS: 'false' }).allowPrivateUrls).toBe(false);
  });

  it('drains for STOP_DRAIN_SECONDS on a stop: none unless set, at most 300', () => {
    expect(loadConfig(base).stopDrainSeconds).toBe(0);
    expect(loadConfig({ ...base, STOP_DRAIN_SECONDS: '15' }).stopDrainSeconds).toBe(15);
    expect(() => loadConfig({ ...base, STOP_DRAIN_SECONDS: '301' })).toThrow('STOP_DRAIN_SECONDS');
    expect(() => loadConfig({ ...base, STOP_DRAIN_SECONDS: 'soon' })).toThrow('STOP_DRAIN_SECONDS');
  });
});

describe('settings with a wrong value', () => {
  /** The problems `loadConfig` names for these settings (added to working Slack ones), or [] when it starts. */
  function problems(env: Record<string, string>): string[] {
    try {
      loadConfig({ ...base, ...env });
      return [];
    } catch (e) {
      if (!(e instanceof ConfigError)) throw e;
      return e.problems;
    }
  }

  it('says what a number must be, repeating what it got', () => {
    const port = (got: string) =>
      `PORT must be a port number (1-65535, or 0 for any free port), got "${got}"`;
    for (const value of ['abc', '70000', '-1', '3000.5', '80 80']) {
      expect(problems({ PORT: value })).toEqual([port(value)]);
    }
    expect(problems({ STOP_GRACE_SECONDS: '90' })).toEqual([
      'STOP_GRACE_SECONDS must be a whole number of seconds from 0 to 60, got "90"',
    ]);
    expect(problems({ STOP_DRAIN_SECONDS: '600' })).toEqual([
      'STOP_DRAIN_SECONDS must be a whole number of seconds from 0 to 300, got "600"',
    ]);
    expect(problems({ STOP_GRACE_SECONDS: 'soon' })).toEqual([
      'STOP_GRACE_SECONDS must be a whole number of seconds from 0 to 60, got "soon"',
    ]);
    expect(
      loadConfig({ ...base, PORT: '0', PUBLIC_URL: 'https://roster.example.com', STOP_GRACE_SECONDS: '60' }),
    ).toMatchObject({
      port: 0,
      publicUrl: 'https://roster.example.com',
      stopGraceSeconds: 60,
    });
    expect(loadConfig({ ...base, PORT: '8080' }).port).toBe(8080);
  });

  it('refuses PORT=0 without PUBLIC_URL, since every link would point at port 0', () => {
    expect(problems({ PORT: '0' })).toEqual([
      'PUBLIC_URL is required with PORT=0 (any free port): links in invitations and join links need the address people reach Roster at, and the port is only known once Roster listens. Set PUBLIC_URL, or a fixed PORT',
    ]);
  });

  it("takes .env.example's bare xoxb- placeholder as a missing SLACK_BOT_TOKEN", () => {
    expect(problems({ SLACK_BOT_TOKEN: 'xoxb-' })).toEqual([
      'SLACK_BOT_TOKEN is missing (only its xoxb- beginning is set): copy the Bot User OAuth Token from the app\'s "OAuth & Permissions" page',
    ]);
    expect(problems({ SLACK_BOT_TOKEN: 'xoxb-1-2 3' })).toEqual([
      'SLACK_BOT_TOKEN must not hold spaces or quotes: copy the Bot User OAuth Token from the app\'s "OAuth & Permissions" page',
    ]);
    expect(() => loadConfig({ SLACK_BOT_TOKEN: 'xoxb-' })).toThrow(
      /see README\.md, section "Create the Slack app"/,
    );
  });

  it("refuses the quick start's placeholders typed as they are, rather than blaming the network later", () => {
    expect(problems({ SLACK_SIGNING_SECRET: '…', SLACK_BOT_TOKEN: 'xoxb-…' })).toEqual([
      expect.stringMatching(
        /^SLACK_SIGNING_SECRET holds a character that is not plain ASCII \(a placeholder like … left in/,
      ),
      expect.stringMatching(
        /^SLACK_BOT_TOKEN holds a character that is not plain ASCII \(a placeholder like … left in/,
      ),
    ]);
    expect(problems({ SLACK_BOT_TOKEN: 'xoxb-1-2\u20133' })).toHaveLength(1);
    expect(problems({ SLACK_APP_TOKEN: 'xapp-…' })).toEqual([
      expect.stringMatching(/^SLACK_APP_TOKEN holds a character that is not plain ASCII/),
    ]);
    expect(problems({ SLACK_APP_TOKEN: 'xapp-1-A1 abc' })).toEqual([
      expect.stringMatching(/^SLACK_APP_TOKEN must not hold spaces or quotes/),
    ]);
  });

  it('refuses a token or a value with spaces as SLACK_SIGNING_SECRET, without repeating it', () => {
    const notSecret =
      'SLACK_SIGNING_SECRET is a token, not the signing secret: copy the Signing Secret from the app\'s "Basic Information" page (32 characters, 0-9 and a-f)';
    for (const value of ['xoxb-123-456-abc', 'xapp-1-A1-2-abc', 'xoxp-1-2']) {
      expect(problems({ SLACK_SIGNING_SECRET: value })).toEqual([notSecret]);
    }
    expect(problems({ SLACK_SIGNING_SECRET: '8f14e45f ceea167a 5a36dedd 4bea2543' })).toEqual([
      'SLACK_SIGNING_SECRET must not hold spaces or quotes: copy the Signing Secret from the app\'s "Basic Information" page (32 characters, 0-9 and a-f)',
    ]);
    expect(problems({ SLACK_SIGNING_SECRET: '"8f14e45fceea167a5a36dedd4bea2543"' })).toHaveLength(1);
    expect(
      loadConfig({ ...base, SLACK_SIGNING_SECRET: '8f14e45fceea167a5a36dedd4bea2543' }).slack,
    ).toMatchObject({
      signingSecret: '8f14e45fceea167a5a36dedd4bea2543',
    });
  });

  it('takes only http(s) URLs for PUBLIC_URL, SLACK_API_URL and SCIM_URL, as a base Roster adds paths to', () => {
    const publicUrl = 'PUBLIC_URL must be an http(s) URL like https://roster.example.com';
    expect(problems({ PUBLIC_URL: 'roster.example.com' })).toEqual([publicUrl]);
    expect(problems({ PUBLIC_URL: 'ftp://roster.example.com' })).toEqual([publicUrl]);
    expect(problems({ PUBLIC_URL: 'https://roster.example.com/?team=1' })).toEqual([
      'PUBLIC_URL must not have a ?query or #fragment, since Roster adds paths after it: set it like https://roster.example.com',
    ]);
    expect(problems({ PUBLIC_URL: 'https://roster.example.com/#top' })).toHaveLength(1);
    expect(problems({ SLACK_API_URL: 'ftp://slack.example.com/api/' })).toEqual([
      'SLACK_API_URL must be an http(s) URL like https://slack.com/api/',
    ]);
    const scim = { SCIM_TOKEN: 'scim-token' };
    expect(problems({ ...scim, SCIM_URL: 'ftp://app.example.com/scim/v2' })).toEqual([
      'SCIM_URL must be an http(s) URL like https://app.example.com/scim/v2',
    ]);
    expect(problems({ ...scim, SCIM_URL: 'https://app.example.com/scim/v2?tenant=1' })).toEqual([
      'SCIM_URL must not have a ?query or #fragment, since Roster adds paths after it: set it like https://app.example.com/scim/v2',
    ]);
    const withPassword = problems({ ...scim, SCIM_URL: 'https://roster:hunter2@app.example.com/scim/v2' });
    expect(withPassword).toEqual([
      'SCIM_URL must not hold a user name or password: set it like https://app.example.com/scim/v2',
    ]);
    expect(loadConfig({ ...base, PUBLIC_URL: 'http://10.0.0.5:3000/roster/' }).publicUrl).toBe(
      'http://10.0.0.5:3000/roster',
    );
    expect(loadConfig({ ...base, ...scim, SCIM_URL: 'https://app.example.com/scim/v2' }).scim).toEqual({
      url: 'https://app.example.com/scim/v2',
      token: 'scim-token',
    });
  });

  it('checks SCIM_URL as the connect form checks a URL: https, plain http only to this machine, at most 500 characters', () => {
    const scim = { SCIM_TOKEN: 'scim-token' };
    const insecure =
      'SCIM_URL must start with https:// (plain http:// only to this machine: localhost or 127.0.0.1), since Roster sends SCIM_TOKEN with every call: set it like https://app.example.com/scim/v2';
    for (const url of [
      'http://app.example.com/scim/v2',
      'http://10.0.0.5:8080/scim',
      'HTTP://scim.internal/v2',
    ]) {
      expect(problems({ ...scim, SCIM_URL: url })).toEqual([insecure]);
    }
    expect(problems({ ...scim, SCIM_URL: `https://app.example.com/${'a'.repeat(500)}` })).toEqual([
      'SCIM_URL must be at most 500 characters',
    ]);
    // The form's own rule, as it answers the same URLs.
    expect(() => parseConnection({ url: 'http://app.example.com/scim/v2', token: 't' })).toThrow(
      'The base URL must start with https://.',
    );
    expect(() => parseConnection({ url: `https://app.example.com/${'a'.repeat(500)}`, token: 't' })).toThrow(
      'The base URL must be at most 500 characters.',
    );
    for (const url of [
      'http://localhost:3001/scim/v2',
      'http://127.0.0.1:9000/scim',
      'https://app.example.com/v2',
    ]) {
      expect(loadConfig({ ...base, ...scim, SCIM_URL: url }).scim?.url).toBe(url);
      expect(parseConnection({ url, token: 't' }).url).toBe(url);
    }
    // Roster does not start: the message is the one a person reads.
    let error: ConfigError | undefined;
    try {
      loadConfig({ ...base, ...scim, SCIM_URL: 'http://scim:s3cret@app.example.com/scim/v2' });
    } catch (e) {
      error = e as ConfigError;
    }
    expect(error?.message).toBe(`Roster cannot start because of its settings:\n  - ${insecure}`);
    expect(error?.message).not.toContain('s3cret');
  });

  it('takes DATABASE_URL and SMTP_URL only when their client can read them, never repeating them', () => {
    const unreadable =
      'and this one cannot be read as one: check that its port is a number up to 65535, and write a #, / or ? in the user name or password percent-encoded (%23, %2F, %3F)';
    const database = `DATABASE_URL must be a postgres:// URL like postgres://user:password@host:5432/roster, ${unreadable}`;
    for (const url of [
      'postgres://roster:pw@db.example.com:99999/roster',
      'postgres://roster:pw@db.example.com:port/roster',
      'postgres://roster:pa#ss@db.example.com/roster',
      'postgres://roster:pa/ss@db.example.com/roster',
    ]) {
      expect(problems({ DATABASE_URL: url })).toEqual([database]);
    }
    // What pg reads: an @ or a space in the password, a socket directory, IPv6, query options.
    for (const url of [
      'postgres://roster:p@ss@db.example.com:5432/roster',
      'postgresql://roster:p ss@db.example.com/roster',
      'postgres://roster@/roster?host=/var/run/postgresql',
      'postgres://%2Fvar%2Frun%2Fpostgresql/roster',
      'postgres://roster@[::1]:5432/roster?sslmode=verify-full',
    ]) {
      expect(loadConfig({ ...base, DATABASE_URL: url }).databaseUrl).toBe(url);
    }
    expect(() => loadDatabaseConfig({ DATABASE_URL: 'postgres://u:pw@h:99999/x' })).toThrow(database);

    expect(problems({ SMTP_URL: 'smtp://roster:pw@mail.example.com:abc' })).toEqual([
      `SMTP_URL must be an smtp:// or smtps:// URL like smtp://user:password@mail.example.com:587, ${unreadable}`,
    ]);
    expect(problems({ SMTP_URL: 'smtps://' })).toEqual([
      'SMTP_URL must name the mail server, like smtp://user:password@mail.example.com:587',
    ]);
    for (const url of ['smtp://user%40example.com:p@ss@mail.example.com:587', 'smtps://[::1]:465']) {
      expect(loadConfig({ ...base, SMTP_URL: url }).smtpUrl).toBe(url);
    }
  });

  it("names every wrong setting at once in its own words, never the library's", () => {
    let error: ConfigError | undefined;
    try {
      loadConfig({
        ...base,
        PORT: 'abc',
        STOP_GRACE_SECONDS: '90',
        TRUST_PROXY: 'yes',
        BULK_JOBS: 'sometimes',
        API_RATE_LIMIT: 'lots',
        PUBLIC_URL: 'roster.example.com',
        SLACK_API_URL: 'slack',
        LOG_LEVEL: 'verbose',
        MAIL_FROM: 'me',
        SCIM_URL: 'https://user:hunter2@app.example.com/scim/v2?key=abc123',
        SCIM_TOKEN: 'scim-token',
        WEBHOOK_URL: 'ftp://hooks.example.com',
        WEBHOOK_SECRET: `whsec_${Buffer.alloc(32, 1).toString('base64')}`,
      });
    } catch (e) {
      error = e as ConfigError;
    }
    expect(error?.problems).toEqual([
      'LOG_LEVEL must be one of trace, debug, info, warn, error, fatal or silent, got "verbose"',
      'SLACK_API_URL must be an http(s) URL like https://slack.com/api/',
      'MAIL_FROM must be an email address, like roster@example.com or Roster <roster@example.com>',
      'PUBLIC_URL must be an http(s) URL like https://roster.example.com',
      'PORT must be a port number (1-65535, or 0 for any free port), got "abc"',
      'STOP_GRACE_SECONDS must be a whole number of seconds from 0 to 60, got "90"',
      'TRUST_PROXY must be true or false, got "yes"',
      'SCIM_URL must not hold a user name or password: set it like https://app.example.com/scim/v2',
      'BULK_JOBS must be thread, inline or off, got "sometimes"',
      'API_RATE_LIMIT must be a whole number from 1 to 100000, got "lots"',
      'WEBHOOK_URL must start with https:// (or http:// to localhost or 127.0.0.1)',
    ]);
    expect(error?.message).not.toMatch(/hunter2|abc123|Invalid|expected|Too (big|small)/);
  });
});

describe('settings written in another case, and MAIL_FROM as the mailer reads it', () => {
  it('takes LOG_LEVEL and the yes-or-no settings in any case', () => {
    const config = loadConfig({ ...base, LOG_LEVEL: 'INFO', TRUST_PROXY: 'True', BULK_JOBS: 'Off' });
    expect(config).toMatchObject({ logLevel: 'info', trustProxy: true, bulkJobs: 'off' });
    expect(loadConfig({ ...base, LOG_LEVEL: 'Debug' }).logLevel).toBe('debug');
  });

  it('refuses a MAIL_FROM that is not exactly one address, saying why', () => {
    const problems = (MAIL_FROM: string) => {
      try {
        loadConfig({ ...base, MAIL_FROM });
        return [];
      } catch (e) {
        return (e as ConfigError).problems;
      }
    };
    expect(problems('Roster <roster@example.com')).toEqual([
      'MAIL_FROM must be one email address, like roster@example.com or Roster <roster@example.com>: its < and > do not enclose an address, got "Roster <roster@example.com"',
    ]);
    expect(problems('roster@example.com>')).toHaveLength(1);
    expect(problems('roster@example.com, ops@example.com')).toEqual([
      'MAIL_FROM must be one email address, like roster@example.com or Roster <roster@example.com>, got 2 of them in "roster@example.com, ops@example.com"',
    ]);
    expect(problems('Roster')).toEqual([
      'MAIL_FROM must be an email address, like roster@example.com or Roster <roster@example.com>',
    ]);
    expect(problems('Roster <>')).toHaveLength(1);
    // What a mail server would refuse as a sender, or pass on garbled.
    expect(problems('Röster <rostér@example.com>')).toEqual([
      'MAIL_FROM must be an email address of plain ASCII letters, digits and dots before its @, like roster@example.com or Roster <roster@example.com>, got "rostér@example.com"',
    ]);
    for (const bad of [
      'roster@example.com.',
      'roster@.example.com',
      'roster@example..com',
      'roster@-acme.com',
    ]) {
      expect(problems(bad)).toEqual([
        `MAIL_FROM must be an email address whose domain is whole names joined by single dots (no dot at its start or end), like roster@example.com or Roster <roster@example.com>, got "${bad}"`,
      ]);
    }
    expect(problems('roster@exämple.com')).toEqual([
      'MAIL_FROM must have its domain in ASCII, as mail servers take it: "roster@xn--exmple-cua.com" rather than "roster@exämple.com"',
    ]);
    for (const good of [
      'Roster <roster@example.com>',
      'roster@example.com',
      '"Roster, People <Team>" <roster@example.com>',
      'Roster <roster@localhost>',
      'Röster <no-reply+roster@mail.example.co.uk>',
    ]) {
      expect(problems(good)).toEqual([]);
    }
  });
});

describe('warnings at start', () => {
  it('says what to do when production runs with a local PUBLIC_URL and without SMTP_URL', () => {
    const warnings = configWarnings(loadConfig({ ...base, NODE_ENV: 'production' }));
    expect(warnings).toEqual([
      expect.stringMatching(
        /^PUBLIC_URL is http:\/\/localhost:3000 while NODE_ENV=production: .* Set PUBLIC_URL to/,
      ),
      expect.stringMatching(/^SMTP_URL is not set while NODE_ENV=production: .*outbox.* Set SMTP_URL/),
    ]);
  });

  it('says when production sends through SMTP_URL from the default MAIL_FROM at localhost', () => {
    const env = {
      ...base,
      NODE_ENV: 'production',
      PUBLIC_URL: 'https://roster.example.com',
      SMTP_URL: 'smtp://mail.example.com:587',
    };
    expect(configWarnings(loadConfig(env))).toEqual([
      expect.stringMatching(
        /^MAIL_FROM is Roster <roster@localhost> while NODE_ENV=production: .* Set MAIL_FROM to an address of your domain/,
      ),
    ]);
    expect(configWarnings(loadConfig({ ...env, MAIL_FROM: 'roster@localhost' }))).toHaveLength(1);
    // Trying Roster out, or writing mail to the outbox only, the default is fine.
    expect(configWarnings(loadConfig({ ...env, NODE_ENV: '' }))).toEqual([]);
  });

  it('has nothing to say about a production setup with its own address and mail server', () => {
    const config = loadConfig({
      ...base,
      NODE_ENV: 'production',
      PUBLIC_URL: 'https://roster.example.com',
      SMTP_URL: 'smtp://mail.example.com:587',
      MAIL_FROM: 'Roster <roster@example.com>',
    });
    expect(configWarnings(config)).toEqual([]);
    expect(configWarnings(loadConfig(base))).toEqual([]);
  });

  it('says when SMTP_URL does not answer, without its password', async () => {
    const problem = await smtpProblem('smtp://roster:hunter2@127.0.0.1:9');
    expect(problem).toMatch(
      /^SMTP_URL does not answer \(.*ECONNREFUSED.*\): .*Check its host, port and credentials/,
    );
    expect(problem).not.toContain('hunter2');
    const sink = await startSmtpSink();
    try {
      expect(await smtpProblem(sink.url)).toBeUndefined();
    } finally {
      await sink.close();
    }
  });

  it('reads .env from the working directory and names the variable it refuses', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'roster-env-'));
    try {
      await writeFile(
        join(dir, '.env'),
        'SLACK_SIGNING_SECRET=from-dotenv\nSLACK_BOT_TOKEN=xoxb-from-dotenv\nPORT=eighty\n',
      );
      const main = resolve(import.meta.dirname, '../src/main.ts');
      const run = promisify(execFile)(process.execPath, [main], {
        cwd: dir,
        env: { PATH: process.env.PATH },
      });
      const failed = await run.then(
        () => undefined,
        (err: { code: number; stderr: string }) => err,
      );
      expect(failed?.code).toBe(78);
      expect(failed?.stderr).toContain('Roster cannot start because of its settings:\n  - PORT ');
      // The Slack settings came from .env, so only PORT is named.
      expect(failed?.stderr).not.toContain('SLACK_');
      // Saved with a byte-order mark first, as some Windows editors do, the first setting is still read.
      await writeFile(
        join(dir, '.env'),
        `\uFEFFSLACK_SIGNING_SECRET=from-dotenv\nSLACK_BOT_TOKEN=xoxb-from-dotenv\nPORT=eighty\n`,
      );
      const marked = await promisify(execFile)(process.execPath, [main], {
        cwd: dir,
        env: { PATH: process.env.PATH },
      }).then(
        () => undefined,
        (err: { code: number; stderr: string }) => err,
      );
      expect(marked?.code).toBe(78);
      expect(marked?.stderr).not.toContain('SLACK_');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('where the settings are written down', () => {
  const root = resolve(import.meta.dirname, '..');

  it('.env.example lists every setting Roster reads, each under a comment line, and nothing else', async () => {
    const lines = (await readFile(join(root, '.env.example'), 'utf8')).split('\n');
    const listed = lines.flatMap((line, i) => {
      const name = /^([A-Z][A-Z0-9_]*)=/.exec(line)?.[1];
      return name ? [{ name, comment: lines[i - 1]?.startsWith('# ') ?? false }] : [];
    });
    expect(listed.map((l) => l.name).sort()).toEqual([...SETTING_NAMES].sort());
    expect(listed.filter((l) => !l.comment).map((l) => l.name)).toEqual([]);
  });

  it("README's settings table has a row for every setting Roster reads", async () => {
    const readme = await readFile(join(root, 'README.md'), 'utf8');
    const table = readme.slice(readme.indexOf('| variable | meaning | default |'));
    const rows = table.slice(0, table.indexOf('\n\n')).split('\n');
    const named = rows.flatMap((row) => [...(row.split(' | ')[0] ?? '').matchAll(/`([A-Z][A-Z0-9_]*)`/g)]);
    expect(named.map((m) => m[1]).sort()).toEqual([...SETTING_NAMES].sort());
  });

  /** README's settings table: each variable's name and its default cell. */
  async function readmeDefaults(): Promise<Map<string, string>> {
    const readme = await readFile(join(root, 'README.md'), 'utf8');
    const table = readme.slice(readme.indexOf('| variable | meaning | default |'));
    const rows = table.slice(0, table.indexOf('\n\n')).split('\n').slice(2);
    return new Map(
      rows.flatMap((row) => {
        const cells = row.split(' | ');
        const names = [...(cells[0] ?? '').matchAll(/`([A-Z][A-Z0-9_]*)`/g)].map((m) => m[1] ?? '');
        const cell = (cells.at(-1) ?? '').replace(/ \|$/, '');
        return names.map((name) => [name, cell] as const);
      }),
    );
  }

  it("README's defaults are the ones Roster takes: setting each to its documented default changes nothing", async () => {
    const defaults = await readmeDefaults();
    const literal = [...defaults].flatMap(([name, cell]) => {
      const value = /^`([^`]+)`/.exec(cell)?.[1];
      return value ? [[name, value.replace('$PORT', '3000')] as const] : [];
    });
    // The settings whose default is a value, not "required", "off" or a sentence.
    expect(literal.map(([name]) => name).sort()).toEqual(
      [
        'ALLOW_PRIVATE_URLS',
        'API_RATE_LIMIT',
        'BULK_JOBS',
        'DATA_DIR',
        'LOG_LEVEL',
        'MAIL_FROM',
        'PORT',
        'PUBLIC_URL',
        'SLACK_API_URL',
        'STOP_DRAIN_SECONDS',
        'STOP_GRACE_SECONDS',
        'TRUST_PROXY',
      ].sort(),
    );
    for (const [name, value] of literal) {
      expect({ name, config: loadConfig({ ...base, [name]: value }) }).toEqual({
        name,
        config: loadConfig(base),
      });
    }
    for (const name of ['SLACK_SIGNING_SECRET', 'SLACK_BOT_TOKEN'] as const) {
      expect(defaults.get(name)).toBe('required');
      expect(() => loadConfig({ ...base, [name]: undefined })).toThrow(`${name} is missing`);
    }
  });

  it('.env.example copied as it is, with the Slack settings filled in, starts with the defaults', async () => {
    const text = await readFile(join(root, '.env.example'), 'utf8');
    const values = Object.fromEntries(
      text.split('\n').flatMap((line) => {
        const m = /^([A-Z][A-Z0-9_]*)=(.*)$/.exec(line);
        return m?.[1] && !m[1].startsWith('SLACK_') ? [[m[1], m[2] ?? '']] : [];
      }),
    );
    expect(Object.keys(values).length).toBeGreaterThan(10);
    expect(loadConfig({ ...base, ...values })).toEqual(loadConfig(base));
  });
});
