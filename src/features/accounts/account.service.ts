import { randomUUID } from 'node:crypto';
import type { EntityManager } from '@mikro-orm/postgresql';
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
    const conn = tx.getConnection();
    const ctx = tx.getTransactionContext();
    const inserted = await conn.execute<{ id: string }[]>(
      'insert into account (id, team_id, name) values (?, ?, ?) on conflict (team_id) do nothing returning id',
      [randomUUID(), teamId, name ?? null],
      'all',
      ctx,
    );
    const accountId = inserted[0]?.id;
    if (!accountId) return;
    for (const setName of DEFAULT_PERMISSION_SETS) {
      await conn.execute(
        'insert into permission_set (id, account_id, name, is_admin) values (?, ?, ?, ?)',
        [randomUUID(), accountId, setName, setName === 'Admin'],
        'all',
        ctx,
      );
    }
  });
  return em.findOneOrFail(Account, { teamId });
}

export async function permissionSets(em: EntityManager, account: IAccount) {
  return em.find(PermissionSet, { account }, { orderBy: { isAdmin: 'desc', name: 'asc' } });
}
