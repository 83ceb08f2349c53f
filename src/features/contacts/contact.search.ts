import type { EntityManager } from '@mikro-orm/postgresql';
import { query, type Sql, sql } from '../../db/sql.ts';
import type { IAccount } from '../accounts/account.entity.ts';
import { displayName, oneLine, type Role, type UserStatus } from '../people/user.entity.ts';

export type SearchHit =
  | {
      kind: 'contact';
      id: string;
      name: string;
      email: string | null;
      company: string | null;
      convertedTo: { email: string; status: UserStatus } | null;
    }
  | {
      kind: 'user';
      id: string;
      name: string;
      email: string;
      company: null;
      status: UserStatus;
      role: Role;
      /** The Slack user who added them: besides admins, the one who may send or resend their invitation. */
      addedBy: string | null;
    };

export const PAGE_SIZE = 10;

/** What follows a name's first word ("Lee" in "Ana Lee"); the expressions match the search indexes. */
const NAME_REST = String.raw`^\s*\S+\s+`;
const HAS_REST = String.raw`\S\s+\S`;
const USER_NAME = "lower(btrim(coalesce(first_name, '') || ' ' || coalesce(last_name, '')))";

/**
 * Contacts and users whose name, surname, email or company starts with `text`, case-insensitively,
 * ordered by what matched. Each branch reads only the first `offset + PAGE_SIZE + 1` entries of its
 * own prefix index, so a prefix shared by every row costs no more than a rare one.
 */
export async function searchPeople(
  em: EntityManager,
  account: IAccount,
  text: string,
  offset = 0,
): Promise<{ hits: SearchHit[]; more: boolean }> {
  const rows = await query<Record<string, any>>(em, searchStatement(account.id, text, offset));
  const hits = rows.slice(0, PAGE_SIZE).map(
    (r): SearchHit =>
      r.kind === 'contact'
        ? {
            kind: 'contact',
            id: r.id,
            // Shown on one line as a person's name is: a name from a CSV file may hold line breaks.
            name: displayName({ firstName: r.name, email: r.email ?? '' }),
            email: r.email,
            company: r.company == null ? null : oneLine(r.company),
            convertedTo: r.converted_email ? { email: r.converted_email, status: r.converted_status } : null,
          }
        : {
            kind: 'user',
            id: r.id,
            name: displayName({ firstName: r.first_name, lastName: r.last_name, email: r.user_email }),
            email: r.user_email,
            company: null,
            status: r.status,
            role: r.role,
            addedBy: r.added_by ?? null,
          },
  );
  return { hits, more: rows.length > PAGE_SIZE };
}

/** The search's statement: one page from `offset`, plus one row to tell whether more follow. */
export function searchStatement(accountId: string, text: string, offset = 0): Sql {
  // Names are kept with one space between their words: "ana  lee" is looked up as "ana lee".
  const prefix = `${text
    .trim()
    .replace(/\s+/g, ' ')
    .toLowerCase()
    .replace(/([%_\\])/g, '\\$1')}%`;
  const enough = offset + PAGE_SIZE + 1;
  // `using ~<~` sorts the way the text_pattern_ops indexes are ordered, so Postgres reads them in order
  // and stops early instead of sorting every match. Table names and key expressions are the code's own.
  const branch = (kind: 'contact' | 'user', table: string, key: string, extra = '') =>
    sql`(select ${sql.raw(`'${kind}'`)} as kind, id, ${sql.raw(key)} as k from ${sql.raw(table)}
       where account_id = ${accountId}${sql.raw(extra)} and ${sql.raw(key)} like ${prefix}
       order by ${sql.raw(key)} using ~<~, id limit ${enough})`;
  const branches = [
    branch('contact', 'contact', 'lower(name)'),
    branch(
      'contact',
      'contact',
      `lower(regexp_replace(name, '${NAME_REST}', ''))`,
      ` and name ~ '${HAS_REST}'`,
    ),
    branch('contact', 'contact', 'lower(email)'),
    branch('contact', 'contact', 'lower(company)'),
    // A placeholder login (`missing-…@login.invalid`) is no address: typing "missing" finds nobody by it.
    branch('user', 'app_user', 'lower(email)', ' and not login_missing'),
    branch('user', 'app_user', USER_NAME),
    branch('user', 'app_user', 'lower(last_name)'),
  ];
  return sql`with matched as (${sql.join(branches, ' union all ')}),
     best as (select distinct on (kind, id) kind, id, k from matched order by kind, id, k using ~<~)
     select b.kind, b.id, c.name, c.email, c.company, cu.email as converted_email,
       cu.status as converted_status, u.first_name, u.last_name, u.email as user_email, u.status, u.role,
       u.added_by
     from best b
     left join contact c on b.kind = 'contact' and c.id = b.id
     left join app_user cu on cu.id = c.user_id
     left join app_user u on b.kind = 'user' and u.id = b.id
     order by b.k using ~<~, b.kind, b.id
     limit ${PAGE_SIZE + 1} offset ${offset}`;
}
