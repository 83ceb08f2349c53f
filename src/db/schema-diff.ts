import type { ORM } from './orm.ts';

/**
 * Tables the migrations create on purpose without an entity: they are used through SQL only
 * (slack_receipt and slack_once: src/slack/once.ts; slack_view_redraw: src/slack/later.ts; rate_limit_hit: src/features/join-links/web/rate-limit.ts;
 * slack_member and slack_directory_sync: src/features/directory/directory.service.ts; slack_pace:
 * src/slack/pacing.ts; webhook_endpoint, webhook_delivery and webhook_attempt: src/features/webhooks/,
 * filled by a trigger on audit_event; seat_usage and seat_change: the seat count, kept by triggers on
 * app_user and read by src/features/seats/seat.service.ts; audit_url_key: src/features/audit/audit.service.ts).
 */
const TABLES_WITHOUT_ENTITY = [
  'slack_receipt',
  'slack_once',
  'slack_view_redraw',
  'rate_limit_hit',
  'slack_member',
  'slack_directory_sync',
  'slack_pace',
  'webhook_endpoint',
  'webhook_delivery',
  'webhook_attempt',
  'seat_usage',
  'seat_change',
  'audit_url_key',
];

/**
 * Statements MikroORM proposes because the migrations keep a rule the entities do not describe, or
 * describe the same rule in other words. Each is a deliberate part of the schema, not a missing migration.
 */
const KNOWN_DIFFERENCES: { statement: RegExp; why: string }[] = [
  {
    statement: /^drop (trigger if exists "\w+" on "\w+"|function if exists "\w+"\([\w ]*\));$/,
    why: 'the seat-limit backstop and the webhook outbox: triggers and their functions, which entities cannot describe',
  },
  {
    statement: /^drop index "[\w]+";$/,
    why: 'indexes and partial unique indexes the migrations add for queries and rules',
  },
  {
    statement: /^alter table "\w+" drop constraint "\w+";$/,
    why: 'check, unique and foreign key constraints the migrations add (rules that hold whatever the code does)',
  },
  {
    statement: new RegExp(`^drop table if exists "(${TABLES_WITHOUT_ENTITY.join('|')})" cascade;$`),
    why: 'tables used through SQL only',
  },
  {
    statement:
      /^alter table "csv_import_row" add constraint "csv_import_row_(kind|result)_check" check \("(kind|result)" in \([^)]*\)\);$/,
    why: 'the migration writes the same check as "is null or in (…)"',
  },
  {
    statement: /^alter table "join_confirmation" alter column "token_hash" type varchar\(255\)/,
    why: 'the migration stores the hash as char(64), checked as hex',
  },
  {
    statement:
      /^alter table "join_confirmation" add constraint "join_confirmation_(join_link_id_foreign" foreign key|token_hash_unique" unique)/,
    why: 'the same foreign key and unique constraint exist under PostgreSQL’s default names',
  },
];

export type SchemaChanges = { up: string[]; down: string[] };

function statements(sql: string): string[] {
  return sql
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '');
}

/**
 * What the entities need that the database lacks: MikroORM's schema diff between the entities and the
 * database, without the deliberate differences above. Empty when the migrations match the entities.
 */
export async function schemaChanges(orm: ORM): Promise<SchemaChanges> {
  const diff = await orm.schema.getUpdateSchemaMigrationSQL({ wrap: false });
  const up: string[] = [];
  const ignored: string[] = [];
  for (const statement of statements(diff.up)) {
    if (KNOWN_DIFFERENCES.some((known) => known.statement.test(statement))) ignored.push(statement);
    else up.push(statement);
  }
  if (up.length === 0) return { up, down: [] };
  // The reverse of an ignored statement recreates what it would have dropped: leave that out of down too.
  const names = new Set(
    ignored.flatMap((s) =>
      [...s.matchAll(/(?:index|constraint|exists) "(\w+)"/g)].map(([, name]) => name as string),
    ),
  );
  const recreatesIgnored = (statement: string) =>
    [...statement.matchAll(/(?:index|constraint|table) "?(\w+)"?/gi)].some(([, name]) =>
      names.has(name as string),
    ) || /^alter table "join_confirmation" alter column "token_hash" type/.test(statement);
  return { up, down: statements(diff.down).filter((statement) => !recreatesIgnored(statement)) };
}
