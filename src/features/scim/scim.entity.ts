import { defineEntity, type InferEntity, p } from '@mikro-orm/core';
import { baseProperties } from '../../db/base.ts';
import { Account } from '../accounts/account.entity.ts';

/**
 * The SCIM 2.0 service an account provisions its users to: at most one per account. The bearer token is a
 * credential Roster presents, so it is kept as given (a hash could not be sent); it is never logged nor shown.
 * A connection set by SCIM_URL and SCIM_TOKEN is `managed`: its token stays in the environment.
 */
export const ScimConnection = defineEntity({
  name: 'ScimConnection',
  tableName: 'scim_connection',
  properties: {
    ...baseProperties,
    account: () => p.manyToOne(Account).ref().unique(),
    baseUrl: p.text(),
    token: p.text().nullable(),
    managed: p.boolean().default(false),
    connectedBy: p.string().nullable(),
    /** Set when the service refused the token (401/403): syncing stops until an admin connects again. */
    refusedAt: p.datetime().nullable(),
    problem: p.text().nullable(),
    /** No call to the service before this time (a 429's Retry-After, or the backoff after 5xx and timeouts). */
    pausedUntil: p.datetime().nullable(),
    /** Consecutive transient failures (5xx, timeouts), for the backoff; 0 after any success. */
    failures: p.integer().default(0),
    lastReconciledAt: p.datetime().nullable(),
    /** When the service last refused a PATCH (501/405): updates are PUTs until a day after (scim.sync.ts). */
    patchRefusedAt: p.datetime().nullable(),
    /** When the service last refused `roles` (a 400 naming them): users go without until a day after. */
    rolesRefusedAt: p.datetime().nullable(),
    /**
     * The SHA-256 digest of the token the service has taken a write with on this connection: until then a 403
     * to a write says the token may not write (see scim.push.ts).
     */
    writeTakenWith: p.text().nullable(),
  },
});
export type IScimConnection = InferEntity<typeof ScimConnection>;

export const SCIM_SYNC_STATES = ['pending', 'synced', 'failed', 'skipped'] as const;
export type ScimSyncState = (typeof SCIM_SYNC_STATES)[number];

/**
 * Where one user stands with the SCIM service. A trigger on `app_user` marks the row pending (and bumps
 * `version`) whenever a synced column changes, whatever wrote it; the sync job claims pending rows by
 * setting `leasedUntil`, pushes them, and marks them synced only if `version` did not move meanwhile.
 */
export const ScimSync = defineEntity({
  name: 'ScimSync',
  tableName: 'scim_sync',
  properties: {
    userId: p.uuid().primary(),
    accountId: p.uuid().index(),
    remoteId: p.text().nullable(),
    state: p.enum(SCIM_SYNC_STATES),
    version: p.integer().default(0),
    /** What the service was last seen to hold (Roster's last push, or its listing), to send only changes. */
    pushed: p.json<Record<string, unknown>>().nullable(),
    attempts: p.integer().default(0),
    nextAttemptAt: p.datetime().defaultRaw('now()'),
    leasedUntil: p.datetime().nullable(),
    lastError: p.text().nullable(),
    /** Refused by the service, and the admins not told yet: the service's words (see takeUntoldFailures). */
    failureUntold: p.text().nullable(),
    lastSyncedAt: p.datetime().nullable(),
    updatedAt: p.datetime().defaultRaw('now()'),
  },
});
export type IScimSync = InferEntity<typeof ScimSync>;
