import { readFileSync } from 'node:fs';
import { Ajv } from 'ajv';
import { parse } from 'yaml';

const schemaDir = new URL('../../shared/slack-manifest-schema/', import.meta.url);
const readJson = (name: string) => {
  try {
    return JSON.parse(readFileSync(new URL(name, schemaDir), 'utf8'));
  } catch (err) {
    throw new Error(
      `Slack's manifest schema is expected beside the repository, in ../shared/slack-manifest-schema/ (${err})`,
    );
  }
};

function validator() {
  const ajv = new Ajv({ strict: false, allErrors: true, validateFormats: false });
  for (const version of [1, 2]) {
    ajv.addSchema(
      readJson(`manifest.schema.${version}.0.0.json`),
      `https://raw.githubusercontent.com/slackapi/manifest-schema/v0.5.0/schemas/manifest.schema.${version}.0.0.json`,
    );
  }
  return ajv.compile(readJson('manifest.schema.json'));
}

const manifest = parse(readFileSync(new URL('../manifest.yml', import.meta.url), 'utf8'));

describe('manifest.yml', () => {
  it("validates against Slack's manifest schema", () => {
    const validate = validator();
    const ok = validate(manifest);
    if (!ok) throw new Error(JSON.stringify(validate.errors, null, 2));
    expect(ok).toBe(true);
  });

  it('is rejected by the same validator when a field has the wrong type', () => {
    const validate = validator();
    expect(
      validate({ ...manifest, display_information: { ...manifest.display_information, name: 42 } }),
    ).toBe(false);
  });

  it('sends every command, interaction and event to /slack/events', () => {
    const urls = [
      ...manifest.features.slash_commands.map((c: { url: string }) => c.url),
      manifest.settings.interactivity.request_url,
      manifest.settings.event_subscriptions.request_url,
    ];
    expect(urls).toHaveLength(6);
    for (const url of urls) expect(new URL(url).pathname).toBe('/slack/events');
  });

  it('declares every surface Roster serves', () => {
    expect(manifest.features.slash_commands.map((c: { command: string }) => c.command).sort()).toEqual([
      '/contact',
      '/invite',
      '/joinlink',
      '/seats',
    ]);
    expect(manifest.features.shortcuts.map((s: { callback_id: string }) => s.callback_id).sort()).toEqual([
      'add_contact',
      'import_csv',
      'invite_author',
      'invite_people',
      'save_author_contact',
    ]);
    expect(manifest.settings.event_subscriptions.bot_events.sort()).toEqual([
      'app_home_opened',
      'file_shared',
      'message.im',
      'user_change',
    ]);
    expect(manifest.features.app_home.home_tab_enabled).toBe(true);
    expect(manifest.oauth_config.scopes.bot).toEqual(
      expect.arrayContaining(['users:read.email', 'chat:write', 'commands']),
    );
  });
});
