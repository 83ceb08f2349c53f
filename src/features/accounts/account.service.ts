import { randomUUID } from 'node:crypto';
import type { EntityManager } from '@mikro-orm/postgresql';
import { query, sql } from '../../db/sql.ts';
import { Account, DEFAULT_PERMISSION_SETS, type IAccount, PermissionSet } from './account.entity.ts';

/** Finds the account of a Slack workspace, creating it with the default permission sets the first time. */
export async function ensureAccount(
  em: EntityManager,
  teamId: string,
  name?: string | null,
): Promise<IAccount> {
  const existing = await em.findOne(Account, { teamId });
  if (existing) return existing;
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

export async function permissionSets(em: EntityManager, account: IAccount) {
  return em.find(PermissionSet, { account }, { orderBy: { isAdmin: 'desc', name: 'asc' } });
}
