import { SlackAuthError, startRoster } from '../src/app.ts';
import { loadConfig } from '../src/config.ts';
import { createLogger } from '../src/shared/logger.ts';
import { DEFAULT_MEMBERS } from './support/app.ts';
import { createTestDatabase, type TestDatabase } from './support/database.ts';
import { type SlackStandin, startSlackStandin } from './support/slack-standin.ts';

let db: TestDatabase;
let standin: SlackStandin;

beforeAll(async () => {
  db = await createTestDatabase();
  standin = await startSlackStandin({ members: DEFAULT_MEMBERS, teamId: 'T0001', botToken: 'xoxb-socket' });
});
afterAll(async () => {
  await standin.close();
  await db.drop();
});

describe('Socket Mode', () => {
  it('opens its connection through SLACK_API_URL with the app token, and says clearly when Slack refuses it', async () => {
    const config = loadConfig({
      SLACK_SIGNING_SECRET: 'secret',
      SLACK_BOT_TOKEN: 'xoxb-socket',
      SLACK_APP_TOKEN: 'xapp-1-A1-refused',
      SLACK_API_URL: standin.apiUrl,
      DATABASE_URL: db.url,
      PORT: '0',
      PUBLIC_URL: 'http://localhost',
    });
    const started = startRoster({ config, logger: createLogger('silent'), host: '127.0.0.1' });
    await expect(started).rejects.toBeInstanceOf(SlackAuthError);
    await expect(started).rejects.toThrow(/Socket Mode could not connect to Slack .*Check SLACK_APP_TOKEN/);
    const open = standin.callsTo('apps.connections.open');
    expect(open).toHaveLength(1);
    expect(open[0]?.token).toBe('xapp-1-A1-refused');
    // The bot token was checked first, on the same stand-in.
    expect(standin.callsTo('auth.test')[0]?.token).toBe('xoxb-socket');
  });

  it.each(['missing_scope', 'token_revoked'])(
    'says so at once when Slack refuses the app-level token with %s, rather than trying it forever',
    async (error) => {
      standin.answerWith('apps.connections.open', () => ({ ok: false, error }));
      const since = standin.callsTo('apps.connections.open').length;
      const config = loadConfig({
        SLACK_SIGNING_SECRET: 'secret',
        SLACK_BOT_TOKEN: 'xoxb-socket',
        SLACK_APP_TOKEN: 'xapp-1-A1-noscope',
        SLACK_API_URL: standin.apiUrl,
        DATABASE_URL: db.url,
        PORT: '0',
        PUBLIC_URL: 'http://localhost',
        BULK_JOBS: 'off',
      });
      const started = startRoster({ config, logger: createLogger('silent'), host: '127.0.0.1' });
      const outcome = await Promise.race([
        started.then(
          () => 'started',
          (err: Error) => err,
        ),
        new Promise<string>((r) => setTimeout(() => r('still starting after 15 s'), 15_000)),
      ]);
      expect(outcome).toBeInstanceOf(SlackAuthError);
      expect((outcome as Error).message).toMatch(
        new RegExp(
          `Socket Mode could not connect to Slack .*${error}.*Check SLACK_APP_TOKEN: .*connections:write`,
        ),
      );
      expect(standin.callsTo('apps.connections.open').length - since).toBe(1);
    },
    30_000,
  );
});
