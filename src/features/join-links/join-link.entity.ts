import { defineEntity, type InferEntity, p } from '@mikro-orm/core';
import { baseProperties, createdProperties } from '../../db/base.ts';
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
    expiryAnnouncedAt: p.datetime().nullable(),
  },
});
export type IJoinLink = InferEntity<typeof JoinLink>;

/** A join through the link's web page, waiting for the person to confirm their email. */
export const JoinConfirmation = defineEntity({
  name: 'JoinConfirmation',
  tableName: 'join_confirmation',
  properties: {
    ...createdProperties,
    joinLink: () => p.manyToOne(JoinLink).ref(),
    email: p.string(),
    name: p.string(),
    tokenHash: p.string().unique(),
    /** The random part its link is derived from with the secret; null on rows made before it was kept. */
    tokenNonce: p.string().nullable(),
    expiresAt: p.datetime(),
    sentAt: p.datetime().nullable(),
    usedAt: p.datetime().nullable(),
  },
});
export type IJoinConfirmation = InferEntity<typeof JoinConfirmation>;
