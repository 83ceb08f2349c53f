import type { EntityManager } from '@mikro-orm/postgresql';
import { Account, type IAccount } from '../accounts/account.entity.ts';
import { AuditEvent, type Surface } from './audit-event.entity.ts';

export type AuditEntry = {
  account: IAccount;
  actor: string;
  action: string;
  subjectType: string;
  subjectId?: string | null;
  surface: Surface;
  data?: Record<string, unknown>;
};

/** Records an audit event in the EntityManager's unit of work, so it commits with the change it describes. */
export function audit(em: EntityManager, entry: AuditEntry): void {
  em.create(AuditEvent, {
    account: entry.account,
    actor: entry.actor,
    action: entry.action,
    subjectType: entry.subjectType,
    subjectId: entry.subjectId ?? null,
    surface: entry.surface,
    data: entry.data ?? {},
  });
}

/**
 * Records a refused attempt (a requester clicking an admin's button, a forged form) in its own
 * transaction, so the record stays while the refused work rolls back.
 */
export async function auditRefusal(em: EntityManager, entry: AuditEntry): Promise<void> {
  const own = em.fork({ clear: true });
  audit(own, { ...entry, account: own.getReference(Account, entry.account.id) });
  await own.flush();
}
