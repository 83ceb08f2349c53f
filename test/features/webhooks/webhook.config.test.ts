import { type ConfigError, isWebhookSecret, loadConfig, webhookUrlProblem } from '../../../src/config.ts';
import { newSecret } from '../../../src/features/webhooks/webhook.endpoints.ts';

const base = { SLACK_SIGNING_SECRET: 'secret', SLACK_BOT_TOKEN: 'xoxb-1' };

function problems(env: Record<string, string>): string[] {
  try {
    loadConfig({ ...base, ...env });
    return [];
  } catch (err) {
    return (err as ConfigError).problems;
  }
}

describe('WEBHOOK_URL and WEBHOOK_SECRET', () => {
  it('configure one endpoint when both are set', () => {
    const secret = newSecret();
    expect(
      loadConfig({ ...base, WEBHOOK_URL: 'https://hooks.example.com/roster', WEBHOOK_SECRET: secret })
        .webhook,
    ).toEqual({
      url: 'https://hooks.example.com/roster',
      secret,
    });
    expect(loadConfig(base).webhook).toBeUndefined();
  });

  it('name what is wrong: one without the other, a secret not in the whsec_ form, a URL that is not https', () => {
    expect(problems({ WEBHOOK_URL: 'https://hooks.example.com/' })).toEqual([
      'WEBHOOK_SECRET is missing: WEBHOOK_URL needs it',
    ]);
    expect(problems({ WEBHOOK_SECRET: newSecret() })).toEqual([
      'WEBHOOK_URL is missing: WEBHOOK_SECRET needs it',
    ]);
    for (const secret of ['plain-secret', 'whsec_', 'whsec_c2hvcnQ=', `whsec_${'*'.repeat(40)}`]) {
      expect(problems({ WEBHOOK_URL: 'https://hooks.example.com/', WEBHOOK_SECRET: secret })).toEqual([
        'WEBHOOK_SECRET must be a signing secret in the whsec_… form (whsec_ and base64 of 24 to 64 bytes)',
      ]);
    }
    expect(problems({ WEBHOOK_URL: 'http://hooks.example.com/', WEBHOOK_SECRET: newSecret() })).toEqual([
      'WEBHOOK_URL must start with https:// (or http:// to localhost or 127.0.0.1)',
    ]);
    // A local receiver over plain http is fine while trying Roster out, not in production.
    expect(problems({ WEBHOOK_URL: 'http://127.0.0.1:4000/', WEBHOOK_SECRET: newSecret() })).toEqual([]);
    expect(
      problems({
        WEBHOOK_URL: 'http://localhost:4000/',
        WEBHOOK_SECRET: newSecret(),
        NODE_ENV: 'production',
      }),
    ).toEqual(['WEBHOOK_URL must start with https://']);
  });

  it('accept the secrets Roster makes and those of other Standard Webhooks senders', () => {
    expect(isWebhookSecret(newSecret())).toBe(true);
    expect(isWebhookSecret('whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw')).toBe(true);
    expect(isWebhookSecret('MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw')).toBe(false);
    expect(webhookUrlProblem('https://example.com/x', true)).toBeNull();
    expect(webhookUrlProblem('http://192.168.1.10/x', false)).toBe(
      'must start with https:// (or http:// to localhost or 127.0.0.1)',
    );
    expect(webhookUrlProblem('http://192.168.1.10/x', true)).toBe('must start with https://');
  });
});
