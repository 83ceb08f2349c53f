import { z } from 'zod';
import { ROLES, type Role } from '../people/user.entity.ts';

export const MAX_EMAILS = 100;
/** What the addresses field takes: Slack's own limit for a text input. */
export const MAX_EMAILS_TEXT = 3000;
/** The personal message's limit, the same in the form and here. */
export const MAX_MESSAGE = 1000;
const emailSchema = z.email();

/** Splits what a person typed into addresses: commas, semicolons, spaces or new lines; duplicates dropped. */
export function parseEmails(text: string): { emails: string[]; invalid: string[]; duplicates: string[] } {
  const seen = new Set<string>();
  const emails: string[] = [];
  const invalid: string[] = [];
  const duplicates: string[] = [];
  for (const raw of text.split(/[\s,;]+/)) {
    const token = raw
      .trim()
      .replace(/^<?mailto:/i, '')
      .replace(/^<|>$/g, '');
    if (!token) continue;
    // Slack turns typed addresses into <mailto:a@b.c|a@b.c>.
    const email = token.includes('|') ? (token.split('|')[1] ?? token) : token;
    if (!emailSchema.safeParse(email).success) {
      invalid.push(email);
      continue;
    }
    const key = email.toLowerCase();
    if (seen.has(key)) {
      duplicates.push(email);
      continue;
    }
    seen.add(key);
    emails.push(email);
  }
  return { emails, invalid, duplicates };
}

/** `/invite ana@x.com, bo@y.org contractor`: the addresses and the role, as typed. */
export function parseInviteText(text: string): { emailsText: string; role?: Role } {
  let role: Role | undefined;
  const rest: string[] = [];
  for (const token of text.split(/[\s,;]+/).filter(Boolean)) {
    const lower = token.toLowerCase();
    if ((ROLES as readonly string[]).includes(lower)) role = lower as Role;
    else rest.push(token.replace(/^<mailto:[^|]*\|(.*)>$/, '$1'));
  }
  return { emailsText: rest.join('\n'), role };
}
