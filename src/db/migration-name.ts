/** A migration file's timestamp: `MigrationYYYYMMDDHHMMSS_name.ts`, in UTC. */
const STAMPED = /^Migration(\d{14})_/;

/** `date` as a migration's timestamp, YYYYMMDDHHMMSS in UTC. */
export const migrationStamp = (date: Date) => date.toISOString().replace(/\D/g, '').slice(0, 14);

/**
 * The timestamp of a new migration among `existing` (file names): now, unless a migration already there is
 * dated now or later (a clock behind the one that dated it); then one second after the latest. Migrations
 * run in name order, so one dated before the latest would run before it on a fresh database, while the
 * database it was written against ran it last: fine there, broken on the next fresh install.
 */
export function newMigrationStamp(existing: readonly string[], now = new Date()): string {
  const latest = existing
    .map((name) => STAMPED.exec(name)?.[1])
    .filter((stamp): stamp is string => !!stamp)
    .sort()
    .at(-1);
  const stamp = migrationStamp(now);
  if (!latest || stamp > latest) return stamp;
  const part = (from: number, to: number) => Number(latest.slice(from, to));
  const next = Date.UTC(part(0, 4), part(4, 6) - 1, part(6, 8), part(8, 10), part(10, 12), part(12, 14) + 1);
  return migrationStamp(new Date(next));
}
