import { createHmac } from 'node:crypto';
import { z } from 'zod';
import { query, sql } from '../../../db/sql.ts';
import { referenceId } from '../../../shared/ids.ts';
import { ApiProblem, invalidCursor, invalidParameters } from '../../../web/problem.ts';
import type { Router, WebRequest, WebResponse } from '../../../web/router.ts';
import type { Deps } from '../../feature.ts';
import { SharedRateLimiter } from '../../join-links/web/rate-limit.ts';
import { openApiDocument } from '../api.openapi.ts';
import { encodeCursor, type ListKind, OTHER_ACCOUNT, parseList } from '../api.params.ts';
import { fromElsewhere, positionOfAccount } from '../api.positions.ts';
import {
  auditPosition,
  findPerson,
  listAuditEvents,
  listContacts,
  listPeople,
  type Page,
} from '../api.queries.ts';
import type { ApiCaller } from '../api-token.service.ts';

/** Requests per minute per token when API_RATE_LIMIT is not set. */
export const DEFAULT_RATE_LIMIT = 600;
/**
 * Failed authentications a client address may make within a minute. Past it, the address's requests that
 * fail to authenticate are refused with 429 until the minute has passed. A request whose token works is
 * never refused by this limit: one integration retrying a revoked token, or anyone behind the same proxy
 * address, must not lock every other integration there out. Tokens are 256-bit random, so letting a right
 * guess through gives nothing a guesser could reach.
 */
export const FAILED_AUTH_LIMIT = 30;
const WINDOW_MS = 60_000;

const UNAUTHORIZED = new ApiProblem(
  401,
  'Send a working API token as “Authorization: Bearer roster_…”. Admins create and revoke tokens in Slack: App Home → API tokens.',
  { headers: { 'www-authenticate': 'Bearer realm="Roster API"' } },
);

const NOT_FOUND = (what: string) => new ApiProblem(404, `${what} does not exist in this account.`);

const uuid = z.uuid();

/** The key cursors are signed with, derived from the signing secret so every instance shares it. */
export const cursorSigningKey = (secret: string): Buffer =>
  createHmac('sha256', secret).update('roster-api-cursor').digest();

/** The read API under /api/v1: bearer tokens, per-token rate limits, JSON answers, problem+json errors. */
export function registerApiRoutes(router: Router, deps: Deps): void {
  const cursorKey = cursorSigningKey(deps.config.slack.signingSecret);
  const limiter = new SharedRateLimiter(deps.orm.em, WINDOW_MS);
  const perMinute = deps.config.apiRateLimit ?? DEFAULT_RATE_LIMIT;

  const authenticate = async (req: WebRequest): Promise<ApiCaller> => {
    const header = req.raw.headers.authorization ?? '';
    const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
    const caller = match ? await deps.apiTokens.authenticate(req.em, match[1]!) : null;
    // Every route here reads; a token of any other scope is not one this API knows.
    if (caller?.scope !== 'read') throw UNAUTHORIZED;
    return caller;
  };

  /** Seconds until the oldest hit of `key` leaves the window, at least 1. */
  const waitFor = async (req: WebRequest, key: string): Promise<number> => {
    const [row] = await query<{ wait: number | null }>(
      req.em,
      sql`select ceil(extract(epoch from min(at) + make_interval(secs => ${WINDOW_MS / 1000}) - now()))::int as wait
        from rate_limit_hit where key = ${key}`,
    );
    return Math.max(1, row?.wait ?? 1);
  };

  // Addresses over FAILED_AUTH_LIMIT, until when: known to this instance, so a well-behaved client costs
  // nothing more; another instance learns it from the shared count at the address's next failure there.
  const guessing = new Map<string, number>();
  const tooManyFailures = (wait: number) =>
    new ApiProblem(
      429,
      `Too many requests from this address with a missing or unknown token (${FAILED_AUTH_LIMIT} within a minute). Try again in ${wait} s.`,
      { headers: { 'retry-after': String(wait) } },
    );

  const refuseGuessing = (req: WebRequest): void => {
    const until = guessing.get(req.network);
    if (until === undefined) return;
    const wait = Math.ceil((until - Date.now()) / 1000);
    if (wait > 0) throw tooManyFailures(wait);
    guessing.delete(req.network);
  };

  const failedAuthentication = async (req: WebRequest): Promise<void> => {
    const key = `api:unauthorized:${req.network}`;
    if (await limiter.allow(key, FAILED_AUTH_LIMIT)) return;
    const wait = await waitFor(req, key);
    if (guessing.size > 10_000) {
      const now = Date.now();
      for (const [ip, until] of guessing) if (until <= now) guessing.delete(ip);
    }
    guessing.set(req.network, Date.now() + wait * 1000);
    req.log.warn(
      { ip: req.ip, network: req.network },
      'API requests with unknown tokens refused for a while',
    );
    throw tooManyFailures(wait);
  };

  const throttle = async (req: WebRequest, caller: ApiCaller): Promise<void> => {
    const key = `api:${caller.tokenId}`;
    if (await limiter.allow(key, perMinute)) return;
    const wait = await waitFor(req, key);
    throw new ApiProblem(
      429,
      `This token has made ${perMinute} requests within a minute, its limit. Try again in ${wait} s.`,
      { headers: { 'retry-after': String(wait) } },
    );
  };

  const endpoint =
    (handler: (req: WebRequest, caller: ApiCaller) => Promise<WebResponse>) =>
    async (req: WebRequest): Promise<WebResponse> => {
      try {
        let caller: ApiCaller;
        try {
          caller = await authenticate(req);
        } catch (err) {
          if (err === UNAUTHORIZED) {
            // Only failing requests count, and only they wait: a working token goes on as before.
            refuseGuessing(req);
            await failedAuthentication(req);
          }
          throw err;
        }
        await throttle(req, caller);
        return await handler(req, caller);
      } catch (err) {
        if (err instanceof ApiProblem) return err.response();
        const ref = referenceId();
        req.log.error({ err, ref, route: req.route }, 'API request failed');
        return new ApiProblem(500, `Roster could not answer this request. Reference: ${ref}.`).response();
      }
    };

  const list =
    <K extends ListKind, T>(
      kind: K,
      read: (
        req: WebRequest,
        caller: ApiCaller,
        request: ReturnType<typeof parseList<K>>,
      ) => Promise<Page<T>>,
    ) =>
    async (req: WebRequest, caller: ApiCaller): Promise<WebResponse> => {
      const request = parseList(cursorKey, caller.accountId, kind, req.query);
      if (request.from && (await fromElsewhere(req.em, request.from))) {
        throw invalidCursor(
          'This cursor was issued before the database was restored or moved. Start again without cursor (and upsert by id).',
        );
      }
      if (
        request.from &&
        request.unbound &&
        !(await positionOfAccount(req.em, kind, caller.accountId, request.from))
      ) {
        throw invalidCursor(OTHER_ACCOUNT);
      }
      const page = await read(req, caller, request);
      return {
        json: {
          data: page.rows,
          has_more: page.hasMore,
          next_cursor: encodeCursor(
            cursorKey,
            caller.accountId,
            kind,
            request.fingerprint,
            page.last ?? request.from,
          ),
        },
      };
    };

  router.add('GET', '/api/v1/openapi.json', async () => ({
    json: openApiDocument(deps.config.publicUrl),
    headers: { 'cache-control': 'public, max-age=300' },
  }));

  router.add(
    'GET',
    '/api/v1/people',
    endpoint(
      list('people', (req, caller, r) => listPeople(req.em, caller.accountId, r.filters, r.from, r.limit)),
    ),
  );

  router.add(
    'GET',
    '/api/v1/people/:id',
    endpoint(async (req, caller) => {
      const id = req.params.id ?? '';
      // The lists refuse what they do not take; so does the person, who takes nothing.
      const given = [...new Set(req.query.keys())];
      if (given.length) {
        throw invalidParameters(
          given.map((parameter) => ({
            parameter,
            detail: `${parameter} is not a parameter of /api/v1/people/{id}, which takes none.`,
          })),
        );
      }
      const found = uuid.safeParse(id).success ? await findPerson(req.em, caller.accountId, id) : null;
      if (!found) throw NOT_FOUND(`Person ${id}`);
      return { json: found };
    }),
  );

  router.add(
    'GET',
    '/api/v1/contacts',
    endpoint(
      list('contacts', (req, caller, r) =>
        listContacts(req.em, caller.accountId, r.filters, r.from, r.limit),
      ),
    ),
  );

  router.add(
    'GET',
    '/api/v1/audit-events',
    endpoint(
      list('audit-events', async (req, caller, r) => {
        if (r.afterEventId && !r.from) {
          const start = await auditPosition(req.em, caller.accountId, r.afterEventId);
          if (!start) {
            throw invalidParameters([
              { parameter: 'since', detail: `This account has no audit event ${r.afterEventId}.` },
            ]);
          }
          r.from = start;
        }
        return listAuditEvents(req.em, caller.accountId, r.filters, r.from, r.limit);
      }),
    ),
  );
}
