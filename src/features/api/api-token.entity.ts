import { defineEntity, type InferEntity, p } from '@mikro-orm/core';
import { baseProperties } from '../../db/base.ts';
import { Account } from '../accounts/account.entity.ts';

export const API_SCOPES = ['read'] as const;

/**
 * A read token for the API, created by an admin in Slack or set by the deployment (API_TOKEN). Only the
 * SHA-256 hash of the token is stored; `hint` is its recognisable start, shown in lists.
 */
export const ApiToken = defineEntity({
  name: 'ApiToken',
  tableName: 'api_token',
  properties: {
    ...baseProperties,
    account: () => p.manyToOne(Account).ref(),
    name: p.string(),
    tokenHash: p.string().unique(),
    hint: p.string(),
    /** What the token may do: read. A later write API gives its tokens another scope, never these. */
    scope: p.enum(API_SCOPES).default('read'),
    /** Set by the deployment's API_TOKEN: shown in Slack, revoked only by changing the environment. */
    managed: p.boolean().default(false),
    createdBy: p.string(),
    /** Null: until revoked. */
    expiresAt: p.datetime().nullable(),
    lastUsedAt: p.datetime().nullable(),
    revokedAt: p.datetime().nullable(),
    revokedBy: p.string().nullable(),
  },
});
export type IApiToken = InferEntity<typeof ApiToken>;
