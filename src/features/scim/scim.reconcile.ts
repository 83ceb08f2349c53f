import type { EntityManager } from '@mikro-orm/postgresql';
import { query, sql } from '../../db/sql.ts';
import type { RemoteUser, ScimClient } from './scim.client.ts';
import { ScimError } from './scim.client.ts';
import type { IScimConnection } from './scim.entity.ts';
import { desiredShape } from './scim.mapping.ts';
import {
  type Claimed,
  claimUsers,
  nameOf,
  personal,
  recordOutcomes,
  rosterPeople,
  samePerson,
  UUID,
} from './scim.push.ts';
import {
  applyHabits,
  applyStop,
  clearBackoff,
  type OnOutage,
  type OnRefused,
  pushBatch,
  rememberHabits,
} from './scim.sync.ts';

/** Users asked of the service per page of its list. */
export const LIST_PAGE = 500;
const BATCH = 500;
/** A reconciliation waits out this many pauses (429s, 5xx) in a row before it gives up for now. */
const MAX_WAITS = 8;
/** Names a report shows per kind of difference. */
export const NAMES_SHOWN = 5;

export type Differences = { count: number; names: string[] };

/** What a full reconciliation found and did. */
export type ReconcileReport = {
  users: number;
  remoteUsers: number;
  created: Differences;
  linked: Differences;
  updated: Differences;
  deactivated: Differences;
  reactivated: Differences;
  unchanged: number;
  failed: Differences & { errors: string[] };
  skipped: number;
  /** Busy with the regular sync at that moment; it pushes them. */
  busy: number;
  /** In the service but not in Roster: reported, never changed (they may be the product's own accounts). */
  unknown: Differences;
  /** Why it stopped before the end, if it did. */
  stopped?: string;
  newlyRefused?: boolean;
};

const empty = (): Differences => ({ count: 0, names: [] });
function add(d: Differences, name: string): void {
  d.count++;
  if (d.names.length < NAMES_SHOWN) d.names.push(name);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Makes the service's Users equal to the account's users, both ways: every page of the service's list
 * is read, then every Roster user is created, linked, updated, deactivated or reactivated there to match
 * (matched by the remote id Roster keeps, else by userName). Users the service has and Roster does not are
 * reported. Pauses (429, 5xx, timeouts) are waited out here, since an admin is waiting for the report.
 */
export async function reconcile(
  em: EntityManager,
  connection: IScimConnection,
  client: ScimClient,
  progress: (done: number, total: number) => void = () => {},
  onRefused?: OnRefused,
  onOutage?: OnOutage,
): Promise<ReconcileReport> {
  const accountId = connection.account.id;
  const report: ReconcileReport = {
    users: 0,
    remoteUsers: 0,
    created: empty(),
    linked: empty(),
    updated: empty(),
    deactivated: empty(),
    reactivated: empty(),
    unchanged: 0,
    failed: { ...empty(), errors: [] },
    skipped: 0,
    busy: 0,
    unknown: empty(),
  };
  // Everyone gets a sync state, including users from before the connection.
  await query(
    em,
    sql`insert into scim_sync (user_id, account_id, state, version)
      select id, account_id, 'pending', 1 from app_user where account_id = ${accountId}
      on conflict (user_id) do nothing`,
  );
  applyHabits(connection, client);
  let waits = 0;
  /** Calls `fn`, waiting out pauses; null when the reconciliation must stop (the reason is in the report). */
  const patiently = async <T>(fn: () => Promise<T>): Promise<T | null> => {
    for (;;) {
      try {
        const value = await fn();
        waits = 0;
        return value;
      } catch (err) {
        if (!(err instanceof ScimError)) throw err;
        if (!(await waitOrStop(err))) return null;
      }
    }
  };
  const waitOrStop = async (err: ScimError): Promise<boolean> => {
    const kind = err.kind === 'unauthorized' || err.kind === 'rate_limited' ? err.kind : 'transient';
    const { newlyRefused, wakeAt } = await applyStop(
      em,
      connection,
      { error: err, kind },
      onRefused,
      onOutage,
    );
    if (kind === 'unauthorized' || ++waits > MAX_WAITS) {
      report.stopped = err.message;
      report.newlyRefused = newlyRefused;
      return false;
    }
    await sleep(Math.max(0, (wakeAt?.getTime() ?? Date.now()) - Date.now()));
    return true;
  };

  const byId = new Map<string, RemoteUser>();
  const byUserName = new Map<string, RemoteUser>();
  /** Users Roster created, by the person's id it sent as their externalId: found under an older email too. */
  const byExternalId = new Map<string, RemoteUser>();
  for (let start = 1; ; ) {
    const page = await patiently(() => client.listUsers(start, LIST_PAGE));
    if (!page) return report;
    const seen = byId.size;
    for (const u of page.users) {
      byId.set(u.id, u);
      byUserName.set((u.userName ?? '').toLowerCase(), u);
      if (typeof u.externalId === 'string' && u.externalId) byExternalId.set(u.externalId, u);
    }
    start += page.users.length;
    // A page with no user not seen before: a service that ignores startIndex would repeat itself forever.
    if (!page.more || byId.size === seen) break;
  }
  report.remoteUsers = byId.size;
  // Users created for people of the account, by their externalId: never linked to anyone else by userName.
  const forRosterPeople = new Set(
    (
      await query<{ id: string }>(
        em,
        sql`select id::text as id from app_user where account_id = ${accountId} and id = any(${[
          ...byExternalId.keys(),
        ]
          .filter((id) => UUID.test(id))
          .map((id) => id.toLowerCase())}::uuid[])`,
      )
    ).map((r) => r.id),
  );
  const sameName = (row: Claimed) => {
    const user = byUserName.get(desiredShape(row).userName);
    const theirs = user?.externalId?.toLowerCase();
    return theirs && theirs !== row.id && forRosterPeople.has(theirs) ? undefined : user;
  };
  const [{ total } = { total: 0 }] = await query<{ total: number }>(
    em,
    sql`select count(*)::int as total from app_user where account_id = ${accountId}`,
  );
  report.users = total;
  progress(0, total);

  let done = 0;
  let after = '00000000-0000-0000-0000-000000000000';
  for (;;) {
    const ids = (
      await query<{ id: string }>(
        em,
        sql`select id from app_user where account_id = ${accountId} and id > ${after} order by id limit ${BATCH}`,
      )
    ).map((r) => r.id);
    if (!ids.length) break;
    after = ids[ids.length - 1]!;
    let rows = await claimUsers(em, accountId, ids);
    report.busy += ids.length - rows.length;
    // A person whose push failed on the way may have been created meanwhile (a create that timed out, or
    // one the service's list did not show yet): the next attempt looks them up rather than trust the list.
    const tried = new Set<string>();
    // A remote id kept from an earlier connection to the same URL is only taken when the listed user under
    // it is recognisably the person's: the URL may serve another tenant now (see pushOne).
    const byRemoteId = (row: Claimed) => {
      const user = row.remoteId ? byId.get(row.remoteId) : undefined;
      return user && (!row.keptLink || samePerson(user, row)) ? user : undefined;
    };
    const known = (row: (typeof rows)[number]) =>
      tried.has(row.id) ? undefined : (byRemoteId(row) ?? byExternalId.get(row.id) ?? sameName(row) ?? null);
    while (rows.length) {
      const { outcomes, untouched, stop } = await pushBatch(client, rows, known, rosterPeople(em, accountId));
      await rememberHabits(em, connection, client);
      // Transient failures are tried again here, after the pause; refusals are the person's and final.
      const settled = outcomes.filter((o) => o.result !== 'failed' || personal(o.error));
      await recordOutcomes(em, rows, settled);
      for (const o of settled) {
        const row = rows.find((r) => r.id === o.userId)!;
        const name = nameOf(row);
        if (o.result === 'skipped') report.skipped++;
        else if (o.result === 'failed') {
          add(report.failed, name);
          if (o.deactivated) add(report.deactivated, name);
          if (report.failed.errors.length < NAMES_SHOWN)
            report.failed.errors.push(`${name}: ${o.error.message}`);
        } else {
          if (o.how === 'created') add(report.created, name);
          if (o.how === 'linked') add(report.linked, name);
          if (o.kinds.includes('details')) add(report.updated, name);
          if (o.kinds.includes('deactivated')) add(report.deactivated, name);
          if (o.kinds.includes('reactivated')) add(report.reactivated, name);
          if (o.how === 'unchanged' && !o.kinds.length) report.unchanged++;
        }
      }
      const failedOnTheWay = outcomes.filter((o) => !settled.includes(o)).map((o) => o.userId);
      for (const id of failedOnTheWay) tried.add(id);
      const retry = new Set([...untouched, ...failedOnTheWay]);
      rows = rows.filter((r) => retry.has(r.id));
      if (!stop) waits = 0;
      else if (!(await waitOrStop(stop.error))) {
        await recordOutcomes(
          em,
          rows,
          [],
          rows.map((r) => r.id),
        );
        return report;
      }
    }
    done += ids.length;
    progress(done, total);
  }
  await clearBackoff(em, connection, onOutage);

  const linked = new Set(
    (
      await query<{ remoteId: string }>(
        em,
        sql`select remote_id as "remoteId" from scim_sync where account_id = ${accountId} and remote_id is not null`,
      )
    ).map((r) => r.remoteId),
  );
  for (const u of byId.values()) if (!linked.has(u.id)) add(report.unknown, u.userName);
  await query(
    em,
    sql`update scim_connection set last_reconciled_at = now(), updated_at = now() where id = ${connection.id}`,
  );
  return report;
}
