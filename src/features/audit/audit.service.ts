import { createHmac } from 'node:crypto';
import type { EntityManager } from '@mikro-orm/postgresql';
import { query, sql } from '../../db/sql.ts';
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

/**
 * An admin-entered URL (a webhook endpoint, a SCIM service) as audit events keep it: the scheme and host
 * (with its port), and `urlFingerprint`, which tells two URLs on one host apart (and the same URL again)
 * without showing them. Read API tokens can list the audit log, and many receivers carry their credential in
 * the path (Zapier's `/hooks/catch/<id>/<key>/`, Slack's `/services/T…/B…/<secret>`) or the query string.
 * The fingerprint is an HMAC keyed by a random key kept in the database (`audit_url_key`), not a plain hash:
 * anyone with the host and a hash could try candidate URLs, and a key of a few characters falls quickly.
 * Unlike a key derived from the Slack signing secret, it stays the same when that secret is rotated.
 */
export async function auditedUrl(
  em: EntityManager,
  url: string,
): Promise<{ url: string; urlFingerprint: string }> {
  const [row] = await query<{ key: Buffer }>(em, sql`select key from audit_url_key`);
  if (!row) throw new Error('audit_url_key is empty: the migrations have not run');
  let origin: string;
  try {
    const parsed = new URL(url);
    origin = `${parsed.protocol}//${parsed.host}`;
  } catch {
    origin = '[not a URL]';
  }
  return { url: origin, urlFingerprint: createHmac('sha256', row.key).update(url).digest('hex').slice(0, 8) };
}
