import { normalizeEmail } from '../people/people.service.ts';
import type { IJoinLink } from './join-link.entity.ts';

// A join link's terms as rules of their own: which email domains it admits, and whether it still works.

/** An email domain: labels of letters, digits and hyphens, at least two. */
export const DOMAIN = /^[a-z0-9-]+(\.[a-z0-9-]+)+$/;
export const MAX_DOMAINS = 50;
/**
 * The longest a domain list may be, typed in its form and as {@link domainsText} writes it back there: a list
 * typed tightly ("a1.example,a2.example") reads longer written back, and a saved list must reopen in the form
 * (Slack refuses a field that starts with more than it takes) and save again as it is. The room over 1,000
 * covers the lists saved when only the typed text was held to 1,000 characters: at most 1,049 written back.
 */
export const MAX_DOMAINS_TEXT = 1100;

/** A saved domain list as its form shows it again. */
export function domainsText(domains: readonly string[]): string {
  return domains.join(', ');
}

/** Reads "acme.com, @acme.co.uk" into lower-cased domains, or says which entry is not a domain. */
export function parseDomains(text: string): { ok: true; domains: string[] } | { ok: false; error: string } {
  if (text.length > MAX_DOMAINS_TEXT) {
    return {
      ok: false,
      error: `Keep the domains under ${MAX_DOMAINS_TEXT.toLocaleString('en-US')} characters.`,
    };
  }
  const domains = text
    .split(/[\s,;]+/)
    .map((d) => d.trim().toLowerCase().replace(/^@/, ''))
    .filter(Boolean);
  const bad = domains.find((d) => !DOMAIN.test(d));
  if (bad) return { ok: false, error: `Not a domain: ${bad.slice(0, 100)}. Domains look like example.com.` };
  const unique = [...new Set(domains)];
  if (unique.length > MAX_DOMAINS) return { ok: false, error: `At most ${MAX_DOMAINS} domains.` };
  const listed = domainsText(unique).length;
  if (listed > MAX_DOMAINS_TEXT) {
    return {
      ok: false,
      error: `These domains come to ${listed.toLocaleString('en-US')} characters written as the form shows them again (with ", " between them), over ${MAX_DOMAINS_TEXT.toLocaleString('en-US')}: remove some.`,
    };
  }
  return { ok: true, domains: unique };
}

export function emailDomain(email: string): string {
  const e = normalizeEmail(email);
  return e.slice(e.lastIndexOf('@') + 1);
}

/** Whether the link admits this address; a link with no domains admits any. */
export function domainAllowed(link: Pick<IJoinLink, 'allowedEmailDomains'>, email: string): boolean {
  return link.allowedEmailDomains.length === 0 || link.allowedEmailDomains.includes(emailDomain(email));
}

/**
 * The domains a join through `link` admits, when the account allows only `accountDomains` (empty: any):
 * both lists apply, so with both set only the domains on both. Null: any domain.
 */
export function joinDomains(
  link: Pick<IJoinLink, 'allowedEmailDomains'>,
  accountDomains: readonly string[],
): string[] | null {
  if (accountDomains.length === 0) return link.allowedEmailDomains.length ? link.allowedEmailDomains : null;
  if (link.allowedEmailDomains.length === 0) return [...accountDomains];
  return link.allowedEmailDomains.filter((d) => accountDomains.includes(d));
}

/** What a person whose address a link does not admit is told, given {@link joinDomains}' list. */
export function onlyFor(allowed: readonly string[]): string {
  return allowed.length
    ? `This link is only for ${allowed.map((d) => `@${d}`).join(', ')} addresses.`
    : "This link no longer admits any address: its email domains are not among the account's allowed email domains.";
}

export type LinkState = 'active' | 'full' | 'expired' | 'revoked';

export function linkState(link: IJoinLink, now: Date): LinkState {
  if (link.revokedAt) return 'revoked';
  if (link.expiresAt <= now) return 'expired';
  if (link.maxUses != null && link.uses >= link.maxUses) return 'full';
  return 'active';
}
