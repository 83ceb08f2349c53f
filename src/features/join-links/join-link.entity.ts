import { defineEntity, type InferEntity, p } from '@mikro-orm/core';
import { baseProperties } from '../../db/base.ts';
import { Account } from '../accounts/account.entity.ts';
import { ROLES } from '../people/user.entity.ts';

/** A link an admin posted in a channel; people join through its button or its URL. */
export const JoinLink = defineEntity({
  name: 'JoinLink',
  tableName: 'join_link',
  properties: {
    ...baseProperties,
    account: () => p.manyToOne(Account).ref(),
    tokenHash: p.string().unique(),
    role: p.enum(ROLES).default('employee'),
    expiresAt: p.datetime(),
    maxUses: p.integer().nullable(),
    uses: p.integer().default(0),
    allowedEmailDomains: p.array().default([]),
    revokedAt: p.datetime().nullable(),
    revokedBy: p.string().nullable(),
    createdBy: p.string(),
    channelId: p.string().nullable(),
    messageTs: p.string().nullable(),
  },
});
export type IJoinLink = InferEntity<typeof JoinLink>;
