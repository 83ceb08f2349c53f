import { normalizeEmail } from '../people/people.service.ts';
import type { IJoinLink } from './join-link.entity.ts';

// A join link's terms as rules of their own: which email domains it admits, and whether it still works.

/** An email domain: labels of letters, digits and hyphens, at least two. */
export const DOMAIN = /^[a-z0-9-]+(\.[a-z0-9-]+)+$/;
/** Limits of a link's domain list, the same in the form and here. */
export const MAX_DOMAINS_TEXT = 1000;
export const MAX_DOMAINS = 50;

/** Reads "acme.com, @acme.co.uk" into lower-cased domains, or says which entry is not a domain. */
export function parseDomains(text: string): { ok: true; domains: string[] } | { ok: false; error: string } {
  if (text.length > MAX_DOMAINS_TEXT) {
    return { ok: false, error: `Keep the domains under ${MAX_DOMAINS_TEXT} characters.` };
  }
  const domains = text
    .split(/[\s,;]+/)
    .map((d) => d.trim().toLowerCase().replace(/^@/, ''))
    .filter(Boolean);
  const bad = domains.find((d) => !DOMAIN.test(d));
  if (bad) return { ok: false, error: `Not a domain: ${bad.slice(0, 100)}. Domains look like example.com.` };
  const unique = [...new Set(domains)];
  if (unique.length > MAX_DOMAINS) return { ok: false, error: `At most ${MAX_DOMAINS} domains per link.` };
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

export type LinkState = 'active' | 'full' | 'expired' | 'revoked';

export function linkState(link: IJoinLink, now: Date): LinkState {
  if (link.revokedAt) return 'revoked';
  if (link.expiresAt <= now) return 'expired';
  if (link.maxUses != null && link.uses >= link.maxUses) return 'full';
  return 'active';
}
