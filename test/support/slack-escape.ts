import { readFileSync } from 'node:fs';
import { parse } from 'yaml';

/**
 * How Slack hands a slash command's text to the app, per the command's `should_escape` in manifest.yml.
 * Not escaped, the text arrives exactly as typed (`@ana` is just those four characters). Escaped, Slack
 * turns what it recognises into its own markup: a member's `@name` into `<@U…|name>`, a channel's `#name`
 * into `<#C…|name>` (a private channel's name left out: `<#G…|>`), `@here` into `<!here>`, an address into
 * `<mailto:a@b.test|a@b.test>`, a link into `<https://…>`; and the `&`, `<` and `>` typed around them into
 * `&amp;`, `&lt;` and `&gt;`. A name Slack does not know stays as typed.
 */

type ManifestCommand = { command: string; should_escape?: boolean };

let escaping: Map<string, boolean> | undefined;

/** Whether manifest.yml has Slack escape `command`'s text; undefined for a command it does not declare. */
export function shouldEscape(command: string): boolean | undefined {
  if (!escaping) {
    const manifest = parse(readFileSync(new URL('../../manifest.yml', import.meta.url), 'utf8')) as {
      features?: { slash_commands?: ManifestCommand[] };
    };
    escaping = new Map(
      (manifest.features?.slash_commands ?? []).map((c) => [c.command, c.should_escape === true]),
    );
  }
  return escaping.get(command);
}

/** What Slack knows to link: members by their name, and channels by their name. */
export type EscapeDirectory = {
  members: Iterable<{ id: string; name: string; deleted?: boolean }>;
  channels: Iterable<[string, { name: string; is_private: boolean }]>;
};

const SPECIAL = new Set(['here', 'channel', 'everyone']);
// A link or an address ends before the entity of a typed bracket, as Slack reads `<ana@x.test>`.
const PATTERN =
  /(https?:\/\/(?:(?!&[lg]t;)[^\s])+)|([A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,})|(?<![^\s(,;])@([A-Za-z0-9._-]+)|(?<![^\s(,;])#([a-z0-9_-]+)/g;

/** `typed` as Slack sends it in a command whose should_escape is true. */
export function escapeCommandText(typed: string, directory: EscapeDirectory): string {
  const members = new Map<string, string>();
  for (const m of directory.members) if (!m.deleted) members.set(m.name.toLowerCase(), m.id);
  const channels = new Map<string, { id: string; isPrivate: boolean }>();
  for (const [id, c] of directory.channels) channels.set(c.name, { id, isPrivate: c.is_private });
  const entities = typed.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
  return entities.replace(PATTERN, (whole, url?: string, email?: string, name?: string, channel?: string) => {
    if (url) return `<${url}>`;
    if (email) return `<mailto:${email}|${email}>`;
    if (name) {
      const trailing = /[.]+$/.exec(name)?.[0] ?? '';
      const bare = name.slice(0, name.length - trailing.length);
      if (SPECIAL.has(bare.toLowerCase())) return `<!${bare.toLowerCase()}>${trailing}`;
      const id = members.get(bare.toLowerCase());
      return id ? `<@${id}|${bare}>${trailing}` : whole;
    }
    if (channel) {
      const found = channels.get(channel);
      if (!found) return whole;
      return `<#${found.id}|${found.isPrivate ? '' : channel}>`;
    }
    return whole;
  });
}
