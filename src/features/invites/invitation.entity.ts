import { defineEntity, type InferEntity, p } from '@mikro-orm/core';
import { baseProperties } from '../../db/base.ts';
import { Account } from '../accounts/account.entity.ts';
import { User } from '../people/user.entity.ts';

export const INVITATION_STATUSES = ['pending', 'accepted', 'cancelled', 'superseded', 'expired'] as const;
export type InvitationStatus = (typeof INVITATION_STATUSES)[number];
export const DELIVERY_METHODS = ['slack_dm', 'email'] as const;
export type DeliveryMethod = (typeof DELIVERY_METHODS)[number];

/**
 * An invitation sent to a user; its link token is stored only as a SHA-256 hash, made when the invitation
 * is delivered (null until then). Unique among delivered links (a partial index the migrations make).
 */
export const Invitation = defineEntity({
  name: 'Invitation',
  tableName: 'invitation',
  properties: {
    ...baseProperties,
    account: () => p.manyToOne(Account).ref(),
    user: () => p.manyToOne(User).ref(),
    tokenHash: p.string().nullable(),
    /** What the link is derived from with the secret, set by the first delivery attempt (see prepareDelivery). */
    tokenNonce: p.string().nullable(),
    status: p.enum(INVITATION_STATUSES).default('pending'),
    expiresAt: p.datetime(),
    invitedBy: p.string().nullable(),
    personalMessage: p.text().nullable(),
    deliveryMethod: p.enum(DELIVERY_METHODS).nullable(),
    deliveredAt: p.datetime().nullable(),
    deliveryAttempts: p.integer().default(0),
    /** Set while a delivery is under way, so no other one runs at the same time (see prepareDelivery). */
    deliveringUntil: p.datetime().nullable(),
    lastError: p.text().nullable(),
    /** When Roster stopped trying to deliver it (refused for good, or out of retries); see deliveryGaveUp. */
    deliveryFailedAt: p.datetime().nullable(),
    /** Given up in an import batch, and its inviter not told yet: why (a GiveUpCause); see deliverBatch. */
    failureUntold: p.text().nullable(),
    acceptedAt: p.datetime().nullable(),
    cancelledAt: p.datetime().nullable(),
  },
});
export type IInvitation = InferEntity<typeof Invitation>;
