import { randomUUID } from 'node:crypto';
import type { EntityManager } from '@mikro-orm/postgresql';
import { query, sql } from '../../db/sql.ts';
import { Account, DEFAULT_PERMISSION_SETS, type IAccount, PermissionSet } from './account.entity.ts';

/**
 * Finds the account of a Slack workspace, creating it with the default permission sets the first time. A
 * `name` given is the workspace's name now (team.info's answer): the account takes it, as of now.
 */
export async function ensureAccount(
  em: EntityManager,
  teamId: string,
  name?: string | null,
): Promise<IAccount> {
  const existing = await em.findOne(Account, { teamId });
  if (existing) {
    if (!name?.trim()) return existing;
    // Even the same name: a rename Slack dated before now, handled after this, must not replace it.
    await renameAccount(em, teamId, name);
    return em.findOneOrFail(Account, { teamId }, { refresh: true });
  }
  await em.transactional(async (tx) => {
    const inserted = await query<{ id: string }>(
      tx,
      sql`insert into account (id, team_id, name, name_set_at)
        values (${randomUUID()}, ${teamId}, ${name ?? null}, case when ${name ?? null}::text is not null
          then date_trunc('second', now()) end)
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
 * The account and its installation record take the name; an empty one is ignored. `asOf` is when Slack
 * said it (a team_rename's event_time; now without it), counted in whole seconds as Slack counts: a name
 * the account took as of a later time stays, so a rename redelivered or handled late brings no older
 * name back.
 */
export async function renameAccount(
  em: EntityManager,
  teamId: string,
  name: string,
  asOf?: Date,
): Promise<void> {
  // The columns hold 255 characters; Slack's names are far shorter.
  const trimmed = name.trim().slice(0, 255);
  if (!trimmed) return;
  await em.transactional(async (tx) => {
    const at = sql`date_trunc('second', coalesce(${asOf ?? null}::timestamptz, now()))`;
    const renamed = await query(
      tx,
      sql`update account set name = ${trimmed}, name_set_at = ${at}, updated_at = now()
        where team_id = ${teamId} and (name_set_at is null or name_set_at <= ${at}) returning id`,
    );
    if (!renamed.length) return;
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
