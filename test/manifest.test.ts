import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { WebClient } from '@slack/web-api';
import type { ValidateFunction } from 'ajv';
import { Ajv } from 'ajv';
import { parse } from 'yaml';
import { features } from '../src/features/index.ts';

/**
 * manifest.yml against Slack's public JSON Schema for app manifests (slackapi/manifest-schema, MIT),
 * kept beside the repository in ../shared/slack-manifest-schema/. Nothing here fetches from the network:
 * the entry schema refers to the versioned schemas by their raw GitHub URLs, so each local file is
 * registered under that URL.
 */
const schemaDir = new URL('../../shared/slack-manifest-schema/', import.meta.url);
const SCHEMA_BASE = 'https://raw.githubusercontent.com/slackapi/manifest-schema/v0.5.0/schemas/';
const EVENTS_URL_PATH = '/slack/events';

type Manifest = {
  _metadata: { major_version: number; minor_version: number };
  display_information: {
    name: string;
    description: string;
    long_description: string;
    background_color: string;
  };
  features: {
    app_home: Record<string, boolean>;
    bot_user: { display_name: string; always_online: boolean };
    shortcuts: { name: string; type: 'global' | 'message'; callback_id: string; description: string }[];
    slash_commands: {
      command: string;
      url: string;
      description: string;
      usage_hint: string;
      should_escape: boolean;
    }[];
  };
  oauth_config: { scopes: { bot: string[] } };
  settings: {
    event_subscriptions: { request_url: string; bot_events: string[] };
    interactivity: { is_enabled: boolean; request_url: string };
    socket_mode_enabled: boolean;
  };
};

function readSchema(name: string): Record<string, unknown> {
  const file = new URL(name, schemaDir);
  if (!existsSync(file)) {
    throw new Error(
      `Slack's manifest schema is missing: expected ${fileURLToPath(file)}. ` +
        'This test needs the shared directory beside the repository (../shared/slack-manifest-schema/, ' +
        'from https://github.com/slackapi/manifest-schema); it does not skip without it.',
    );
  }
  return JSON.parse(readFileSync(file, 'utf8'));
}

type Validator = { validate: ValidateFunction; forVersion: (major: number) => ValidateFunction | undefined };

let compiled: Validator | undefined;
function validator(): Validator {
  if (compiled) return compiled;
  const entry = readSchema('manifest.schema.json');
  // The versions the entry schema refers to; fail loudly if a newer copy points somewhere else.
  const refs = [...JSON.stringify(entry).matchAll(/"\$ref":"([^"]+)"/g)].map((m) => m[1]);
  const versioned = ['manifest.schema.1.0.0.json', 'manifest.schema.2.0.0.json'];
  expect([...new Set(refs)].sort()).toEqual(versioned.map((name) => SCHEMA_BASE + name));

  const ajv = new Ajv({ strict: false, allErrors: true, validateFormats: false });
  for (const name of versioned) ajv.addSchema(readSchema(name), SCHEMA_BASE + name);
  compiled = {
    validate: ajv.compile(entry),
    forVersion: (major) => ajv.getSchema(`${SCHEMA_BASE}manifest.schema.${major}.0.0.json`),
  };
  return compiled;
}

/**
 * Why a manifest fails, readably: the entry schema's oneOf reports every version it tried, so the errors
 * come from the versioned schema that `_metadata.major_version` selects when there is one.
 */
function explain(v: Validator, data: unknown): string {
  const major = (data as { _metadata?: { major_version?: unknown } })._metadata?.major_version;
  const specific = typeof major === 'number' ? v.forVersion(major) : undefined;
  let errors = specific && !specific(data) ? specific.errors : undefined;
  if (!errors) {
    v.validate(data);
    errors = v.validate.errors;
  }
  const lines = (errors ?? []).map(
    (e) => `${e.instancePath || '(root)'} ${e.message} ${JSON.stringify(e.params)}`,
  );
  return [...new Set(lines)].join('\n');
}

const manifestText = readFileSync(new URL('../manifest.yml', import.meta.url), 'utf8');
const manifest = parse(manifestText) as Manifest;
const copy = (): Manifest => structuredClone(manifest);

describe('manifest.yml', () => {
  it("validates against Slack's manifest schema", () => {
    const v = validator();
    const ok = v.validate(manifest);
    if (!ok) throw new Error(`manifest.yml does not match Slack's schema:\n${explain(v, manifest)}`);
    expect(ok).toBe(true);
  });

  it('has a hex background colour (the schema says so with a keyword validators ignore)', () => {
    expect(manifest.display_information.background_color).toMatch(/^#[0-9a-fA-F]{3}([0-9a-fA-F]{3})?$/);
  });

  it('is rejected by the same validator when a field is wrong', () => {
    const { validate } = validator();

    const wrongType = copy();
    (wrongType.display_information as { name: unknown }).name = 42;
    expect(validate(wrongType)).toBe(false);
    expect(validate.errors?.map((e) => e.instancePath)).toContain('/display_information/name');

    const shortLong = copy();
    shortLong.display_information.long_description = 'Too short for Slack.';
    expect(validate(shortLong)).toBe(false);
    expect(validate.errors?.map((e) => e.instancePath)).toContain('/display_information/long_description');

    const badShortcut = copy();
    (badShortcut.features.shortcuts[0] as { type: string }).type = 'channel';
    expect(validate(badShortcut)).toBe(false);
    expect(validate.errors?.map((e) => e.instancePath)).toContain('/features/shortcuts/0/type');

    const unknownSetting = copy();
    (unknownSetting.settings as Record<string, unknown>).socket_mode = true;
    expect(validate(unknownSetting)).toBe(false);
  });

  it('targets a manifest version the schema knows and says how to point it at a real host', () => {
    expect(manifest._metadata.major_version).toBe(2);
    expect(manifestText.split('\n')[0]).toMatch(/^#/);
    expect(manifestText).toMatch(/^#.*Replace every https:\/\/roster\.example\.com/m);
    expect(manifestText).toMatch(/^#.*socket_mode_enabled/m);
  });

  it(`sends every command, interaction and event to ${EVENTS_URL_PATH}`, () => {
    const urls = [
      ...manifest.features.slash_commands.map((c) => c.url),
      manifest.settings.interactivity.request_url,
      manifest.settings.event_subscriptions.request_url,
    ];
    expect(urls).toHaveLength(manifest.features.slash_commands.length + 2);
    for (const url of urls) {
      expect(url).toMatch(/^https:\/\//);
      expect(url.endsWith(EVENTS_URL_PATH)).toBe(true);
      expect(new URL(url).pathname).toBe(EVENTS_URL_PATH);
    }
    expect(new Set(urls).size).toBe(1);
    expect(manifest.settings.interactivity.is_enabled).toBe(true);
    expect(manifest.settings.socket_mode_enabled).toBe(false);
  });

  it('declares every slash command Roster handles, with a usage hint; /invite, /people and /seats get mentions escaped', () => {
    const commands = manifest.features.slash_commands;
    expect(commands.map((c) => c.command).sort()).toEqual([
      '/contact',
      '/invite',
      '/joinlink',
      '/people',
      '/seats',
    ]);
    for (const c of commands) {
      // `/invite @ana` and `/people @ana` must arrive as <@U…|ana> to name one person (unescaped, Slack sends
      // the plain `@ana`, which names nobody), and `/seats channel #approvals` as <#C…|…> to name one
      // channel; the others read typed text as it is.
      expect(c.should_escape).toBe(['/invite', '/people', '/seats'].includes(c.command));
      expect(c.description.length).toBeGreaterThan(0);
      expect(c.usage_hint.length).toBeGreaterThan(0);
    }
  });

  it('declares the global and message shortcuts', () => {
    const byId = Object.fromEntries(manifest.features.shortcuts.map((s) => [s.callback_id, s.type]));
    expect(byId).toEqual({
      invite_people: 'global',
      add_contact: 'global',
      import_csv: 'global',
      save_author_contact: 'message',
      invite_author: 'message',
    });
  });

  it('subscribes to the bot events Roster handles, with the Home tab on', () => {
    expect([...manifest.settings.event_subscriptions.bot_events].sort()).toEqual([
      'app_home_opened',
      'app_uninstalled',
      'message.im',
      'team_join',
      'team_rename',
      'tokens_revoked',
      'user_change',
    ]);
    expect(manifest.features.app_home).toEqual({
      home_tab_enabled: true,
      messages_tab_enabled: true,
      messages_tab_read_only_enabled: false,
    });
    expect(manifest.features.bot_user).toEqual({ display_name: 'roster', always_online: true });
  });

  it('asks for exactly the bot scopes Roster needs', () => {
    // The schema has no list of valid scopes, so the list is pinned here: adding one is a decision.
    const scopes = manifest.oauth_config.scopes.bot;
    expect(new Set(scopes).size).toBe(scopes.length);
    expect([...scopes].sort()).toEqual(
      [
        'commands',
        'chat:write',
        'chat:write.public',
        'im:write',
        'im:history',
        'users:read',
        'users:read.email',
        'files:read',
        'files:write',
        'team:read',
        'channels:read',
        'groups:read',
      ].sort(),
    );
  });
});

/**
 * What the features register with Slack, read by handing each feature's `slack()` an app that records the
 * commands, shortcuts and events it is given (and ignores the rest), so a listener added without its manifest
 * entry fails here rather than never being called in a workspace.
 */
function registeredWithSlack(): { commands: string[]; shortcuts: string[]; events: string[] } {
  const seen = { commands: new Set<string>(), shortcuts: new Set<string>(), events: new Set<string>() };
  const idOf = (x: unknown) =>
    typeof x === 'string' ? x : ((x as { callback_id?: string; type?: string })?.callback_id ?? String(x));
  // Anything else a registration reaches for (deps, app.action, app.view, …) answers with itself.
  const anything: object = new Proxy(() => {}, {
    get: (_t, key) => (key === Symbol.toPrimitive ? () => '' : key === 'then' ? undefined : anything),
    apply: () => anything,
  });
  const app = new Proxy(anything, {
    get(target, key) {
      if (key === 'command') return (name: unknown) => seen.commands.add(idOf(name));
      if (key === 'shortcut') return (id: unknown) => seen.shortcuts.add(idOf(id));
      if (key === 'event') return (type: unknown) => seen.events.add(idOf(type));
      if (key === 'message') return () => seen.events.add('message.im');
      if (key === 'durableEvents') {
        return { on: (o: { type: string }) => seen.events.add(o.type === 'message' ? 'message.im' : o.type) };
      }
      return Reflect.get(target, key);
    },
  });
  for (const feature of features) feature.slack?.(app as never, anything as never);
  const sorted = (s: Set<string>) => [...s].sort();
  return { commands: sorted(seen.commands), shortcuts: sorted(seen.shortcuts), events: sorted(seen.events) };
}

describe('manifest.yml and the code', () => {
  const registered = registeredWithSlack();

  it('declares every slash command and shortcut the features listen to, and none they do not', () => {
    expect(registered.commands.length).toBeGreaterThan(0);
    expect(manifest.features.slash_commands.map((c) => c.command).sort()).toEqual(registered.commands);
    expect(manifest.features.shortcuts.map((s) => s.callback_id).sort()).toEqual(registered.shortcuts);
  });

  it('subscribes to every event the features listen to, and to the token events the app itself watches', () => {
    // The Slack app itself (src/slack/app.ts) listens to app_uninstalled and tokens_revoked.
    const own = [...readSource('slack/app.ts').matchAll(/\bapp\.event\(\s*'([a-z_.]+)'/g)].map((m) => m[1]);
    expect(own.sort()).toEqual(['app_uninstalled', 'tokens_revoked']);
    const events = [...registered.events, ...own].sort();
    expect([...manifest.settings.event_subscriptions.bot_events].sort()).toEqual([...new Set(events)]);
  });
});

const srcDir = fileURLToPath(new URL('../src/', import.meta.url));
const readSource = (path: string) => readFileSync(join(srcDir, path), 'utf8');
const sourceFiles = (dir = srcDir): string[] =>
  readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sourceFiles(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [],
  );

/**
 * The bot scopes each Web API method Roster calls needs, as Slack's method reference gives them
 * (docs.slack.dev/reference/methods/…). A method called without a row here fails the test below: look up
 * its scopes, add the row, and add the scope to manifest.yml if it is new.
 */
const METHOD_SCOPES: Record<string, string[]> = {
  'auth.test': [],
  'chat.delete': ['chat:write'],
  'chat.postEphemeral': ['chat:write'],
  'chat.postMessage': ['chat:write'],
  'chat.update': ['chat:write'],
  // Only the bot's own DMs are read back (a post Slack did not answer).
  'conversations.history': ['im:history'],
  // A public or a private channel (the approval channel, a join link's channel).
  'conversations.info': ['channels:read', 'groups:read'],
  'conversations.open': ['im:write'],
  'files.completeUploadExternal': ['files:write'],
  'files.getUploadURLExternal': ['files:write'],
  'files.info': ['files:read'],
  'files.uploadV2': ['files:write'],
  'team.info': ['team:read'],
  'users.info': ['users:read'],
  'users.list': ['users:read'],
  'users.lookupByEmail': ['users:read.email'],
  'views.open': [],
  'views.publish': [],
  'views.push': [],
  'views.update': [],
};

/** The bot scopes each event Roster subscribes to needs (docs.slack.dev/reference/events/…). */
const EVENT_SCOPES: Record<string, string[]> = {
  app_home_opened: [],
  app_uninstalled: [],
  'message.im': ['im:history'],
  team_join: ['users:read'],
  team_rename: ['team:read'],
  tokens_revoked: [],
  user_change: ['users:read'],
};

/** Scopes no single method or event call for, each with what in Roster needs it. */
const OTHER_SCOPES: Record<string, string> = {
  commands: 'the slash commands and shortcuts',
  'chat:write.public': 'chat.postMessage in a public channel Roster was not added to (join links, approvals)',
  'users:read.email': 'the email in users.info and users.list (the directory mirror, Invite author)',
  'files:read': "downloading an uploaded CSV file's url_private with the bot token",
};

/** Every Web API method src/ calls on a WebClient (`client.chat.postMessage(`, `slack.users.list(`, …). */
function webApiMethodsCalled(): Map<string, string[]> {
  const client = new WebClient() as unknown as Record<string, Record<string, unknown> | undefined>;
  const called = new Map<string, string[]>();
  for (const file of sourceFiles()) {
    const text = readFileSync(file, 'utf8');
    for (const m of text.matchAll(/\.([a-z]+)\.([a-zA-Z]+)\(/g)) {
      const [, family = '', method = ''] = m;
      // Only the Web API methods a WebClient has: `url.search.slice(`, a map's `.users.values(`, a
      // `this.logger.warn(` and a function's own `.emit.bind(` are not Slack calls.
      if (family === 'logger' || ['bind', 'call', 'apply'].includes(method)) continue;
      if (typeof client[family]?.[method] !== 'function') continue;
      const name = `${family}.${method}`;
      called.set(name, [...(called.get(name) ?? []), file.slice(srcDir.length)]);
    }
    if (/\.filesUploadV2\(/.test(text)) called.set('files.uploadV2', [file.slice(srcDir.length)]);
    // A method named in a string, as WebClient.apiCall takes it.
    for (const m of text.matchAll(/\bapiCall\(\s*'([a-z]+\.[a-zA-Z.]+)'/g)) {
      called.set(m[1] ?? '', [...(called.get(m[1] ?? '') ?? []), file.slice(srcDir.length)]);
    }
  }
  return called;
}

describe('manifest.yml scopes and the Web API calls in src/', () => {
  const called = webApiMethodsCalled();

  it('finds the calls it reads (so the checks below look at something)', () => {
    expect([...called.keys()]).toEqual(
      expect.arrayContaining(['chat.postMessage', 'users.lookupByEmail', 'conversations.open', 'team.info']),
    );
  });

  it('knows the scopes of every Web API method Roster calls', () => {
    const unknown = [...called].filter(([method]) => !(method in METHOD_SCOPES));
    expect(unknown.map(([method, files]) => `${method} (${files.join(', ')})`)).toEqual([]);
  });

  it('asks for every scope the calls and events need, and none that nothing needs', () => {
    const needed = new Set([
      ...[...called.keys()].flatMap((method) => METHOD_SCOPES[method] ?? []),
      ...manifest.settings.event_subscriptions.bot_events.flatMap((event) => {
        const scopes = EVENT_SCOPES[event];
        if (!scopes) throw new Error(`the bot scopes of event ${event} are not listed in EVENT_SCOPES`);
        return scopes;
      }),
      ...Object.keys(OTHER_SCOPES),
    ]);
    const asked = manifest.oauth_config.scopes.bot;
    expect({ missing: [...needed].filter((s) => !asked.includes(s)).sort() }).toEqual({ missing: [] });
    expect({ unused: asked.filter((s) => !needed.has(s)).sort() }).toEqual({ unused: [] });
  });

  it('lists no method Roster no longer calls', () => {
    expect(Object.keys(METHOD_SCOPES).filter((method) => !called.has(method))).toEqual([]);
  });
});
