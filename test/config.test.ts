import { ConfigError, loadConfig } from '../src/config.ts';

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
  });
});
