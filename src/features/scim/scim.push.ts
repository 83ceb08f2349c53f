import type { EntityManager } from '@mikro-orm/postgresql';
import { json, query, sql } from '../../db/sql.ts';
import { displayName } from '../people/user.entity.ts';
import { type RemoteUser, type ScimClient, ScimError } from './scim.client.ts';
import {
  changeKinds,
  createBody,
  desiredShape,
  patchOperations,
  remoteShape,
  type Shape,
  type SyncedUser,
} from './scim.mapping.ts';

/** A user's sync row claimed by this worker, with the user's synced columns as they are now. */
export type Claimed = SyncedUser & {
  remoteId: string | null;
  version: number;
  pushed: Shape | null;
  attempts: number;
  /**
   * `remoteId` was kept from an earlier connection to the same URL and has not been confirmed since: only a
   * hint, since one URL may serve several tenants (see {@link confirmKeptLink}).
   */
  keptLink: boolean;
  /** The kept link was found not to be the person's: their row forgets it, whatever the push comes to. */
  unlinked?: boolean;
};

/** How one person's push ended. */
export type Outcome =
  | {
      userId: string;
      result: 'synced';
      how: 'created' | 'linked' | 'updated' | 'unchanged';
      kinds: ('details' | 'deactivated' | 'reactivated')[];
      remoteId: string;
      shape: Shape;
    }
  | { userId: string; result: 'skipped' }
  | {
      userId: string;
      result: 'failed';
      error: ScimError;
      /**
       * The person is to be inactive and the service refused another of their values: the deactivation was
       * sent on its own and taken, and the service now holds `shape` (what it held, switched off).
       */
      deactivated?: { remoteId: string; shape: Shape };
    };

/** How long a claim lasts: a worker that dies mid-push leaves the person to be taken again after this. */
const LEASE = '5 minutes';
/** After this many transient failures in a row, a person is marked failed and admins are told. */
export const MAX_ATTEMPTS = 12;

/**
 * A link is confirmed under the connection once the person was synced after the connection was made; one
 * older than that was kept from an earlier connection to the same URL.
 */
const CONFIRMED = sql`coalesce(s.last_synced_at >= (select c.created_at from scim_connection c
  where c.account_id = s.account_id), false)`;

const CLAIMED_COLUMNS = sql`s.user_id as "id", s.remote_id as "remoteId", s.version, s.pushed, s.attempts,
  s.remote_id is not null and not ${CONFIRMED} as "keptLink",
  u.email, u.first_name as "firstName", u.last_name as "lastName", u.title, u.phone, u.role, u.status,
  u.login_missing as "loginMissing"`;

/**
 * Claims up to `limit` due pending people of the account, oldest change first. Rows locked or leased by
 * another worker are skipped, so each person is pushed by one worker at a time, in the order of their changes.
 */
export function claimDue(em: EntityManager, accountId: string, limit: number): Promise<Claimed[]> {
  return query<Claimed>(
    em,
    sql`update scim_sync s set leased_until = now() + ${LEASE}::interval
      from app_user u
      where u.id = s.user_id and s.user_id in (
        select user_id from scim_sync
        where account_id = ${accountId} and state = 'pending' and next_attempt_at <= now()
          and (leased_until is null or leased_until < now())
        order by next_attempt_at, user_id
        limit ${limit}
        for update skip locked)
      returning ${CLAIMED_COLUMNS}`,
  );
}

/** Claims these people whatever their state (for a full reconciliation), skipping those another worker holds. */
export function claimUsers(em: EntityManager, accountId: string, userIds: string[]): Promise<Claimed[]> {
  return query<Claimed>(
    em,
    sql`update scim_sync s set leased_until = now() + ${LEASE}::interval
      from app_user u
      where u.id = s.user_id and s.user_id in (
        select user_id from scim_sync
        where account_id = ${accountId} and user_id = any(${userIds}::uuid[])
          and (leased_until is null or leased_until < now())
        for update skip locked)
      returning ${CLAIMED_COLUMNS}`,
  );
}

/**
 * Who else in the account the service's `user` is, when it is someone else's than `userId`'s: a person it was
 * created for (its externalId is their id), or a person Roster keeps it linked to (their sync row holds its
 * id, confirmed under this connection: a link kept from an earlier one may be another tenant's user). Such a
 * user is never linked to anyone else. One of another account (a workspace Roster served before, another
 * workspace on the same service) with the same email is the same human: it is nobody else's here.
 */
export type OwnerOf = (user: RemoteUser, userId: string) => Promise<Owner | null>;

/** The other person a service's user is, as the refusal names them, and why it is theirs. */
export type Owner = { name: string; email: string; why: 'created' | 'linked' };

/** The shape of Roster's ids, sent as externalId. */
export const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** The {@link OwnerOf} of an account. */
export function rosterPeople(em: EntityManager, accountId: string): OwnerOf {
  return async (user, userId) => {
    const theirs = user.externalId && UUID.test(user.externalId) ? user.externalId.toLowerCase() : null;
    const [owner] = await query<{
      email: string;
      firstName: string | null;
      lastName: string | null;
      created: boolean;
    }>(
      em,
      sql`select u.email, u.first_name as "firstName", u.last_name as "lastName",
          u.id = ${theirs}::uuid is true as created
        from app_user u
        where u.account_id = ${accountId} and u.id <> ${userId}::uuid
          and (u.id = ${theirs}::uuid or u.id in (
            select s.user_id from scim_sync s
            where s.account_id = ${accountId} and s.remote_id = ${user.id} and ${CONFIRMED}))
        order by created desc
        limit 1`,
    );
    if (!owner) return null;
    return { name: displayName(owner), email: owner.email, why: owner.created ? 'created' : 'linked' };
  };
}

/**
 * Makes the service hold what Roster holds for one person. `known` is the person's user in the service
 * when the caller has just listed it (null: not there), or undefined to look it up.
 *
 * A service whose schema has no `roles` may refuse a user who has them (a 400 naming them): the person is
 * then pushed again without, and only once that is taken does the client keep to it (see
 * {@link ScimClient.rolesSupport}). Should the push fail without roles too, roles were not shown to be the
 * matter: the person's push fails with that answer, and the client goes on sending roles. The client is shared by the pushes in
 * flight, so it is left alone until the roleless push has been taken: another person's push that starts
 * meanwhile still sends roles, and refusals that are not about roles never turn them off.
 */
export async function pushOne(
  client: ScimClient,
  row: Claimed,
  known?: RemoteUser | null,
  ownerOf?: OwnerOf,
): Promise<Outcome> {
  const found = row.keptLink ? await confirmKeptLink(client, row, known) : known;
  const withRoles = client.rolesSupport !== 'refused';
  try {
    const { outcome, sentRoles } = await push(client, row, found, withRoles, ownerOf);
    if (sentRoles) client.rolesSupport = 'taken';
    return outcome;
  } catch (err) {
    if (!withRoles || !refusesRoles(err)) throw err;
    const { outcome } = await push(client, row, found, false, ownerOf);
    client.rolesSupport = 'refused';
    return outcome;
  }
}

/**
 * Whether the service's `user` is recognisably the person of `row`: created for them (its externalId is their
 * id), or under the userName Roster last pushed for them or would push now.
 */
export function samePerson(user: RemoteUser, row: Claimed): boolean {
  if (user.externalId?.toLowerCase() === row.id.toLowerCase()) return true;
  const userName = user.userName.toLowerCase();
  return userName === row.pushed?.userName?.toLowerCase() || userName === desiredShape(row).userName;
}

/**
 * A remote id kept from an earlier connection to the same URL is a hint, never trusted as such: many products
 * serve all their tenants at one SCIM URL and pick the tenant by the token, numbering users per tenant, so
 * the same id may be another tenant's user, someone else. The user under it (as the caller listed it, else
 * looked up) is taken as the person's only when {@link samePerson}; otherwise the link is dropped and the
 * person is matched afresh, by externalId then userName. Nothing is written before this. Returns what the
 * push is to take as the person's known user.
 */
async function confirmKeptLink(
  client: ScimClient,
  row: Claimed,
  known: RemoteUser | null | undefined,
): Promise<RemoteUser | null | undefined> {
  const kept = row.remoteId!;
  const user = known !== undefined ? (known?.id === kept ? known : null) : await client.get(kept).catch(gone);
  row.keptLink = false;
  if (user && samePerson(user, row)) {
    // Looked up here: what the service holds now is what the push compares with.
    if (known === undefined) row.pushed = remoteShape(user);
    return known;
  }
  row.remoteId = null;
  row.pushed = null;
  row.unlinked = true;
  return known?.id === kept ? undefined : known;
}

/** A 400 that names `roles`, by its words or as a path the service does not have. */
function refusesRoles(err: unknown): err is ScimError {
  return (
    err instanceof ScimError &&
    err.status === 400 &&
    (/\broles\b/i.test(err.message) || err.scimType === 'invalidPath' || err.scimType === 'noTarget')
  );
}

/** A shape as compared and sent to a service that does not take `roles`. */
function roleless(shape: Shape): Shape {
  return { ...shape, role: null };
}

async function push(
  client: ScimClient,
  row: Claimed,
  known: RemoteUser | null | undefined,
  withRoles: boolean,
  ownerOf?: OwnerOf,
): Promise<{ outcome: Outcome; sentRoles: boolean }> {
  if (row.loginMissing) return { outcome: { userId: row.id, result: 'skipped' }, sentRoles: false };
  if (known && known.id !== row.remoteId && (await ownerOf?.(known, row.id))) {
    // The listing's user under this email is another person's (one who moved off it since the listing, or
    // whose push is under way): looked up afresh, which refuses this person while it still holds the email.
    return push(client, row, undefined, withRoles, ownerOf);
  }
  const desired = withRoles ? desiredShape(row) : roleless(desiredShape(row));
  const shaped = (shape: Shape) => (withRoles ? shape : roleless(shape));
  let remoteId = row.remoteId;
  let current: Shape | null = null;
  let how: 'linked' | undefined;
  let linked: RemoteUser | undefined;
  if (known !== undefined) {
    remoteId = known?.id ?? null;
    current = known ? shaped(remoteShape(known)) : null;
    if (known && known.id !== row.remoteId) {
      how = 'linked';
      linked = known;
    }
  } else if (remoteId) {
    current = row.pushed ? shaped(row.pushed) : null;
    if (!current) {
      const remote = await client.get(remoteId).catch(gone);
      remoteId = remote?.id ?? null;
      current = remote ? shaped(remoteShape(remote)) : null;
    }
  }
  if (!remoteId) {
    // A listing that just said "not there" needs no lookup. A user Roster created whose answer was lost
    // (a timeout, a stop) is found by the externalId it was created with, even after an email change.
    // A user found by userName that was created for another person in Roster (who had this email before),
    // or that Roster keeps linked to another person, is theirs: this person is refused rather than linked to
    // it, so two people never share one user.
    const notAnothers = async (user: RemoteUser | null) => {
      const owner = user && (await ownerOf?.(user, row.id));
      if (!owner) return user;
      const who = `${owner.name} (${owner.email})`;
      throw new ScimError(
        'rejected',
        409,
        owner.why === 'created'
          ? `the service's user ${desired.userName} belongs to another person in Roster, ${who}: it was created for them under this email; change this person's email, or remove that user from the service`
          : `the service's user ${desired.userName} belongs to another person in Roster, ${who}, who is linked to it; Sync now once the service no longer holds this email for them, or change this person's email`,
      );
    };
    const found =
      known === undefined
        ? ((await client.findByExternalId(row.id)) ??
          (await notAnothers(await client.findByUserName(desired.userName))))
        : null;
    // Created, or null when the service says the userName is taken.
    const create = async (): Promise<{ outcome: Outcome; sentRoles: boolean } | null> => {
      try {
        const created = await write(client, () => client.create(createBody(row.id, desired)));
        return {
          outcome: {
            userId: row.id,
            result: 'synced',
            how: 'created',
            kinds: [],
            remoteId: created.id,
            shape: desired,
          },
          sentRoles: desired.role !== null,
        };
      } catch (err) {
        if (!(err instanceof ScimError && err.kind === 'conflict')) throw err;
        return null;
      }
    };
    if (!found) {
      const made = await create();
      if (made) return made;
    }
    // Created meanwhile by someone else, or refused as a duplicate: link to the one that exists.
    let existing = found ?? (await notAnothers(await client.findByUserName(desired.userName)));
    if (!existing && !found) {
      // The user that held the userName was renamed since the create (another person's, pushed at the same
      // time, who moved off this email): the userName is free now.
      const made = await create();
      if (made) return made;
      existing = await notAnothers(await client.findByUserName(desired.userName));
    }
    if (!existing) {
      throw new ScimError(
        'rejected',
        409,
        `the service says ${desired.userName} exists but does not list it`,
      );
    }
    remoteId = existing.id;
    current = shaped(remoteShape(existing));
    how = 'linked';
    linked = existing;
  }
  const ops = patchOperations(current ?? desired, desired);
  let sentRoles = false;
  if (ops.length) {
    try {
      await write(client, () => client.update(remoteId, ops, createBody(row.id, desired)));
    } catch (err) {
      // Deleted in the service behind Roster's back: create it again.
      if (err instanceof ScimError && err.kind === 'not_found' && known === undefined) {
        return push(client, { ...row, remoteId: null, pushed: null }, null, withRoles, ownerOf);
      }
      // A refused value (a title, an email another user holds) never keeps an account switched on: the
      // deactivation goes on its own, and the person is still marked failed with the service's words.
      // Refused for its roles, the person is pushed again without them first (see pushOne).
      const refused = err instanceof ScimError && (err.kind === 'rejected' || err.kind === 'conflict');
      if (
        refused &&
        !desired.active &&
        current?.active !== false &&
        ops.some((o) => o.path !== 'active') &&
        !(withRoles && refusesRoles(err))
      ) {
        const off: Shape = { ...(current ?? desired), active: false };
        await write(client, () =>
          client.update(remoteId, [{ op: 'replace', path: 'active', value: false }], createBody(row.id, off)),
        );
        const error = new ScimError(
          err.kind,
          err.status,
          `${err.message} (the deactivation was sent on its own and taken)`,
          undefined,
          err.scimType,
        );
        return {
          outcome: { userId: row.id, result: 'failed', error, deactivated: { remoteId, shape: off } },
          sentRoles: false,
        };
      }
      throw err;
    }
    // A PUT (to a service that refused PATCH) sends the whole user, roles included; a PATCH what changed.
    sentRoles =
      desired.role !== null && (client.patchSupport === 'refused' || ops.some((o) => o.path === 'roles'));
  }
  if (linked && !linked.externalId && !(ops.length && client.patchSupport === 'refused')) {
    // A user the product had before Roster is given the person's id as its externalId (a PUT above sent it
    // already), as the users Roster creates are: it stays theirs after they move to another email, whoever
    // is given the old one. A service that refuses it still has them linked: Roster's record keeps the user
    // theirs all the same.
    await write(client, () =>
      client.update(
        remoteId,
        [{ op: 'replace', path: 'externalId', value: row.id }],
        createBody(row.id, desired),
      ),
    ).catch((err) => {
      if (!(err instanceof ScimError && err.kind === 'rejected')) throw err;
    });
  }
  return {
    outcome: {
      userId: row.id,
      result: 'synced',
      how: how ?? (ops.length ? 'updated' : 'unchanged'),
      kinds: current ? changeKinds(current, desired) : [],
      remoteId,
      shape: desired,
    },
    sentRoles,
  };
}

/**
 * A write for one person, whose 403 may be theirs while the token works: some services forbid a change to
 * one user (Slack's own SCIM API will not deactivate a primary owner) with the status that otherwise says
 * the token lacks the right. A token is known to be allowed to write only once the service has taken a write
 * with it (on this connection, or in this run): before that a 403 says it may not (a read-only token lists
 * users all the same), and stops the sync as a refused token. After, the token is confirmed with
 * {@link ScimClient.tokenWorks}, shared by the refusals of the run: if it passes, the 403 is this person's
 * refusal; if not, the check's own failure is thrown (a 401 or 403 there stops the sync as a refused token,
 * a 5xx or a timeout waits like any).
 */
async function write<T>(client: ScimClient, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (err) {
    if (!(err instanceof ScimError && err.kind === 'unauthorized' && err.status === 403)) throw err;
    if (!client.writeTaken) throw err;
    await client.tokenWorks();
    throw new ScimError(
      'rejected',
      403,
      `${err.message} (refused for this person alone: the token works for the others)`,
      undefined,
      err.scimType,
    );
  }
}

function gone(err: unknown): null {
  if (err instanceof ScimError && err.kind === 'not_found') return null;
  throw err;
}

/** A person's push that failed in a way that is the person's (a refused value), not the service's. */
export function personal(error: ScimError): boolean {
  return error.kind === 'rejected' || error.kind === 'conflict' || error.kind === 'not_found';
}

/**
 * Records outcomes in one statement. A person whose row changed while being pushed (the version moved)
 * stays pending, to be pushed again with the newer values. Transient failures back off per person and
 * become `failed` after {@link MAX_ATTEMPTS}; `release`d people are handed back untouched. During an
 * `outage` (the service failed everyone it was asked about) transient failures are the service's: the
 * people keep the error on their card and wait for the connection's backoff, with no attempt counted.
 */
export async function recordOutcomes(
  em: EntityManager,
  rows: Claimed[],
  outcomes: Outcome[],
  release: string[] = [],
  outage = false,
  /**
   * Whether the people now failed are marked for the admins' notice (`failure_untold`, which
   * {@link takeUntoldFailures} takes): the sync's; Sync now reports them to the admin who clicked.
   */
  tell = false,
): Promise<void> {
  const byId = new Map(rows.map((r) => [r.id, r]));
  const records = outcomes.map((o) => {
    const row = byId.get(o.userId)!;
    if (o.result === 'synced') {
      return {
        user_id: o.userId,
        version: row.version,
        state: 'synced',
        remote_id: o.remoteId,
        pushed: o.shape,
      };
    }
    if (o.result === 'skipped') return { user_id: o.userId, version: row.version, state: 'skipped' };
    if (personal(o.error)) {
      return {
        user_id: o.userId,
        version: row.version,
        state: 'failed',
        error: o.error.message,
        remote_id: o.deactivated?.remoteId,
        pushed: o.deactivated?.shape,
      };
    }
    // The service's state, not the person's: they wait for the connection's pause, with no attempt counted.
    if (o.error.kind === 'rate_limited' || o.error.kind === 'unauthorized') {
      return { user_id: o.userId, version: row.version, state: 'release' };
    }
    if (outage) return { user_id: o.userId, version: row.version, state: 'held', error: o.error.message };
    const attempts = row.attempts + 1;
    return {
      user_id: o.userId,
      version: row.version,
      state: attempts >= MAX_ATTEMPTS ? 'failed' : 'retry',
      error: o.error.message,
      attempts,
      delay_s: Math.min(2 ** (attempts - 1), 1800),
    };
  });
  for (const id of release) records.push({ user_id: id, version: byId.get(id)!.version, state: 'release' });
  if (!records.length) return;
  // A link kept from an earlier connection that proved another's is forgotten, however the push ended.
  const unlinked = records.map((r) => ({ ...r, unlink: byId.get(r.user_id)!.unlinked === true }));
  await query(
    em,
    sql`update scim_sync s set
        state = case
          when r.state in ('retry', 'release', 'held') then s.state
          when s.version <> r.version then 'pending'
          else r.state end,
        remote_id = case when r.state in ('synced', 'failed') and r.remote_id is not null then r.remote_id
          when r.unlink then null else s.remote_id end,
        pushed = case when r.state in ('synced', 'failed') and r.pushed is not null then r.pushed
          when r.unlink then null else s.pushed end,
        last_synced_at = case when r.state = 'synced' then now() else s.last_synced_at end,
        last_error = case when r.state in ('synced', 'skipped') then null when r.state = 'release' then s.last_error else r.error end,
        attempts = case when r.state = 'retry' then r.attempts when r.state in ('release', 'held') then s.attempts else 0 end,
        next_attempt_at = case
          when r.state = 'retry' and s.version = r.version then now() + make_interval(secs => r.delay_s)
          else s.next_attempt_at end,
        failure_untold = case
          when r.state = 'failed' and ${tell}::boolean then r.error
          when r.state = 'synced' then null
          else s.failure_untold end,
        leased_until = null,
        updated_at = now()
      from jsonb_to_recordset(${json(unlinked)}::jsonb)
        as r(user_id uuid, version int, state text, remote_id text, pushed jsonb, error text, attempts int, delay_s int,
          unlink boolean)
      where s.user_id = r.user_id`,
  );
}

/**
 * The people of the account the service refused whose admins are not told yet, with the service's words,
 * and the marks cleared, in `tx`: the notice queued in the same transaction tells each of them once, even
 * when the sync that refused them was stopped before it told.
 */
export async function takeUntoldFailures(
  tx: EntityManager,
  accountId: string,
): Promise<{ name: string; error: string }[]> {
  const rows = await query<{
    email: string;
    firstName: string | null;
    lastName: string | null;
    error: string;
    at: Date;
  }>(
    tx,
    sql`with untold as (
          select user_id, failure_untold from scim_sync
          where account_id = ${accountId} and failure_untold is not null
          order by user_id for update)
        update scim_sync s set failure_untold = null
        from untold, app_user u
        where s.user_id = untold.user_id and u.id = s.user_id
        returning u.email, u.first_name as "firstName", u.last_name as "lastName",
                  untold.failure_untold as error, s.updated_at as at`,
  );
  return rows
    .sort((a, b) => new Date(a.at).getTime() - new Date(b.at).getTime())
    .map((r) => ({ name: displayName(r), error: r.error }));
}

/** A person as a report names them. */
export function nameOf(row: Claimed): string {
  return displayName(row);
}
