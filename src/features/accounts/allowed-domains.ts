import { domainToUnicode } from 'node:url';
import type { EntityManager } from '@mikro-orm/postgresql';
import { query, sql } from '../../db/sql.ts';
import { DomainError } from '../../shared/errors.ts';
import type { IAccount } from './account.entity.ts';

// The account's "Allowed email domains": the only domains Roster sends invitations to and gives a login
// email at. Every path that does either (an invitation, a user added to be invited, a login email changed,
// an unlock or a reactivation, a CSV row asking for an invitation) asks here, admins included: an admin
// who needs another domain adds it in the settings, where the change is audited.

/**
 * A domain as people write it: one kept in its ASCII form (`xn--bcher-kva.de`, the form addresses are kept
 * and compared in) shown in its own script (`bücher.de`).
 */
export function readableDomain(domain: string): string {
  if (!/(^|\.)xn--/.test(domain)) return domain;
  return domainToUnicode(domain) || domain;
}

/** Domains as a message names them: `@acme.com, @bücher.de`. */
export function atDomains(domains: readonly string[]): string {
  return domains.map((d) => `@${readableDomain(d)}`).join(', ');
}

/** The domain of an address, lower-cased: what the allowed domains are compared with. */
export function domainOfEmail(email: string): string {
  const e = email.trim().toLowerCase();
  return e.slice(e.lastIndexOf('@') + 1);
}

/** The account's allowed email domains as committed now (not as a request loaded them); empty: any. */
export async function allowedDomains(em: EntityManager, account: Pick<IAccount, 'id'>): Promise<string[]> {
  const [row] = await query<{ domains: string[] | null }>(
    em,
    sql`select allowed_email_domains as domains from account where id = ${account.id}`,
  );
  return row?.domains ?? [];
}

/** Why `email` may not be a login of an account allowing only `domains`, or null when it may. */
export function outsideDomains(email: string, domains: readonly string[]): string | null {
  if (domains.length === 0 || domains.includes(domainOfEmail(email))) return null;
  return `${email.trim()} is not at an allowed domain: invitations and logins go only to ${atDomains(domains)} addresses. An admin can change the allowed email domains with \`/seats settings\`.`;
}

/** Why `email` may not be a login of this account now (outside its allowed email domains), or null. */
export async function outsideAllowedDomains(
  em: EntityManager,
  account: IAccount,
  email: string,
): Promise<string | null> {
  return outsideDomains(email, await allowedDomains(em, account));
}

/**
 * Refuses, with a message naming the allowed domains, a login email outside the account's allowed email
 * domains. `field` is the form input the error belongs to, if any.
 */
export async function refuseOutsideDomains(
  em: EntityManager,
  account: IAccount,
  email: string,
  field?: string,
): Promise<void> {
  const why = await outsideAllowedDomains(em, account, email);
  if (why) throw new DomainError('not_allowed', why, field ? { field } : {});
}
