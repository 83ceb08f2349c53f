import { hostname } from 'node:os';
import pg from 'pg';
import { adminQuery } from './postgres.ts';

/**
 * The names a test run gives its databases, and only those: its template (`roster_template_<pid>`) and the
 * databases made under testDatabasePrefix (`roster_test_<pid>_` and a suffix of lower-case letters, digits
 * and underscores), `<pid>` being the process of the run. Any other database, however alike, is never dropped.
 */
const RUN_DATABASE = /^roster_(?:template_([1-9]\d*)|test_([1-9]\d*)_[0-9a-z_]+)$/;

/**
 * What a run writes on each database it makes (`COMMENT ON DATABASE`): the machine and the process. Only a
 * database that says it was made on this machine by a process that is gone here is ever dropped as left over:
 * one made elsewhere (another machine or container sharing the server), or by an older checkout that wrote
 * nothing, is left alone, whatever its name.
 */
export const runTag = (pid: number, host = hostname()) => `roster test run: host ${host}, process ${pid}`;

/** Marks `name` as made by the run `pid` on this machine (see runTag). */
export async function tagRunDatabase(adminUrl: string, name: string, pid: number): Promise<void> {
  await adminQuery(adminUrl, `comment on database "${name}" is '${runTag(pid).replace(/'/g, "''")}'`);
}

/** The application name a run's marker session has on the server, so runs elsewhere see it is alive. */
const marker = (pid: number) => `roster-test-run-${pid}`;

/** Whether a process with this id runs on this machine (one of another user counts). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Drops the databases that earlier runs left behind when they were killed outright (SIGKILL, a closed
 * terminal, a crash): those made on this machine (runTag) whose run's process is gone from it and which no
 * one is connected to. A run still going, here or on another machine sharing the server, keeps a marker session open, so
 * its databases stay even when its process id means nothing here. Returns the names dropped.
 */
export async function dropLeftovers(adminUrl: string, alive = processAlive): Promise<string[]> {
  const { rows } = await adminQuery(
    adminUrl,
    `select d.datname, shobj_description(d.oid, 'pg_database') as tag,
        exists (select 1 from pg_stat_activity a where a.datname = d.datname) as in_use,
        (select array_agg(application_name) from pg_stat_activity where application_name like 'roster-test-run-%') as runs
      from pg_database d where d.datname like 'roster\\_%'`,
  );
  const dropped: string[] = [];
  for (const { datname, tag, in_use, runs } of rows as {
    datname: string;
    tag: string | null;
    in_use: boolean;
    runs: string[] | null;
  }[]) {
    const m = RUN_DATABASE.exec(datname);
    if (!m) continue;
    const pid = Number(m[1] ?? m[2]);
    if (tag !== runTag(pid) || in_use || alive(pid) || (runs ?? []).includes(marker(pid))) continue;
    // Without force: a database someone connected to meanwhile is left for a later run.
    await adminQuery(adminUrl, `drop database if exists "${datname}"`).then(
      () => dropped.push(datname),
      () => {},
    );
  }
  return dropped;
}

/** Opens the session that tells other runs this one is alive; it ends with the run, however it ends. */
export async function holdRunMarker(adminUrl: string, pid: number): Promise<pg.Client> {
  const client = new pg.Client({
    connectionString: adminUrl,
    connectionTimeoutMillis: 3000,
    application_name: marker(pid),
  });
  await client.connect();
  // The server going away mid-run must not crash the run from here: the tests say so themselves.
  client.on('error', () => {});
  return client;
}

/** Drops every database of the run `pid`: its template and every test file's copy, connected or not. */
export async function dropRun(adminUrl: string, pid: number): Promise<void> {
  const { rows } = await adminQuery(
    adminUrl,
    `select datname from pg_database where datname like 'roster\\_%'`,
  ).catch(() => ({ rows: [] as { datname: string }[] }));
  for (const { datname } of rows) {
    const m = RUN_DATABASE.exec(datname);
    if (!m || Number(m[1] ?? m[2]) !== pid) continue;
    await adminQuery(adminUrl, `drop database if exists "${datname}" with (force)`).catch(() => {});
  }
}
