import { domainToASCII } from 'node:url';
import { isEmailAddress } from '../../shared/email.ts';
import { ROLES, type Role } from '../people/user.entity.ts';

export const MAX_EMAILS = 100;
/** What the addresses field takes: Slack's own limit for a text input. */
export const MAX_EMAILS_TEXT = 3000;
/** The personal message's limit, the same in the form and here. */
export const MAX_MESSAGE = 1000;

/** An address as typed, with the name given with it (`Ana Lopez <ana@example.com>`), if any. */
export type TypedAddress = { email: string; firstName?: string; lastName?: string };

type Token =
  | { kind: 'sep' }
  | { kind: 'word'; text: string }
  | { kind: 'quoted'; text: string }
  | { kind: 'angle'; text: string };

/**
 * Slack's own formatting undone, as it escapes `/invite`'s text: an address it made a link of
 * (`<mailto:a@b.c|a@b.c>`) becomes the address, a link (`<https://…|…>`) its text, a channel (`<#C1|x>`)
 * `#x`, `<!here>` `@here`, a user group (`<!subteam^S1|@devs>`) its handle; and the `&lt;` `&gt;` `&amp;`
 * it writes for typed `<`, `>` and `&` become those characters again. Mentions (`<@U123|ana>`) are left as
 * they are, for the caller to look up.
 */
function unslack(text: string): string {
  return text
    .replace(/<mailto:([^|<>]*)(?:\|([^<>]*))?>/gi, (_m, href: string, label?: string) => label ?? href)
    .replace(
      /<((?:https?|ftp):\/\/[^|<>\s]*)(?:\|([^<>]*))?>/gi,
      (_m, href: string, label?: string) => label || href,
    )
    .replace(/<#([CG][A-Z0-9]+)(?:\|([^<>]*))?>/g, (_m, id: string, name?: string) => `#${name || id}`)
    .replace(/<!subteam\^[A-Z0-9]+(?:\|([^<>]*))?>/g, (_m, handle?: string) => handle || '@group')
    .replace(/<!(here|channel|everyone)(?:\|[^<>]*)?>/g, '@$1')
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&amp;/g, '&');
}

/** Reads text into words, "quoted strings", <angle brackets> and separators (commas, semicolons, lines). */
function tokens(text: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  while (i < text.length) {
    const c = text[i]!;
    if (c === ',' || c === ';' || c === '\n' || c === '\r') {
      out.push({ kind: 'sep' });
      i++;
    } else if (/\s/.test(c)) {
      i++;
    } else if (c === '"') {
      let j = i + 1;
      let value = '';
      while (j < text.length && text[j] !== '"') {
        if (text[j] === '\\' && j + 1 < text.length) j++;
        value += text[j];
        j++;
      }
      if (j >= text.length) {
        // No closing quote: the rest of the line is one value, which is not an address.
        const line = text.slice(i).split(/[\n\r]/)[0]!;
        out.push({ kind: 'word', text: line.trim() });
        i += line.length;
      } else {
        out.push({ kind: 'quoted', text: value });
        i = j + 1;
      }
    } else if (
      c === '<' &&
      text.indexOf('>', i) > i &&
      !/[\n\r<]/.test(text.slice(i + 1, text.indexOf('>', i)))
    ) {
      const close = text.indexOf('>', i);
      out.push({ kind: 'angle', text: text.slice(i + 1, close).trim() });
      i = close + 1;
    } else {
      const m = /^[^\s,;"<]+|^<[^\s,;"]*/.exec(text.slice(i))!;
      out.push({ kind: 'word', text: m[0] });
      i += m[0].length;
    }
  }
  return out;
}

/** "Lopez, Ana" is last name first; anything else is the first name, then the rest. */
function namesOf(parts: string[], quoted: boolean): Pick<TypedAddress, 'firstName' | 'lastName'> {
  const whole = parts.join(' ').replace(/\s+/g, ' ').trim();
  if (!whole) return {};
  const comma = quoted ? whole.indexOf(',') : -1;
  if (comma > 0) {
    const last = whole.slice(0, comma).trim();
    const first = whole.slice(comma + 1).trim();
    return { ...(first ? { firstName: first } : {}), ...(last ? { lastName: last } : {}) };
  }
  const [first, ...rest] = whole.split(' ');
  return { firstName: first!, ...(rest.length ? { lastName: rest.join(' ') } : {}) };
}

/** A piece of text as Roster reads it: an address (with a name), a Slack mention, or something else. */
type Entry =
  | { kind: 'address'; address: TypedAddress; raw: string }
  | { kind: 'mention'; slackUserId: string; label: string | null; raw: string }
  | { kind: 'other'; text: string };

/**
 * Reads addresses the way people paste them: bare (`ana@x.com`), with a name as Gmail and Outlook copy them
 * (`Ana Lopez <ana@x.com>`, `"Lopez, Ana" <ana@x.com>`), separated by commas, semicolons, spaces or lines,
 * as Slack formats them (`<mailto:…|…>`), and Slack mentions (`<@U123|ana>`). Words that are none of these
 * come back as `other`.
 */
function entries(text: string): Entry[] {
  const out: Entry[] = [];
  let pending: { text: string; quoted: boolean }[] = [];
  const flush = () => {
    for (const p of pending) out.push({ kind: 'other', text: p.quoted ? `"${p.text}"` : p.text });
    pending = [];
  };
  for (const token of tokens(unslack(text))) {
    if (token.kind === 'sep') {
      flush();
    } else if (token.kind === 'angle') {
      const mention = /^@([UW][A-Z0-9]+)(?:\|(.*))?$/.exec(token.text);
      if (mention) {
        flush();
        out.push({
          kind: 'mention',
          slackUserId: mention[1]!,
          label: mention[2] || null,
          raw: `<${token.text}>`,
        });
        continue;
      }
      const quoted = pending.length === 1 && pending[0]!.quoted;
      const names = namesOf(
        pending.map((p) => p.text),
        quoted,
      );
      const raw =
        `${pending.map((p) => (p.quoted ? `"${p.text}"` : p.text)).join(' ')} <${token.text}>`.trim();
      pending = [];
      out.push({ kind: 'address', address: { email: token.text, ...names }, raw });
    } else if (token.kind === 'word' && isEmailAddress(token.text)) {
      flush();
      out.push({ kind: 'address', address: { email: token.text }, raw: token.text });
    } else {
      pending.push({ text: token.text, quoted: token.kind === 'quoted' });
    }
  }
  flush();
  return out;
}

/**
 * Why an address with accents or another script is refused, and what to do instead: its ASCII form when
 * only the domain has them (`ana@xn--exmple-cua.com`), else `otherwise` (`ask for another address` where an
 * admin types it, `use another address` where people type their own). Undefined for an address in ASCII.
 */
export function plainAsciiHint(value: string, otherwise = 'ask for another address'): string | undefined {
  const at = value.lastIndexOf('@');
  // biome-ignore lint/suspicious/noControlCharactersInRegex: ASCII is exactly what is tested here
  if (at <= 0 || !/[^\x00-\x7f]/.test(value)) return undefined;
  const local = value.slice(0, at);
  const domain = domainToASCII(value.slice(at + 1));
  // biome-ignore lint/suspicious/noControlCharactersInRegex: ASCII is exactly what is tested here
  const asciiLocal = !/[^\x00-\x7f]/.test(local);
  return asciiLocal && domain && isEmailAddress(`${local}@${domain}`)
    ? `Roster takes addresses in plain ASCII: write it ${local}@${domain}`
    : `Roster takes addresses in plain ASCII, without accents or other scripts; ${otherwise}`;
}

/**
 * Why `value` is not an address, in words a person can act on: an address in another script (Roster, its
 * CSV import and its forms take addresses in ASCII), a Slack name, or anything else.
 */
function whyNotAnAddress(value: string): string {
  const hint = plainAsciiHint(value);
  if (hint) return `${value} (${hint})`;
  if (/^@[^@\s]+$/.test(value)) return `${value} (a Slack name, not an address: type their email)`;
  const withoutDot = value.replace(/\.+$/, '');
  if (withoutDot !== value && isEmailAddress(withoutDot))
    return `${value} (the final dot is not part of an address: write ${withoutDot})`;
  return value;
}

/** Splits what a person typed into addresses and the names given with them; duplicates dropped. */
export function parseAddresses(text: string): {
  addresses: TypedAddress[];
  invalid: string[];
  duplicates: string[];
} {
  const seen = new Set<string>();
  const addresses: TypedAddress[] = [];
  const invalid: string[] = [];
  const duplicates: string[] = [];
  for (const entry of entries(text)) {
    if (entry.kind === 'other') {
      invalid.push(entry.text);
      continue;
    }
    if (entry.kind === 'mention') {
      invalid.push(entry.label ? `@${entry.label}` : entry.raw);
      continue;
    }
    const { email } = entry.address;
    if (email.length > 254 || !isEmailAddress(email)) {
      invalid.push(email || entry.raw);
      continue;
    }
    const key = email.toLowerCase();
    if (seen.has(key)) {
      duplicates.push(email);
      continue;
    }
    seen.add(key);
    addresses.push(entry.address);
  }
  return { addresses, invalid, duplicates };
}

/** The addresses alone, for callers that need no names. */
export function parseEmails(text: string): { emails: string[]; invalid: string[]; duplicates: string[] } {
  const { addresses, invalid, duplicates } = parseAddresses(text);
  return { emails: addresses.map((a) => a.email), invalid, duplicates };
}

/** The form's error for values that are not addresses, each named with why where Roster can tell. */
export function invalidMessage(invalid: string[]): string {
  const shown = invalid.slice(0, 10).map(whyNotAnAddress);
  const more = invalid.length > 10 ? ` and ${invalid.length - 10} more` : '';
  return `Not valid email addresses: ${shown.join(', ')}${more}. Fix or remove them; a name goes with its address as Ana Lopez <ana@example.com>.`;
}

/**
 * `/invite ana@x.com, Bo Li <bo@y.org> contractor`: the addresses as lines for the form, the role, and the
 * Slack members mentioned, for the caller to look up. A role word counts only on its own, not inside a name.
 */
export function parseInviteText(text: string): {
  emailsText: string;
  role?: Role;
  mentions: { slackUserId: string; raw: string; label: string | null }[];
} {
  let role: Role | undefined;
  const lines: string[] = [];
  const mentions: { slackUserId: string; raw: string; label: string | null }[] = [];
  for (const entry of entries(text)) {
    if (entry.kind === 'other' && (ROLES as readonly string[]).includes(entry.text.toLowerCase())) {
      role = entry.text.toLowerCase() as Role;
    } else if (entry.kind === 'mention') {
      mentions.push({ slackUserId: entry.slackUserId, raw: entry.raw, label: entry.label });
    } else {
      lines.push(entry.kind === 'address' ? entry.raw : entry.text);
    }
  }
  return { emailsText: lines.join('\n'), role, mentions };
}

/** An address with its name, as the form shows it: `Ana Lopez <ana@example.com>`, or the address alone. */
export function addressLine(address: TypedAddress): string {
  const name = [address.firstName, address.lastName].filter(Boolean).join(' ');
  if (!name) return address.email;
  return /[,;"<>@]/.test(name)
    ? `"${name.replace(/["\\]/g, '\\$&')}" <${address.email}>`
    : `${name} <${address.email}>`;
}

/**
 * Why typed addresses cannot go into the invite form, or null: more than it takes at once (the form would
 * refuse them, and Slack refuses to open a form filled with over 3,000 characters). The whole list is
 * refused rather than cut, so nobody is left out without the person noticing.
 */
export function tooManyToFill(emailsText: string): string | null {
  const { emails } = parseEmails(emailsText);
  const count = (n: number) => n.toLocaleString('en-US');
  if (emails.length > MAX_EMAILS) {
    return `At most ${MAX_EMAILS} addresses at once; you entered ${count(emails.length)}. Nobody was invited: run \`/invite\` again with up to ${MAX_EMAILS} of them, and the rest in another round.`;
  }
  if (emailsText.length > MAX_EMAILS_TEXT) {
    return `Keep the addresses under ${count(MAX_EMAILS_TEXT)} characters at once; you entered ${count(emailsText.length)}. Nobody was invited: run \`/invite\` again with fewer of them, and the rest in another round.`;
  }
  return null;
}
