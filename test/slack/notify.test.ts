import { eventually, jobsDrained, startTestApp, type TestApp } from '../support/app.ts';

let t: TestApp;

beforeAll(async () => {
  t = await startTestApp();
});
afterAll(() => t.stop());

const RETRY_AFTER_S = 2;

describe('telling a person what went wrong while Slack asks Roster to slow down', () => {
  it('sends the refusal of a Home tab click by DM once the Retry-After has passed, once', async () => {
    await t.slack.event({ type: 'app_home_opened', user: 'UMEMBER', tab: 'home', channel: 'DUMEMBER' });
    const home = await eventually(() => t.standin.homeView('UMEMBER'));
    const refusals = () =>
      t.standin.messages.filter(
        (m) =>
          m.method === 'chat.postMessage' &&
          m.channel === 'DUMEMBER' &&
          /Only admins can manage API tokens/.test(String(m.text)),
      );
    const limitedBefore = t.standin.rateLimited.length;
    // A Retry-After longer than the one second the client that answers people waits out itself.
    t.standin.limitRate('chat.postMessage', { max: 0, windowMs: 60_000, retryAfter: RETRY_AFTER_S });
    // A forged button on the Home tab: no response_url and no channel, so the refusal can only go by DM.
    await t.slack.blockAction({
      user: 'UMEMBER',
      view: home,
      actions: [{ type: 'button', action_id: 'api_tokens_open', block_id: 'b' }],
    });
    const refused = await eventually(() =>
      t.standin.rateLimited
        .slice(limitedBefore)
        .find((c) => c.method === 'chat.postMessage' && c.args.channel === 'UMEMBER'),
    );
    expect(refusals()).toHaveLength(0);
    t.standin.clearRateLimit('chat.postMessage');

    await eventually(() => refusals().length > 0, 20_000);
    // Not before Slack allowed: asking again sooner would only be refused again.
    const answered = t.standin.calls.find(
      (c) =>
        c.method === 'chat.postMessage' &&
        /Only admins can manage API tokens/.test(String(c.args.text)) &&
        !t.standin.rateLimited.includes(c),
    );
    expect(answered!.at).toBeGreaterThanOrEqual(refused.at + RETRY_AFTER_S * 1000);
    await jobsDrained(t.em(), { timeoutMs: 30_000 });
    expect(refusals()).toHaveLength(1);
  }, 60_000);
});
