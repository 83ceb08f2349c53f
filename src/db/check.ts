import pg from 'pg';
import { scrub } from '../shared/logger.ts';

/** How long a start waits for DATABASE_URL's server to answer before saying it does not. */
export const DATABASE_CONNECT_TIMEOUT_MS = 10_000;

/**
 * Whether the database at `url` takes a connection: undefined when it does, otherwise a line that names
 * DATABASE_URL (without its password) and says what is wrong and what to check. A server that never answers
 * is given up on after {@link DATABASE_CONNECT_TIMEOUT_MS}; `signal` (a stop while starting) gives up at once.
 */
export async function databaseProblem(url: string, signal?: AbortSignal): Promise<string | undefined> {
  const problem = (err: unknown) =>
    `Roster cannot use the database in DATABASE_URL (${shownUrl(url)}): ${reason(err, url)}.`;
  let client: pg.Client;
  try {
    // pg reads the files the URL names (sslrootcert, sslcert, sslkey) here, before connecting.
    client = new pg.Client({ connectionString: url, connectionTimeoutMillis: DATABASE_CONNECT_TIMEOUT_MS });
  } catch (err) {
    return problem(err);
  }
  // A failed connection also emits 'error'; the rejected connect() below says it.
  client.on('error', () => {});
  let onAbort = () => {};
  const aborted = new Promise<never>((_, fail) => {
    onAbort = () => fail(signal?.reason);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
  try {
    // Raced with the stop: a connection still waiting for the server's first word does not end on end().
    await Promise.race([client.connect().then(() => client.query('select 1')), aborted]);
    return undefined;
  } catch (err) {
    signal?.throwIfAborted();
    return problem(err);
  } finally {
    signal?.removeEventListener('abort', onAbort);
    // Not awaited: ending a connection the server never answered waits for the connect timeout.
    void client.end().catch(() => {});
  }
}

/**
 * DATABASE_URL as it may be shown: without its password or query. A URL with no host (`postgres://u@/db`,
 * its socket directory in `?host=`) reads as one to pg, and is shown so.
 */
function shownUrl(raw: string): string {
  for (const [text, host] of [
    [raw, undefined],
    [raw.replace('@/', '@localhost/'), ''],
  ] as const) {
    try {
      const url = new URL(text);
      return `${url.protocol}//${url.username ? `${url.username}@` : ''}${host ?? url.host}${url.pathname}`;
    } catch {}
  }
  return 'not a URL';
}

function reason(err: unknown, raw: string): string {
  const e = err as Error & { code?: string; syscall?: string; path?: string };
  if (e.syscall === 'open') {
    return `${e.path} cannot be read (${e.code}). Check the paths the URL gives in sslrootcert, sslcert and sslkey`;
  }
  let where = 'its server';
  try {
    const url = new URL(raw);
    where = `${url.hostname}:${url.port || 5432}`;
  } catch {}
  switch (e.code) {
    case 'ECONNREFUSED':
      return `nothing answers at ${where} (connection refused). Check that PostgreSQL runs there, and the URL's host and port`;
    case 'ENOENT':
      // A Unix socket path (a host= directory) where no PostgreSQL listens.
      return `no PostgreSQL socket is there (${scrub(e.message)}). Check that PostgreSQL runs on this machine, and the socket directory in the URL`;
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return `the host of ${where} is not found. Check the URL's host name`;
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
    case 'ETIMEDOUT':
      return `${where} cannot be reached (${e.code}). Check the URL's host and this machine's network`;
    case '28P01':
    case '28000':
      return `PostgreSQL refused the user (${scrub(e.message)}). Check the URL's user name and password`;
    case '3D000':
      return `${scrub(e.message)}. Create it (createdb), or fix the database name at the end of the URL`;
  }
  // pg's own connect timeout; a server's error (it has a SQLSTATE code) that mentions a timeout is said as it is.
  if (!/^[0-9A-Z]{5}$/.test(String(e.code ?? '')) && /timeout/i.test(e.message)) {
    return `${where} did not answer within ${DATABASE_CONNECT_TIMEOUT_MS / 1000} s. Check that PostgreSQL runs there, and the URL's host and port`;
  }
  return `${scrub(e.message)}. Check that PostgreSQL runs there and the URL's host, port, user, password and database name`;
}
