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
