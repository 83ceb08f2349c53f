import { defineEntity, type InferEntity, p } from '@mikro-orm/core';
import { baseProperties } from '../../db/base.ts';
import { Account, PermissionSet } from '../accounts/account.entity.ts';
import { ROLES, User } from '../people/user.entity.ts';

export const SEAT_REQUEST_KINDS = [
  'invite',
  'convert',
  'join',
  'import',
  'unlock',
  'reactivate',
  'role_change',
] as const;
export type SeatRequestKind = (typeof SEAT_REQUEST_KINDS)[number];
export const SEAT_REQUEST_STATUSES = ['pending', 'approved', 'rejected', 'expired'] as const;
export type SeatRequestStatus = (typeof SEAT_REQUEST_STATUSES)[number];

/** A paid-seat addition by a non-admin, waiting for an admin's decision. */
export const SeatRequest = defineEntity({
  name: 'SeatRequest',
  tableName: 'seat_request',
  properties: {
    ...baseProperties,
    account: () => p.manyToOne(Account).ref(),
    kind: p.enum(SEAT_REQUEST_KINDS),
    status: p.enum(SEAT_REQUEST_STATUSES).default('pending'),
    email: p.string(),
    name: p.string().nullable(),
    role: p.enum(ROLES),
    permissionSet: () => p.manyToOne(PermissionSet).ref().nullable(),
    user: () => p.manyToOne(User).ref().nullable(),
    requestedBy: p.string(),
    payload: p.json<Record<string, unknown>>().default('{}'),
    decidedBy: p.string().nullable(),
    decidedAt: p.datetime().nullable(),
    reason: p.text().nullable(),
    expiresAt: p.datetime(),
    messages: p.json<{ channel: string; ts: string; target?: string }[]>().default('[]'),
  },
});
export type ISeatRequest = InferEntity<typeof SeatRequest>;
