import type { EntityManager } from '@mikro-orm/postgresql';
import { query, sql } from '../../db/sql.ts';
import type { Logger } from '../../shared/logger.ts';
import type { ListKind } from './api.params.ts';
import type { Position } from './api.queries.ts';

const TABLES = ['app_user', 'contact', 'audit_event'] as const;

/**
 * Change positions are transaction ids of the database server that wrote them. A dump restored on another
 * server brings positions that server has not reached yet: those rows would wait unseen until it does, and
 * changes made meanwhile would sort before them. Such positions are reset to now, at every start (an index
 * look per account and table; nothing to change on a server that wrote its own rows). Returns how many rows changed.
 */
export async function resetPositionsFromElsewhere(em: EntityManager, logger: Logger): Promise<number> {
  let reset = 0;
  await em.transactional(async (tx) => {
    for (const table of TABLES) {
      const rows = await query(
        tx,
        // Per account, so each look is a range of the (account_id, change_xid, id) index, not a table scan.
        sql`update ${sql.raw(table)} set change_xid = pg_current_xact_id()
          where account_id in (select id from account)
            and change_xid >= pg_snapshot_xmax(pg_current_snapshot()) returning 1`,
      );
      reset += rows.length;
    }
  });
  if (reset > 0) {
    logger.warn(
      { rows: reset },
      'rows carried change positions from another database server (restored from a dump?): reset, so the read API lists them; API clients start again without a cursor',
    );
  }
  return reset;
}

/** Whether a cursor's position is one this database server has not reached: it was issued before a restore. */
export async function fromElsewhere(em: EntityManager, position: Position): Promise<boolean> {
  const [row] = await query<{ ahead: boolean }>(
    em,
    sql`select ${position.xid}::xid8 >= pg_snapshot_xmax(pg_current_snapshot()) as ahead`,
  );
  return row?.ahead === true;
}

const TABLE_OF: Record<ListKind, (typeof TABLES)[number]> = {
  people: 'app_user',
  contacts: 'contact',
  'audit-events': 'audit_event',
};

/**
 * Whether a cursor issued before cursors named their account may be read for `accountId`: its position is
 * the start of a list, or a row of that account's list (rows keep their ids). Another account's position
 * would read this account's list from a point in theirs, skipping the rows before it for good.
 */
export async function positionOfAccount(
  em: EntityManager,
  kind: ListKind,
  accountId: string,
  position: Position,
): Promise<boolean> {
  if (/^0+$/.test(position.id.replace(/-/g, ''))) return true;
  const rows = await query(
    em,
    sql`select 1 from ${sql.raw(TABLE_OF[kind])} where id = ${position.id} and account_id = ${accountId}`,
  );
  return rows.length === 1;
}
