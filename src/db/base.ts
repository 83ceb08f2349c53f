import { randomUUID } from 'node:crypto';
import { p } from '@mikro-orm/core';

/** A UUID key and the creation time, for rows that are written once. */
export const createdProperties = {
  id: p
    .uuid()
    .primary()
    .onCreate(() => randomUUID()),
  createdAt: p
    .datetime()
    .onCreate(() => new Date())
    .defaultRaw('now()'),
};

/** Columns every changing table has: a UUID key and timestamps with time zone. */
export const baseProperties = {
  ...createdProperties,
  updatedAt: p
    .datetime()
    .onCreate(() => new Date())
    .onUpdate(() => new Date())
    .defaultRaw('now()'),
};

/**
 * The transaction that last wrote the row, set by the database on every insert and update; the read API
 * lists rows in this order (see the api_tokens migration). Never loaded unless asked for.
 */
export const changeProperties = {
  changeXid: p.string().columnType('xid8').defaultRaw('pg_current_xact_id()').lazy(),
};
