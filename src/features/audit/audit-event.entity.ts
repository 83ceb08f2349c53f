import { defineEntity, type InferEntity, p } from '@mikro-orm/core';
import { changeProperties } from '../../db/base.ts';
import { Account } from '../accounts/account.entity.ts';

export const SURFACES = ['slack', 'web', 'job', 'system'] as const;
export type Surface = (typeof SURFACES)[number];

/**
 * Who changed what, when, from which surface. Never updated. An append-only log, written for the account
 * its request was resolved to, so it keeps no foreign key to that account (a lookup for every event).
 */
export const AuditEvent = defineEntity({
  name: 'AuditEvent',
  tableName: 'audit_event',
  properties: {
    id: p.bigint('number').primary().autoincrement(),
    account: () => p.manyToOne(Account).ref().createForeignKeyConstraint(false),
    actor: p.string(),
    action: p.string(),
    subjectType: p.string(),
    subjectId: p.string().nullable(),
    surface: p.enum(SURFACES),
    data: p.json<Record<string, unknown>>().default('{}'),
    /**
     * Stamped by the database (its transaction's time), not by this process's clock: it is compared with
     * times the database stamps, such as when a Slack event was recorded.
     */
    createdAt: p.datetime().defaultRaw('now()'),
    ...changeProperties,
  },
});
export type IAuditEvent = InferEntity<typeof AuditEvent>;
