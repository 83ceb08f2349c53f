import type { EntityManager } from '@mikro-orm/postgresql';
import { query, sql } from '../../db/sql.ts';
import type { RemoteUser, ScimClient, Support } from './scim.client.ts';
import { ScimError } from './scim.client.ts';
import type { IScimConnection } from './scim.entity.ts';
import {
  type Claimed,
  claimDue,
  MAX_ATTEMPTS,
  nameOf,
  type Outcome,
  type OwnerOf,
  personal,
  pushOne,
  recordOutcomes,
  rosterPeople,
} from './scim.push.ts';

/** People pushed at once: calls in flight to the service, each for a different person. */
export const CONCURRENCY = 8;
const CLAIM_SIZE = 40;
/** The longest pause after consecutive 5xx or timeouts; a 429's Retry-After is honoured whatever its length. */
const MAX_BACKOFF_S = 300;

/** What a run of pushes came to: problems are for the admins, `wakeAt` is when to try again. */
export type RunResult = {
  synced: number;
  /** People the service refused (400, unresolvable 409) or that failed too often: told to admins. */
  failed: { name: string; error: string }[];
  /** The service refused the token just now (told once). */
  refused?: string;
  wakeAt?: Date;
};

/** A batch's stop: why the service should not be called again now. */
export type Stop = { error: ScimError; kind: 'unauthorized' | 'rate_limited' | 'transient' };

/**
 * Pushes `rows` with {@link CONCURRENCY} calls in flight. Stops early (leaving the rest unpushed) when the
 * service refuses the token, asks to slow down or fails: the caller hands those people back.
 */
export async function pushBatch(
  client: ScimClient,
  rows: Claimed[],
  known?: (row: Claimed) => RemoteUser | null | undefined,
  ownerOf?: OwnerOf,
): Promise<{ outcomes: Outcome[]; untouched: string[]; stop?: Stop }> {
  const outcomes: Outcome[] = [];
  let stop: Stop | undefined;
  let next = 0;
  const worker = async () => {
    while (!stop && next < rows.length) {
      const row = rows[next++]!;
      try {
        outcomes.push(await pushOne(client, row, known?.(row), ownerOf));
      } catch (thrown) {
        // Anything else (an answer read wrongly) is this person's failure, recorded and told like a refused
        // value: thrown on, it would leave the batch leased with nothing recorded, again at every run.
        const err =
          thrown instanceof ScimError
            ? thrown
            : new ScimError(
                'rejected',
                0,
                `Roster could not read the service's answer: ${(thrown as Error).message}`,
              );
        outcomes.push({ userId: row.id, result: 'failed', error: err });
        if (!personal(err)) stop ??= { error: err, kind: err.kind as Stop['kind'] };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(CONCURRENCY, rows.length) }, worker));
  const done = new Set(outcomes.map((o) => o.userId));
  return { outcomes, untouched: rows.filter((r) => !done.has(r.id)).map((r) => r.id), stop };
}

/** Queues, in the transaction that marks the connection refused, what tells the admins why. */
export type OnRefused = (tx: EntityManager, problem: string) => Promise<unknown>;

/**
 * Queues, in the transaction that counts the failure or clears the backoff, what tells the admins that the
 * service has been failing for about an hour, and that it answers again after such a while.
 */
export type OnOutage = {
  failing: (tx: EntityManager, problem: string) => Promise<unknown>;
  answering: (tx: EntityManager) => Promise<unknown>;
};

/**
 * Failures in a row after which the admins are told the service keeps failing: about an hour at the
 * backoff's pace (1 s doubling to 5 minutes: 9 pauses make 8.5 minutes, then 5 minutes each).
 */
export const OUTAGE_NOTICE_FAILURES = 20;

/**
 * Reacts to a stop at the connection: a refused token stops syncing until an admin connects again (true
 * when this is news), a 429 pauses for its Retry-After, a 5xx or timeout backs off, doubling each time.
 * Returns when the service may be called again.
 */
export async function applyStop(
  em: EntityManager,
  connection: IScimConnection,
  stop: Stop,
  onRefused?: OnRefused,
  onOutage?: OnOutage,
): Promise<{ newlyRefused: boolean; wakeAt?: Date }> {
  if (stop.kind === 'unauthorized') {
    // The refusal and what tells the admins about it commit together: a sync that stops after it finds the
    // connection refused and pushes nothing more, so a notice queued later could be lost for good.
    const newlyRefused = await em.transactional(async (tx) => {
      const marked = await query(
        tx,
        sql`update scim_connection set refused_at = now(), problem = ${stop.error.message}, updated_at = now()
          where id = ${connection.id} and refused_at is null returning id`,
      );
      if (marked.length) await onRefused?.(tx, stop.error.message);
      return marked.length > 0;
    });
    return { newlyRefused };
  }
  if (stop.kind === 'rate_limited') {
    const [row] = await query<{ pausedUntil: Date }>(
      em,
      sql`update scim_connection set paused_until = now() + make_interval(secs => ${(stop.error.retryAfterMs ?? 0) / 1000}),
          updated_at = now() where id = ${connection.id} returning paused_until as "pausedUntil"`,
    );
    return { newlyRefused: false, wakeAt: row ? new Date(row.pausedUntil) : undefined };
  }
  // The failure counted and, on the one that makes about an hour, the admins' notice queued: together.
  return em.transactional(async (tx) => {
    const [row] = await query<{ pausedUntil: Date; failures: number }>(
      tx,
      sql`update scim_connection set failures = failures + 1,
          paused_until = now() + make_interval(secs => greatest(${(stop.error.retryAfterMs ?? 0) / 1000},
            least(power(2, least(failures, 30))::int, ${MAX_BACKOFF_S}))),
          updated_at = now() where id = ${connection.id} returning paused_until as "pausedUntil", failures`,
    );
    if (row?.failures === OUTAGE_NOTICE_FAILURES) await onOutage?.failing(tx, stop.error.message);
    return { newlyRefused: false, wakeAt: row ? new Date(row.pausedUntil) : undefined };
  });
}

/**
 * How long what a service refused (PATCH, `roles`) is taken as its way: then Roster tries again, once, so a
 * service that has started taking it is not kept from it for good. Saving the connection again forgets it.
 */
export const RELEARN_MS = 24 * 3600 * 1000;

const learntLately = (at: Date | null | undefined, now: number) =>
  !!at && now - new Date(at).getTime() < RELEARN_MS;

/**
 * Starts a run's client from what its connection learnt of the service within {@link RELEARN_MS}, and from
 * whether it has taken a write with this client's token.
 */
export function applyHabits(connection: IScimConnection, client: ScimClient, now = Date.now()): void {
  if (learntLately(connection.patchRefusedAt, now)) client.patchSupport = 'refused';
  if (learntLately(connection.rolesRefusedAt, now)) client.rolesSupport = 'refused';
  if (connection.writeTakenWith && connection.writeTakenWith === client.tokenDigest) client.writeTaken = true;
}

/**
 * Keeps with the connection what a run's client has learnt, so the next run (a new client, maybe in another
 * instance) starts from it: a refusal is dated anew when the connection's is missing or out of date, and
 * forgotten once the service takes what it refused (and, for `roles`, the people sent without them are
 * marked to be sent again); a write taken is kept with the token's digest.
 */
export async function rememberHabits(
  em: EntityManager,
  connection: IScimConnection,
  client: ScimClient,
): Promise<void> {
  const now = Date.now();
  const change = (at: Date | null | undefined, support: Support) =>
    support === 'refused' && !learntLately(at, now)
      ? 'refused'
      : support === 'taken' && at
        ? 'taken'
        : 'same';
  const patch = change(connection.patchRefusedAt, client.patchSupport);
  const roles = change(connection.rolesRefusedAt, client.rolesSupport);
  const wrote =
    client.writeTaken && connection.writeTakenWith !== client.tokenDigest ? client.tokenDigest : null;
  if (patch === 'same' && roles === 'same' && !wrote) return;
  const row = await em.transactional(async (tx) => {
    const [saved] = await query<{
      patchRefusedAt: Date | null;
      rolesRefusedAt: Date | null;
      writeTakenWith: string | null;
    }>(
      tx,
      sql`update scim_connection set
          patch_refused_at = case ${patch}::text when 'refused' then now() when 'taken' then null else patch_refused_at end,
          roles_refused_at = case ${roles}::text when 'refused' then now() when 'taken' then null else roles_refused_at end,
          write_taken_with = coalesce(${wrote}::text, write_taken_with),
          updated_at = now()
        where id = ${connection.id}
        returning patch_refused_at as "patchRefusedAt", roles_refused_at as "rolesRefusedAt",
          write_taken_with as "writeTakenWith"`,
    );
    if (saved && roles === 'taken') await resendRoles(tx, connection.account.id);
    return saved;
  });
  if (!row) return;
  connection.patchRefusedAt = row.patchRefusedAt ? new Date(row.patchRefusedAt) : null;
  connection.rolesRefusedAt = row.rolesRefusedAt ? new Date(row.rolesRefusedAt) : null;
  connection.writeTakenWith = row.writeTakenWith;
}

/**
 * The service takes `roles` again: the people synced while it refused them hold no role there, and would
 * keep none until their next change. They are marked pending (as the triggers mark a change), with the same
 * notification, so the sync sends them their roles.
 */
async function resendRoles(em: EntityManager, accountId: string): Promise<void> {
  await query(
    em,
    sql`with marked as (
        update scim_sync s set state = 'pending', version = s.version + 1, attempts = 0,
          next_attempt_at = now(), updated_at = now()
        from app_user u
        where u.id = s.user_id and s.account_id = ${accountId} and s.state = 'synced'
          and s.pushed is not null and s.pushed->>'role' is null and u.role is not null
        returning s.account_id)
      select pg_notify('roster_scim', ${accountId}::text) from (select 1 from marked limit 1) m`,
  );
}

/**
 * The service answered well: the backoff starts over. After a failure long enough for the admins to have
 * been told, they are told it answers again, in the same transaction (one worker clears it, so once).
 */
export async function clearBackoff(
  em: EntityManager,
  connection: IScimConnection,
  onOutage?: OnOutage,
): Promise<void> {
  await em.transactional(async (tx) => {
    const [row] = await query<{ failures: number }>(
      tx,
      sql`update scim_connection c set failures = 0, paused_until = null
        from (select id, failures from scim_connection where id = ${connection.id} for update) was
        where c.id = was.id and was.failures > 0 returning was.failures`,
    );
    if (row && row.failures >= OUTAGE_NOTICE_FAILURES) await onOutage?.answering(tx);
  });
}

/**
 * Pushes every due pending person of the account, oldest change first, until none is left or the service
 * says to stop. Each person is claimed before their push and recorded after it, so several workers share
 * the work without pushing one person twice at once.
 */
export async function drain(
  em: EntityManager,
  connection: IScimConnection,
  client: ScimClient,
  onRefused?: OnRefused,
  onOutage?: OnOutage,
  /** Aborted when Roster stops: the batch under way is recorded, and no other is claimed. */
  signal?: AbortSignal,
): Promise<RunResult> {
  const result: RunResult = { synced: 0, failed: [] };
  if (connection.refusedAt) return result;
  if (connection.pausedUntil && connection.pausedUntil > new Date()) {
    return { ...result, wakeAt: connection.pausedUntil };
  }
  const accountId = connection.account.id;
  applyHabits(connection, client);
  for (;;) {
    if (signal?.aborted) return result;
    // Disconnected, or connected to another service, since this drain began: what is pending now belongs
    // to the new connection, whose own drain pushes it; this client speaks to the old service.
    const [current] = await query<{ id: string }>(
      em,
      sql`select id from scim_connection where id = ${connection.id}`,
    );
    if (!current) return result;
    const rows = await claimDue(em, accountId, CLAIM_SIZE);
    if (!rows.length) break;
    const { outcomes, untouched, stop } = await pushBatch(
      client,
      rows,
      undefined,
      rosterPeople(em, accountId),
    );
    await rememberHabits(em, connection, client);
    // The service failing and answering nobody well: an outage, which would otherwise use up the attempts
    // of whoever is at the head of the queue and give them up while nothing is wrong with them.
    // A service that still answers its own list while failing them is up, and the failures are theirs: a
    // person it keeps failing alone is still given up after their attempts.
    const answered = (o: Outcome) => o.result === 'synced' || (o.result === 'failed' && personal(o.error));
    const outage =
      stop?.kind === 'transient' &&
      !outcomes.some(answered) &&
      !(await client.check().then(
        () => true,
        () => false,
      ));
    await recordOutcomes(em, rows, outcomes, untouched, outage, true);
    collect(
      result,
      rows,
      outage ? outcomes.filter((o) => o.result !== 'failed' || personal(o.error)) : outcomes,
    );
    if (stop) {
      const { newlyRefused, wakeAt } = await applyStop(em, connection, stop, onRefused, onOutage);
      if (newlyRefused) result.refused = stop.error.message;
      result.wakeAt = wakeAt;
      return result;
    }
    if (result.synced) await clearBackoff(em, connection, onOutage);
  }
  // People backing off after a transient failure: wake when the first is due.
  const [next] = await query<{ at: Date | null }>(
    em,
    sql`select min(next_attempt_at) as at from scim_sync
      where account_id = ${accountId} and state = 'pending' and next_attempt_at > now()`,
  );
  if (next?.at) result.wakeAt = new Date(next.at);
  return result;
}

/** Adds a batch's outcomes to the run's counts; people who are now `failed` are named. */
export function collect(result: RunResult, rows: Claimed[], outcomes: Outcome[]): void {
  const byId = new Map(rows.map((r) => [r.id, r]));
  for (const o of outcomes) {
    if (o.result === 'synced') result.synced++;
    if (o.result !== 'failed') continue;
    const row = byId.get(o.userId)!;
    if (personal(o.error) || row.attempts + 1 >= MAX_ATTEMPTS) {
      result.failed.push({ name: nameOf(row), error: o.error.message });
    }
  }
}
