import type { EntityManager } from '@mikro-orm/postgresql';
import { MAX_SCIM_URL, type ScimUrlFault, scimUrlFault } from '../../config.ts';
import { query, sql } from '../../db/sql.ts';
import { DomainError } from '../../shared/errors.ts';
import type { JobQueue } from '../../shared/jobs.ts';
import { redactedUrl } from '../../shared/outbound.ts';
import type { IAccount } from '../accounts/account.entity.ts';
import { audit, auditedUrl } from '../audit/audit.service.ts';
import type { Actor } from '../seats/seat.service.ts';
import { ScimClient, ScimError } from './scim.client.ts';
import { type IScimConnection, ScimConnection, ScimSync, type ScimSyncState } from './scim.entity.ts';

export const SCIM_JOBS = {
  /** Pushes an account's pending people; one queued and one running per account at most. */
  sync: 'scim.sync',
  /** Wakes the sync of an account at a later time (after a Retry-After or a backoff). */
  wake: 'scim.wake',
  /** A full reconciliation (Sync now). */
  reconcile: 'scim.reconcile',
  /** Every minute: connections set by the environment, and anything a missed notification left pending. */
  tick: 'scim.tick',
  /** A notice to an account's admins (token refused, people refused, a reconciliation's failures). */
  notice: 'scim.notice',
} as const;

/** The connection as Slack shows it: never the token. */
export type ScimStatus = {
  connected: boolean;
  managed: boolean;
  baseUrl?: string;
  refused?: string | null;
  /** The connection was saved with a URL Roster no longer takes (see savedUrlProblem): why, for the admins. */
  unusableUrl?: string | null;
  pausedUntil?: Date | null;
  lastReconciledAt?: Date | null;
  counts: Record<ScimSyncState, number>;
  /** The env connection exists but has not reached this account yet (it does within a minute). */
  managedByEnv: boolean;
};

/** One person's sync state, for the person card. */
export type PersonSyncState = {
  state: ScimSyncState;
  remoteId: string | null;
  lastError: string | null;
  lastSyncedAt: Date | null;
  attempts: number;
};

const MAX_TOKEN = 3000;

/** The SCIM connection of each account: connecting (after checking it), disconnecting, and its status. */
export class ScimService {
  private readonly jobs: JobQueue;
  private readonly env?: { url: string; token: string };
  /** Accounts whose managed connection this process has looked at since it started. */
  private readonly retried = new Set<string>();

  /** Whether the service may be on this machine or a private network (src/shared/outbound.ts). */
  private readonly allowPrivate: boolean;

  constructor(jobs: JobQueue, env?: { url: string; token: string }, opts: { allowPrivate?: boolean } = {}) {
    this.jobs = jobs;
    this.env = env;
    this.allowPrivate = opts.allowPrivate ?? false;
  }

  /** Whether the deployment sets the connection (SCIM_URL, SCIM_TOKEN): Slack may not change it then. */
  get managed(): boolean {
    return !!this.env;
  }

  /** A client for a connection, with its token (the environment's for a managed one). */
  client(connection: IScimConnection, opts: { timeoutMs?: number } = {}): ScimClient {
    const token = connection.managed ? this.env?.token : connection.token;
    return new ScimClient(connection.baseUrl, token ?? '', { allowPrivate: this.allowPrivate, ...opts });
  }

  async connection(em: EntityManager, accountId: string): Promise<IScimConnection | null> {
    return em.findOne(ScimConnection, { account: accountId }, { refresh: true });
  }

  /**
   * Makes the account's connection match SCIM_URL / SCIM_TOKEN: created or updated when they are set,
   * removed when they no longer are. A new or moved connection starts with a full reconciliation.
   */
  async applyEnvironment(em: EntityManager, accountId: string): Promise<void> {
    const existing = await this.connection(em, accountId);
    if (!this.env) {
      if (existing?.managed) await this.remove(em, accountId);
      return;
    }
    if (existing?.managed && existing.baseUrl === this.env.url) {
      // A refused SCIM_TOKEN is fixed by restarting with another: each process tries its token again once.
      if (existing.refusedAt && !this.retried.has(accountId)) {
        await query(
          em,
          sql`update scim_connection set refused_at = null, problem = null, updated_at = now() where id = ${existing.id}`,
        );
      }
      this.retried.add(accountId);
      return;
    }
    this.retried.add(accountId);
    if (existing) await this.remove(em, accountId);
    await em.transactional(async (tx) => {
      const inserted = await query(
        tx,
        sql`insert into scim_connection (id, account_id, base_url, token, managed, connected_by)
          values (gen_random_uuid(), ${accountId}, ${this.env!.url}, null, true, 'SCIM_URL')
          on conflict (account_id) do nothing returning id`,
      );
      if (inserted.length) {
        await this.jobs.send(SCIM_JOBS.reconcile, { accountId }, { em: tx, singletonKey: accountId });
      }
    });
  }

  /** Checks the service answers with this token, then saves the connection and reconciles everything. */
  async connect(
    em: EntityManager,
    account: IAccount,
    actor: Actor,
    input: { url: string; token: string },
  ): Promise<void> {
    if (!actor.isAdmin) throw new DomainError('not_admin', 'Only admins can connect a SCIM service.');
    if (this.env) {
      throw new DomainError('not_allowed', 'The SCIM service is managed by the deployment (SCIM_URL).');
    }
    const { url, token } = parseConnection(input);
    await checkConnection(new ScimClient(url, token, { timeoutMs: 8000, allowPrivate: this.allowPrivate }));
    await em.transactional(async (tx) => {
      // Connecting again to the same service (a new token, after a refusal) keeps who is linked to whom there:
      // forgotten, a person whose email changed meanwhile would be created twice and their old user left
      // active. The connection itself starts afresh, so a sync still running with the old token stops. The
      // kept links are hints until confirmed (see confirmKeptLink): the token may be another tenant's.
      const same = await query(
        tx,
        sql`select 1 from scim_connection where account_id = ${account.id} and base_url = ${url} for update`,
      );
      await this.remove(tx, account.id, same.length > 0);
      await query(
        tx,
        sql`insert into scim_connection (id, account_id, base_url, token, managed, connected_by)
          values (gen_random_uuid(), ${account.id}, ${url}, ${token}, false, ${actor.slackUserId ?? null})`,
      );
      audit(tx, {
        account,
        actor: actor.slackUserId ?? 'unknown',
        action: 'scim.connected',
        subjectType: 'account',
        subjectId: account.id,
        surface: actor.surface,
        // Read API tokens can list the audit log: it keeps the URL without anything that might be a secret.
        data: await auditedUrl(tx, url),
      });
      await this.jobs.send(
        SCIM_JOBS.reconcile,
        { accountId: account.id, requestedBy: actor.slackUserId },
        { em: tx, singletonKey: account.id },
      );
    });
  }

  /** Stops syncing and forgets the service (its users stay as they are there: Roster never deletes). */
  async disconnect(em: EntityManager, account: IAccount, actor: Actor): Promise<boolean> {
    if (!actor.isAdmin) throw new DomainError('not_admin', 'Only admins can disconnect the SCIM service.');
    if (this.env) {
      throw new DomainError('not_allowed', 'The SCIM service is managed by the deployment (SCIM_URL).');
    }
    return em.transactional(async (tx) => {
      const removed = await this.remove(tx, account.id);
      if (removed) {
        audit(tx, {
          account,
          actor: actor.slackUserId ?? 'unknown',
          action: 'scim.disconnected',
          subjectType: 'account',
          subjectId: account.id,
          surface: actor.surface,
        });
      }
      return removed;
    });
  }

  /**
   * Queues a full reconciliation whose report goes to the actor; false when one is already waiting to start
   * (its report goes to whoever asked first). Refused without a connection.
   */
  async syncNow(em: EntityManager, account: IAccount, actor: Actor): Promise<boolean> {
    if (!actor.isAdmin) throw new DomainError('not_admin', 'Only admins can sync the SCIM service.');
    const connection = await this.connection(em, account.id);
    if (!connection) throw new DomainError('not_found', 'No SCIM service is connected.');
    const unusable = savedUrlProblem(connection.baseUrl);
    if (unusable) throw new DomainError('invalid_input', unusable);
    const id = await this.jobs.send(
      SCIM_JOBS.reconcile,
      { accountId: account.id, requestedBy: actor.slackUserId },
      { singletonKey: account.id },
    );
    return id !== null;
  }

  /**
   * What the SCIM view and the Home tab show; reads only (it runs before a view opens). The environment's
   * connection is applied by the jobs, at start and every minute: until then it shows as `managedByEnv`.
   */
  async status(em: EntityManager, accountId: string): Promise<ScimStatus> {
    const connection = await this.connection(em, accountId);
    const counts = { pending: 0, synced: 0, failed: 0, skipped: 0 } as Record<ScimSyncState, number>;
    if (connection) {
      const rows = await query<{ state: ScimSyncState; n: number }>(
        em,
        sql`select state, count(*)::int as n from scim_sync where account_id = ${accountId} group by state`,
      );
      for (const r of rows) counts[r.state] = r.n;
    }
    const unusableUrl = connection ? savedUrlProblem(connection.baseUrl) : null;
    return {
      connected: !!connection,
      managed: connection?.managed ?? false,
      managedByEnv: !!this.env,
      // Shown in Slack: a saved URL that may hold a secret is shown without it.
      baseUrl: connection
        ? unusableUrl
          ? redactedUrl(connection.baseUrl)
          : connection.baseUrl
        : this.env?.url,
      unusableUrl,
      refused: connection?.refusedAt ? connection.problem : null,
      pausedUntil: connection?.pausedUntil,
      lastReconciledAt: connection?.lastReconciledAt,
      counts,
    };
  }

  /**
   * Stops a connection saved with a URL Roster no longer takes (see savedUrlProblem) before anything is sent
   * to it: it is marked refused with the reason, and `onRefused` (what tells the admins) is queued in the
   * same transaction, once. False when the URL is fine. Changes stay pending until an admin connects again.
   */
  async stopUnusableUrl(
    em: EntityManager,
    connection: IScimConnection,
    onRefused: (tx: EntityManager, problem: string) => Promise<unknown>,
  ): Promise<boolean> {
    const problem = savedUrlProblem(connection.baseUrl);
    if (!problem) return false;
    await em.transactional(async (tx) => {
      const marked = await query(
        tx,
        sql`update scim_connection set refused_at = now(), problem = ${problem}, updated_at = now()
          where id = ${connection.id} and refused_at is null returning id`,
      );
      if (marked.length) await onRefused(tx, problem);
    });
    return true;
  }

  /** Deletes the connection and, unless `keepLinks`, the sync states that point into that service. */
  private async remove(em: EntityManager, accountId: string, keepLinks = false): Promise<boolean> {
    if (!keepLinks) await query(em, sql`delete from scim_sync where account_id = ${accountId}`);
    const removed = await query(
      em,
      sql`delete from scim_connection where account_id = ${accountId} returning id`,
    );
    return removed.length > 0;
  }
}

/** One person's sync state, for the person card; null when no service is connected or they were never queued. */
export async function personSyncState(
  em: EntityManager,
  accountId: string,
  userId: string,
): Promise<PersonSyncState | null> {
  if (!(await em.count(ScimConnection, { account: accountId }))) return null;
  const row = await em.findOne(ScimSync, { userId, accountId }, { refresh: true });
  if (!row) return null;
  return {
    state: row.state,
    remoteId: row.remoteId ?? null,
    lastError: row.lastError ?? null,
    lastSyncedAt: row.lastSyncedAt ?? null,
    attempts: row.attempts,
  };
}

/** The form's URL and token, checked for shape (not yet against the service). */
export function parseConnection(input: { url: string; token: string }): { url: string; token: string } {
  const url = parseUrl(input.url.trim());
  const token = input.token.trim().replace(/^Bearer\s+/i, '');
  if (!token || token.length > MAX_TOKEN || /\s/.test(token)) {
    throw new DomainError('invalid_input', 'Paste the bearer token the service gave you, without spaces.', {
      field: 'token',
    });
  }
  return { url, token };
}

function parseUrl(raw: string): string {
  const fault = scimUrlFault(raw);
  if (fault) throw new DomainError('invalid_input', FORM_URL_PROBLEMS[fault], { field: 'url' });
  return new URL(raw).toString().replace(/\/+$/, '');
}

const EXAMPLE = 'https://app.example.com/scim/v2';

/** What the connect form says of a URL it refuses. */
const FORM_URL_PROBLEMS: Record<ScimUrlFault, string> = {
  not_url: `Enter the base URL of the SCIM service, e.g. ${EXAMPLE}.`,
  insecure: 'The base URL must start with https://.',
  too_long: `The base URL must be at most ${MAX_SCIM_URL} characters.`,
  credentials: `The URL must not hold a user name or password: Roster signs in with the token, and admins see the URL. Enter the base URL alone, e.g. ${EXAMPLE}.`,
  query: `The URL must not have a ?query or #fragment: Roster adds /Users and other paths after it, which they would break. Enter the base URL alone, e.g. ${EXAMPLE}; a key the service gave you goes in Bearer token.`,
};

/**
 * Why a connection saved before the form refused such URLs cannot be used, for the admins; null when its
 * URL is fine. Its URL is not changed behind their back: they connect again with the base URL alone.
 */
export function savedUrlProblem(baseUrl: string): string | null {
  const fault = scimUrlFault(baseUrl);
  if (!fault) return null;
  const why =
    fault === 'credentials'
      ? 'holds a user name or password, which Roster never sends (it signs in with the token) and which admins would see'
      : fault === 'query'
        ? 'has a ?query or #fragment, which ends up before the /Users path Roster adds, so calls do not reach the service as meant'
        : 'is not an https:// base URL';
  return `The saved URL ${redactedUrl(baseUrl)} ${why}. Connect again with the base URL alone (e.g. ${EXAMPLE}) and the bearer token.`;
}

/** Calls the service once; a failure becomes a message for the form, saying what to check. */
async function checkConnection(client: ScimClient): Promise<void> {
  try {
    await client.check();
  } catch (err) {
    if (!(err instanceof ScimError)) throw err;
    const message =
      err.kind === 'unauthorized'
        ? `The service refused the token (${err.status}). Check it, and that it may manage users.`
        : err.kind === 'not_found'
          ? `No SCIM service answers at this URL (${err.status}). It usually ends in /scim/v2.`
          : err.status === 0
            ? `The service could not be reached: ${err.message}.`
            : `The service answered ${err.message}.`;
    throw new DomainError('invalid_input', message.slice(0, 500), {
      field: err.kind === 'unauthorized' ? 'token' : 'url',
    });
  }
}
