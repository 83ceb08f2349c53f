import type { EntityManager } from '@mikro-orm/postgresql';
import { query, type Sql, sql } from '../../db/sql.ts';
import type { Role, UserStatus } from '../people/user.entity.ts';
import type { AuditEventOut, ContactOut, ContactStatus, PersonOut } from './api.schemas.ts';

/** Where a list stands: the last row handed out, by the transaction that last wrote it and its id. */
export type Position = { xid: string; id: string };

export type PeopleFilters = { status?: UserStatus[]; role?: Role[]; updatedSince?: string };
export type ContactFilters = { status?: ContactStatus[]; updatedSince?: string };
export type AuditFilters = { since?: string };

export type Page<T> = { rows: T[]; last: Position | null; hasMore: boolean };

/**
 * The change position below which every transaction has ended, for this statement's snapshot: the oldest
 * transaction still running at the snapshot, or the snapshot's horizon when none is. Transactions running
 * in other databases of the server cannot have written these tables, so they do not count; they are told
 * apart by pg_stat_activity, and a running transaction it does not show (one that ended since the snapshot,
 * a prepared one, one whose details this role may not see) counts, to be safe.
 */
export const SETTLED_BELOW = sql.raw(`(select coalesce(min(x), pg_snapshot_xmax(pg_current_snapshot()))
  from pg_snapshot_xip(pg_current_snapshot()) x
  where ((x::text)::bigint % 4294967296) not in (
    select backend_xid::text::bigint from pg_stat_activity
    where backend_xid is not null and datname is distinct from current_database()))`);

/**
 * Rows whose writing transaction ended before every transaction still running here began. A row written
 * by a transaction still open (or one that began before it) waits: once it shows, it sorts after every
 * position already handed out, so a client that follows the cursor sees every change, in order.
 */
const settled = (alias: string) => sql`${sql.raw(alias)}.change_xid < ${SETTLED_BELOW}`;

const after = (alias: string, position: Position | null, idType: 'uuid' | 'bigint') =>
  position
    ? sql`(${sql.raw(`${alias}.change_xid, ${alias}.id`)}) > (${position.xid}::xid8, ${position.id}::${sql.raw(idType)})`
    : sql`true`;

/** A timestamp column as ISO 8601 in UTC, to the microsecond Postgres keeps (so updated_since can take it back exactly). */
const iso = (column: string) =>
  `to_char(${column} at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') as ${column.split('.').at(-1)}`;

async function pageOf<R extends { change_xid: string; id: string | number }, T>(
  em: EntityManager,
  statement: Sql,
  limit: number,
  map: (row: R) => T,
): Promise<Page<T>> {
  const rows = await query<R>(em, statement);
  const hasMore = rows.length > limit;
  const shown = rows.slice(0, limit);
  const lastRow = shown.at(-1);
  return {
    rows: shown.map(map),
    last: lastRow ? { xid: lastRow.change_xid, id: String(lastRow.id) } : null,
    hasMore,
  };
}

type PersonRow = {
  id: string;
  email: string;
  first_name: string | null;
  last_name: string | null;
  title: string | null;
  phone: string | null;
  role: Role;
  status: UserStatus;
  permission_set: string | null;
  slack_user_id: string | null;
  login_missing: boolean;
  deactivated_at: string | null;
  created_at: string;
  updated_at: string;
  change_xid: string;
};

// The permission set's name by subquery, not a join: a join leads the planner to hash the whole account
// and sort it, where the subquery keeps the ordered index scan that stops after one page.
const PERSON_COLUMNS = sql.raw(`u.id, u.email, u.first_name, u.last_name, u.title, u.phone, u.role, u.status,
  (select ps.name from permission_set ps where ps.id = u.permission_set_id) as permission_set, u.slack_user_id, u.login_missing, ${iso('u.deactivated_at')}, ${iso('u.created_at')},
  ${iso('u.updated_at')}, u.change_xid::text as change_xid`);

function person(row: PersonRow): PersonOut {
  return {
    id: row.id,
    // A person imported without a login email has a placeholder address that delivers nowhere.
    email: row.login_missing ? null : row.email,
    first_name: row.first_name,
    last_name: row.last_name,
    title: row.title,
    phone: row.phone,
    role: row.role,
    status: row.status,
    permission_set: row.permission_set,
    slack_user_id: row.slack_user_id,
    login_missing: row.login_missing,
    deactivated_at: row.deactivated_at,
    created_at: row.created_at,
    updated_at: row.updated_at,
  };
}

/** The account's people after `from`, in change order. */
export function listPeople(
  em: EntityManager,
  accountId: string,
  filters: PeopleFilters,
  from: Position | null,
  limit: number,
): Promise<Page<PersonOut>> {
  const where = [
    sql`u.account_id = ${accountId}`,
    settled('u'),
    after('u', from, 'uuid'),
    ...(filters.status ? [sql`u.status = any(${filters.status}::text[])`] : []),
    ...(filters.role ? [sql`u.role = any(${filters.role}::text[])`] : []),
    ...(filters.updatedSince ? [sql`u.updated_at >= ${filters.updatedSince}::timestamptz`] : []),
  ];
  return pageOf(
    em,
    sql`select ${PERSON_COLUMNS} from app_user u
      where ${sql.join(where, ' and ')} order by u.change_xid, u.id limit ${limit + 1}`,
    limit,
    person,
  );
}

/** One of the account's people as they are now, or null (also for another account's id). */
export async function findPerson(
  em: EntityManager,
  accountId: string,
  id: string,
): Promise<PersonOut | null> {
  const [row] = await query<PersonRow>(
    em,
    sql`select ${PERSON_COLUMNS} from app_user u
      where u.account_id = ${accountId} and u.id = ${id}::uuid`,
  );
  return row ? person(row) : null;
}

type ContactRow = {
  id: string;
  name: string;
  email: string | null;
  phone: string | null;
  company: string | null;
  title: string | null;
  notes: string | null;
  user_id: string | null;
  created_at: string;
  updated_at: string;
  change_xid: string;
};

/** The account's contacts after `from`, in change order. */
export function listContacts(
  em: EntityManager,
  accountId: string,
  filters: ContactFilters,
  from: Position | null,
  limit: number,
): Promise<Page<ContactOut>> {
  const statuses = filters.status;
  const where = [
    sql`c.account_id = ${accountId}`,
    settled('c'),
    after('c', from, 'uuid'),
    ...(statuses && statuses.length === 1
      ? [statuses[0] === 'converted' ? sql`c.user_id is not null` : sql`c.user_id is null`]
      : []),
    ...(filters.updatedSince ? [sql`c.updated_at >= ${filters.updatedSince}::timestamptz`] : []),
  ];
  return pageOf<ContactRow, ContactOut>(
    em,
    sql`select c.id, c.name, c.email, c.phone, c.company, c.title, c.notes, c.user_id,
        ${sql.raw(iso('c.created_at'))}, ${sql.raw(iso('c.updated_at'))}, c.change_xid::text as change_xid
      from contact c where ${sql.join(where, ' and ')} order by c.change_xid, c.id limit ${limit + 1}`,
    limit,
    (row) => ({
      id: row.id,
      name: row.name,
      email: row.email,
      phone: row.phone,
      company: row.company,
      title: row.title,
      notes: row.notes,
      status: row.user_id ? 'converted' : 'contact',
      person_id: row.user_id,
      created_at: row.created_at,
      updated_at: row.updated_at,
    }),
  );
}

type AuditRow = {
  id: string;
  action: string;
  actor: string;
  subject_type: string;
  subject_id: string | null;
  surface: AuditEventOut['surface'];
  data: Record<string, unknown>;
  created_at: string;
  change_xid: string;
};

/** The account's audit events after `from`, in the order their transactions settled, then by id. */
export function listAuditEvents(
  em: EntityManager,
  accountId: string,
  filters: AuditFilters,
  from: Position | null,
  limit: number,
): Promise<Page<AuditEventOut>> {
  const where = [
    sql`e.account_id = ${accountId}`,
    settled('e'),
    after('e', from, 'bigint'),
    ...(filters.since ? [sql`e.created_at >= ${filters.since}::timestamptz`] : []),
  ];
  return pageOf<AuditRow, AuditEventOut>(
    em,
    sql`select e.id, e.action, e.actor, e.subject_type, e.subject_id, e.surface, e.data,
        ${sql.raw(iso('e.created_at'))}, e.change_xid::text as change_xid
      from audit_event e where ${sql.join(where, ' and ')} order by e.change_xid, e.id limit ${limit + 1}`,
    limit,
    (row) => ({
      id: Number(row.id),
      action: row.action,
      actor: row.actor,
      subject_type: row.subject_type,
      subject_id: row.subject_id,
      surface: row.surface,
      data: row.data ?? {},
      created_at: row.created_at,
    }),
  );
}

/** Where the account's audit event `id` stands in the list, or null when the account has no such event. */
export async function auditPosition(
  em: EntityManager,
  accountId: string,
  id: string,
): Promise<Position | null> {
  const [row] = await query<{ change_xid: string }>(
    em,
    sql`select change_xid::text as change_xid from audit_event where account_id = ${accountId} and id = ${id}::bigint`,
  );
  return row ? { xid: row.change_xid, id } : null;
}
