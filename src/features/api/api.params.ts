import { createHmac, timingSafeEqual } from 'node:crypto';
import { z } from 'zod';
import { invalidCursor, invalidParameters } from '../../web/problem.ts';
import { ROLES, USER_STATUSES } from '../people/user.entity.ts';
import type { AuditFilters, ContactFilters, PeopleFilters, Position } from './api.queries.ts';
import { CONTACT_STATUSES } from './api.schemas.ts';

export const DEFAULT_LIMIT = 100;
export const MAX_LIMIT = 1000;

export type ListKind = 'people' | 'contacts' | 'audit-events';

type Filters = { people: PeopleFilters; contacts: ContactFilters; 'audit-events': AuditFilters };

/** A list request as the API reads it: its filters, page size, and where to continue from. */
export type ListRequest<K extends ListKind> = {
  kind: K;
  filters: Filters[K];
  limit: number;
  from: Position | null;
  /** audit-events?since=<id> on a first page: continue after that event. */
  afterEventId?: string;
  /** The filters as the cursor remembers them. */
  fingerprint: string;
  /** A cursor issued before cursors named their account: its position must be checked to be this account's. */
  unbound?: boolean;
};

const PARAMETERS: Record<ListKind, string[]> = {
  people: ['status', 'role', 'updated_since', 'limit', 'cursor'],
  contacts: ['status', 'updated_since', 'limit', 'cursor'],
  'audit-events': ['since', 'limit', 'cursor'],
};

type Issue = { parameter: string; detail: string };

const dateTime = z.union([z.iso.datetime({ offset: true }), z.iso.date()]);

/**
 * A `+` left unencoded in a query string reads as a space, so `…T09:00:00+01:00` arrives as `…T09:00:00 01:00`.
 * A space between a time and an hh:mm offset can only have been that `+`.
 */
const SPACE_FOR_PLUS = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?) (\d{2}:\d{2})$/;

/**
 * A zone offset written without its colon, as ISO 8601's basic format and many tools write it (`+0100`,
 * `-05`, also after a `+` read as a space): the hh:mm form Roster parses.
 */
const BASIC_OFFSET = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)([+ -])(\d{2})(\d{2})?$/;

/** An ISO 8601 time with a zone (or a date, taken as midnight UTC), as UTC; or an issue. */
function instant(parameter: string, given: string, issues: Issue[]): string | undefined {
  const value = given
    .replace(BASIC_OFFSET, (_all, time: string, sign: string, hh: string, mm?: string) => {
      return `${time}${sign === '-' ? '-' : '+'}${hh}:${mm ?? '00'}`;
    })
    .replace(SPACE_FOR_PLUS, '$1+$2');
  const parsed = dateTime.safeParse(value);
  const time = parsed.success ? new Date(value) : null;
  // Years 1 to 9999 in UTC, the ones an ISO 8601 time of four digits can say: year 0, or an offset that
  // carries the time past either end, is no time the database takes.
  const year = time?.getUTCFullYear() ?? Number.NaN;
  if (!time || !(year >= 1 && year <= 9999)) {
    const plus = given.includes(' ') ? ' A + in a query string reads as a space: write it as %2B.' : '';
    issues.push({
      parameter,
      detail: `${parameter} must be an ISO 8601 date-time with a time zone, from year 0001 to 9999, e.g. 2026-11-30T09:00:00Z or 2026-11-30T10:00:00%2B01:00 (got “${given}”).${plus}`,
    });
    return undefined;
  }
  return time.toISOString();
}

/** A comma-separated list of allowed values, sorted and without repeats; or an issue. */
function oneOf<T extends string>(
  parameter: string,
  value: string,
  allowed: readonly T[],
  issues: Issue[],
): T[] | undefined {
  const items = value.split(',').map((v) => v.trim());
  const unknown = items.filter((v) => !allowed.includes(v as T));
  if (unknown.length) {
    issues.push({
      parameter,
      detail: `${parameter} must be one or more of ${allowed.join(', ')}, separated by commas (got “${unknown.join(', ') || value}”).`,
    });
    return undefined;
  }
  return [...new Set(items as T[])].sort();
}

const cursorShape = z.object({
  v: z.literal(1),
  k: z.enum(['people', 'contacts', 'audit-events']),
  f: z.string(),
  x: z.string().regex(/^\d{1,20}$/),
  i: z.union([z.uuid(), z.string().regex(/^\d{1,19}$/)]),
  /** The account it was issued to; cursors issued before it was added have none. */
  a: z.uuid().optional(),
});

/**
 * An opaque cursor: where a list stands and the filters it was asked with, signed so that a cursor Roster
 * did not issue (or one edited by hand) is refused rather than read.
 */
export function encodeCursor(
  key: Buffer,
  accountId: string,
  kind: ListKind,
  fingerprint: string,
  position: Position | null,
): string {
  const at = position ?? {
    xid: '0',
    id: kind === 'audit-events' ? '0' : '00000000-0000-0000-0000-000000000000',
  };
  const body = Buffer.from(
    JSON.stringify({ v: 1, k: kind, f: fingerprint, x: at.xid, i: at.id, a: accountId }),
  ).toString('base64url');
  return `${body}.${sign(key, body)}`;
}

const sign = (key: Buffer, body: string) => createHmac('sha256', key).update(body).digest('base64url');

export const OTHER_ACCOUNT =
  'This cursor was issued to another account’s token. Use each token with the cursors it was given, or leave cursor out to start from the beginning.';

const NOT_ISSUED =
  'This cursor is not one Roster issued. Pass next_cursor from the previous page exactly as it came, or leave cursor out to start from the beginning.';

/** The cursor's content when Roster issued it; refused otherwise. */
function readCursor(
  key: Buffer,
  accountId: string,
  kind: ListKind,
  text: string,
): z.infer<typeof cursorShape> {
  const [body, signature, ...rest] = text.split('.');
  const expected = body ? Buffer.from(sign(key, body)) : Buffer.alloc(0);
  const given = Buffer.from(signature ?? '');
  if (!body || rest.length || expected.length !== given.length || !timingSafeEqual(expected, given)) {
    throw invalidCursor(NOT_ISSUED);
  }
  const parsed = cursorShape.safeParse(JSON.parse(Buffer.from(body, 'base64url').toString('utf8')));
  if (!parsed.success) throw invalidCursor(NOT_ISSUED);
  // Positions are the database's, shared by every account: another account's cursor would read this
  // account's list from a point in theirs, skipping the rows before it for good.
  if (parsed.data.a !== undefined && parsed.data.a !== accountId) {
    throw invalidCursor(OTHER_ACCOUNT);
  }
  if (parsed.data.k !== kind) {
    throw invalidCursor(`This cursor belongs to the ${parsed.data.k} list, not to ${kind}.`);
  }
  return parsed.data;
}

/**
 * Reads a list's query parameters: unknown or repeated parameters, bad values and a cursor that does not
 * fit are refused with every problem named. With a cursor, the filters may be left out (the cursor
 * remembers them) or repeated; changing them is refused.
 */
export function parseList<K extends ListKind>(
  cursorKey: Buffer,
  accountId: string,
  kind: K,
  query: URLSearchParams,
): ListRequest<K> {
  const issues: Issue[] = [];
  const allowed = PARAMETERS[kind];
  const seen = new Set<string>();
  for (const key of query.keys()) {
    if (!allowed.includes(key)) {
      issues.push({
        parameter: key,
        detail: `${key} is not a parameter of /api/v1/${kind}; it takes ${allowed.join(', ')}.`,
      });
    } else if (seen.has(key)) {
      issues.push({ parameter: key, detail: `Give ${key} once; separate several values with commas.` });
    }
    seen.add(key);
  }
  const value = (key: string) => {
    const v = query.get(key);
    return v === null ? undefined : v;
  };

  let limit = DEFAULT_LIMIT;
  const rawLimit = value('limit');
  if (rawLimit !== undefined) {
    const n = /^\d{1,7}$/.test(rawLimit) ? Number(rawLimit) : Number.NaN;
    if (!(n >= 1 && n <= MAX_LIMIT)) {
      issues.push({
        parameter: 'limit',
        detail: `limit must be a whole number from 1 to ${MAX_LIMIT} (got “${rawLimit}”); it is ${DEFAULT_LIMIT} when left out.`,
      });
    } else limit = n;
  }

  const filters: Record<string, unknown> = {};
  let afterEventId: string | undefined;
  for (const key of allowed) {
    const v = value(key);
    if (v === undefined || key === 'limit' || key === 'cursor') continue;
    if (key === 'updated_since') filters.updatedSince = instant(key, v, issues);
    else if (key === 'role') filters.role = oneOf(key, v, ROLES, issues);
    else if (key === 'status') {
      filters.status = oneOf(key, v, kind === 'people' ? USER_STATUSES : CONTACT_STATUSES, issues);
    } else if (key === 'since') {
      // Kept as text: past 2^53 a Number would name another event.
      if (/^\d{1,18}$/.test(v) && /[1-9]/.test(v)) afterEventId = v.replace(/^0+/, '');
      else if (/^\d+$/.test(v)) {
        issues.push({ parameter: key, detail: `since must be an audit event id from 1 up (got “${v}”).` });
      } else filters.since = instant(key, v, issues);
    }
  }
  if (issues.length) throw invalidParameters(issues);

  const fingerprint = JSON.stringify(
    Object.entries({ ...filters, afterEventId }).filter(([, v]) => v !== undefined),
  );
  const rawCursor = value('cursor');
  if (rawCursor === undefined) {
    return { kind, filters: filters as Filters[K], limit, from: null, afterEventId, fingerprint };
  }
  const cursor = readCursor(cursorKey, accountId, kind, rawCursor);
  // A cursor may come without its filters: it carries the ones it was issued with.
  const bare = Object.keys(filters).length === 0 && afterEventId === undefined;
  if (!bare && cursor.f !== fingerprint) {
    throw invalidCursor(
      'This cursor was issued for other filters. Repeat the filters of the first request with it (or leave them out), or leave cursor out to start over with the new filters.',
    );
  }
  const carried = Object.fromEntries(
    // The event id of a since= was where the first page started; the cursor's position replaces it.
    (JSON.parse(cursor.f) as [string, unknown][]).filter(([k]) => k !== 'afterEventId'),
  );
  return {
    kind,
    filters: carried as Filters[K],
    limit,
    from: { xid: cursor.x, id: cursor.i },
    fingerprint: cursor.f,
    unbound: cursor.a === undefined,
  };
}
