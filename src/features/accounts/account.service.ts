import { randomUUID } from 'node:crypto';
import type { EntityManager } from '@mikro-orm/postgresql';
import { query, sql } from '../../db/sql.ts';
import { Account, DEFAULT_PERMISSION_SETS, type IAccount, PermissionSet } from './account.entity.ts';

/**
 * Finds the account of a Slack workspace, creating it with the default permission sets the first time. A
 * `name` given is the workspace's name now: an account found under an older one takes it.
 */
export async function ensureAccount(
  em: EntityManager,
  teamId: string,
  name?: string | null,
): Promise<IAccount> {
  const existing = await em.findOne(Account, { teamId });
  if (existing) {
    if (!name?.trim() || existing.name === name.trim()) return existing;
    await renameAccount(em, teamId, name);
    return em.findOneOrFail(Account, { teamId }, { refresh: true });
  }
  await em.transactional(async (tx) => {
    const inserted = await query<{ id: string }>(
      tx,
      sql`insert into account (id, team_id, name) values (${randomUUID()}, ${teamId}, ${name ?? null})
        on conflict (team_id) do nothing returning id`,
    );
    const accountId = inserted[0]?.id;
    if (!accountId) return;
    for (const setName of DEFAULT_PERMISSION_SETS) {
      await query(
        tx,
        sql`insert into permission_set (id, account_id, name, is_admin)
          values (${randomUUID()}, ${accountId}, ${setName}, ${setName === 'Admin'})`,
      );
    }
  });
  return em.findOneOrFail(Account, { teamId });
}

/**
 * The workspace was renamed in Slack: invitations, join pages and messages name it as it is called now.
 * The account and its installation record take the name; an empty one is ignored.
 */
export async function renameAccount(em: EntityManager, teamId: string, name: string): Promise<void> {
  // The columns hold 255 characters; Slack's names are far shorter.
  const trimmed = name.trim().slice(0, 255);
  if (!trimmed) return;
  await em.transactional(async (tx) => {
    await query(
      tx,
      sql`update account set name = ${trimmed}, updated_at = now()
        where team_id = ${teamId} and name is distinct from ${trimmed}`,
    );
    await query(
      tx,
      sql`update slack_installation set team_name = ${trimmed}, updated_at = now()
        where team_id = ${teamId} and team_name is distinct from ${trimmed}`,
    );
  });
}

export async function permissionSets(em: EntityManager, account: IAccount) {
  return em.find(PermissionSet, { account }, { orderBy: { isAdmin: 'desc', name: 'asc' } });
}
