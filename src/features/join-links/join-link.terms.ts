import { domainToASCII } from 'node:url';
import { atDomains, readableDomain } from '../accounts/allowed-domains.ts';
import { normalizeEmail } from '../people/people.service.ts';
import type { IJoinLink } from './join-link.entity.ts';

// A join link's terms as rules of their own: which email domains it admits, and whether it still works.

/** A domain label in ASCII: 1 to 63 letters, digits and hyphens, neither first nor last a hyphen. */
const LABEL = /^(?!-)[a-z0-9-]{1,63}(?<!-)$/;

/**
 * Whether `ascii` is an email domain: at least two labels, at most 253 characters, and a last label that is
 * not all digits (`10.0.0.1` is an address, not a domain).
 */
export function isDomain(ascii: string): boolean {
  const labels = ascii.split('.');
  return (
    ascii.length <= 253 &&
    labels.length >= 2 &&
    labels.every((label) => LABEL.test(label)) &&
    !/^\d+$/.test(labels.at(-1)!)
  );
}
export const MAX_DOMAINS = 50;
/**
 * The longest a domain list may be, typed in its form and as {@link domainsText} writes it back there: a list
 * typed tightly ("a1.example,a2.example") reads longer written back, and a saved list must reopen in the form
 * (Slack refuses a field that starts with more than it takes) and save again as it is. The room over 1,000
 * covers the lists saved when only the typed text was held to 1,000 characters: at most 1,049 written back.
 */
export const MAX_DOMAINS_TEXT = 1100;

/** A saved domain list as its form shows it again: each domain as typed (`bücher.de`, not `xn--…`). */
export function domainsText(domains: readonly string[]): string {
  return domains.map(readableDomain).join(', ');
}

/**
 * Reads "acme.com, @acme.co.uk, bücher.de" into lower-cased domains, or says which entry is not a domain. A
 * domain in another script is kept in its ASCII form (`xn--bcher-kva.de`): addresses are kept in that form
 * (browsers send it so), and it is what they are compared with; forms and messages show it as typed.
 */
export function parseDomains(text: string): { ok: true; domains: string[] } | { ok: false; error: string } {
  if (text.length > MAX_DOMAINS_TEXT) {
    return {
      ok: false,
      error: `Keep the domains to at most ${MAX_DOMAINS_TEXT.toLocaleString('en-US')} characters.`,
    };
  }
  const typed = text
    .split(/[\s,;]+/)
    .map((d) => d.trim().toLowerCase().replace(/^@/, ''))
    .filter(Boolean);
  const domains: string[] = [];
  for (const d of typed) {
    // domainToASCII gives '' for what is no domain in any script (`xn--` labels that do not decode too). A
    // final dot (`acme.com.`, the DNS root) names the same domain.
    const ascii = domainToASCII(d.replace(/\.$/, ''));
    if (!ascii || !isDomain(ascii)) {
      return { ok: false, error: `Not a domain: ${d.slice(0, 100)}. Domains look like example.com.` };
    }
    domains.push(ascii);
  }
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
    ? `This link is only for ${atDomains(allowed)} addresses.`
    : "This link no longer admits any address: its email domains are not among the account's allowed email domains.";
}

export type LinkState = 'active' | 'full' | 'expired' | 'revoked';

export function linkState(link: IJoinLink, now: Date): LinkState {
  if (link.revokedAt) return 'revoked';
  if (link.expiresAt <= now) return 'expired';
  if (link.maxUses != null && link.uses >= link.maxUses) return 'full';
  return 'active';
}
