import { createHash } from 'node:crypto';
import { type OutboundAnswer, type OutboundError, outboundRequest } from '../../shared/outbound.ts';

/** What went wrong with a call to the SCIM service, as Roster must react to it. */
export type ScimFailure =
  /**
   * 401/403: the token is refused; nothing more can be sent until an admin connects again. A 403 to a write
   * for one user, once the service has taken writes with the token, is that user's refusal while the token
   * still lists users (see scim.push.ts).
   */
  | 'unauthorized'
  /** 429: the service asks Roster to slow down for `retryAfterMs`. */
  | 'rate_limited'
  /** 5xx, a timeout or no answer: worth trying again later. */
  | 'transient'
  /** 409 (or 400 with scimType "uniqueness"): a user with that userName already exists. */
  | 'conflict'
  /** 404: no such resource. */
  | 'not_found'
  /** 400 and other 4xx: the service refuses what was sent; trying again will not help. */
  | 'rejected';

/** A failed SCIM call: the kind of failure, the HTTP status (0 without an answer) and the service's own words. */
export class ScimError extends Error {
  readonly kind: ScimFailure;
  readonly status: number;
  readonly retryAfterMs?: number;
  /** The service's `scimType` (RFC 7644 3.12), when its answer has one. */
  readonly scimType?: string;
  constructor(kind: ScimFailure, status: number, message: string, retryAfterMs?: number, scimType?: string) {
    super(message);
    this.name = 'ScimError';
    this.kind = kind;
    this.status = status;
    this.retryAfterMs = retryAfterMs;
    this.scimType = scimType;
  }
}

/** How a service that cannot filter on an attribute answers such a filter (400 invalidFilter, 501). */
const FILTER_REFUSED = [400, 501];

/** A User resource as the service returns it (its id read as a string); only what Roster reads is typed. */
export type RemoteUser = {
  id: string;
  userName: string;
  externalId?: string;
  /** A boolean in SCIM 2.0; some services answer a string ("True", "false"): read it with `readActive`. */
  active?: unknown;
  name?: { givenName?: string; familyName?: string; formatted?: string };
  displayName?: string;
  title?: string;
  emails?: { value: string; primary?: boolean; type?: string }[];
  phoneNumbers?: { value: string; primary?: boolean; type?: string }[];
  roles?: { value: string; primary?: boolean }[];
};

/** What Roster knows of a service's support for something optional: nothing yet, taken, or refused. */
export type Support = 'unknown' | 'taken' | 'refused';

export type PatchOperation = { op: 'add' | 'replace' | 'remove'; path?: string; value?: unknown };

type ListResponse = {
  totalResults?: number;
  itemsPerPage?: number;
  startIndex?: number;
  Resources?: RemoteUser[];
};

const SCIM_JSON = 'application/scim+json';
const DEFAULT_TIMEOUT_MS = 15_000;
/** Used when a 429 carries no usable Retry-After. */
const DEFAULT_RETRY_AFTER_MS = 30_000;
/**
 * The shortest pause after a 429, whatever its Retry-After says: `0`, or a date already past (the service's
 * clock behind Roster's), would otherwise have the sync call again at once, as fast as it can, until the
 * service lets it through.
 */
export const MIN_RETRY_AFTER_MS = 1000;

/** The seconds (or HTTP date) of a Retry-After header, in milliseconds; undefined when absent or unreadable. */
export function retryAfterMs(header: string | null, now = Date.now()): number | undefined {
  if (!header) return undefined;
  if (/^\d+$/.test(header.trim())) return Number(header.trim()) * 1000;
  const at = Date.parse(header);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

const text = (value: unknown): string | undefined => (typeof value === 'string' ? value : undefined);

/** A multi-valued attribute (emails, phone numbers, roles): its entries that hold a string value. */
function multi(value: unknown): { value: string; primary?: boolean; type?: string }[] | undefined {
  if (!Array.isArray(value)) return undefined;
  return value
    .filter((v): v is Record<string, unknown> => !!v && typeof v === 'object' && typeof v.value === 'string')
    .map((v) => ({ value: v.value as string, primary: v.primary === true, type: text(v.type) }));
}

/**
 * A user as the service answered it, read field by field: what is not of its type in RFC 7643 is left out,
 * so an odd answer (`"userName": 42`, `"emails": "a@b.c"`) is a difference the next push writes over, never a
 * crash that would leave people leased and no one told. Its id is a string: some services answer a JSON
 * number (`"id": 123`), which would never equal the id Roster keeps. Null when the answer is no object.
 */
function remoteUser(user: unknown): RemoteUser | undefined {
  if (!user || typeof user !== 'object' || Array.isArray(user)) return undefined;
  const u = user as Record<string, unknown>;
  const name = u.name && typeof u.name === 'object' ? (u.name as Record<string, unknown>) : undefined;
  return {
    id: typeof u.id === 'number' ? String(u.id) : (text(u.id) ?? ''),
    userName: text(u.userName) ?? '',
    externalId: text(u.externalId),
    active: u.active,
    name: name
      ? {
          givenName: text(name.givenName),
          familyName: text(name.familyName),
          formatted: text(name.formatted),
        }
      : undefined,
    displayName: text(u.displayName),
    title: text(u.title),
    emails: multi(u.emails),
    phoneNumbers: multi(u.phoneNumbers),
    roles: multi(u.roles),
  };
}

/**
 * The users of a list answer (RFC 7644 3.4.2): its `Resources`, each read by {@link remoteUser}. An answer
 * that is not a list at all is the service's fault, said like any refusal.
 */
function listed(list: unknown, where: string): { users: RemoteUser[]; totalResults?: number } {
  const body = list && typeof list === 'object' && !Array.isArray(list) ? (list as ListResponse) : null;
  const resources: unknown = body?.Resources ?? [];
  if (!body || !Array.isArray(resources)) {
    throw new ScimError(
      'rejected',
      200,
      `${where} answered with something that is not a SCIM list of users; is this the SCIM base URL?`,
    );
  }
  // An entry without an id or a userName cannot be linked to anyone: it is passed over.
  const users = resources.map((u) => remoteUser(u)).filter((u): u is RemoteUser => !!u?.id && !!u.userName);
  return { users, totalResults: typeof body.totalResults === 'number' ? body.totalResults : undefined };
}

/** A SCIM value must be quoted in a filter; `"` and `\` are escaped as in JSON strings (RFC 7644 3.4.2.2). */
export function filterString(value: string): string {
  return JSON.stringify(value);
}

/**
 * A small SCIM 2.0 client for the Users endpoint, with a bearer token. Every failure is a {@link ScimError}
 * saying how to react; the token never appears in an error.
 */
export class ScimClient {
  readonly baseUrl: string;
  private readonly token: string;
  private readonly timeoutMs: number;
  private readonly allowPrivate: boolean;
  /**
   * Whether the service takes PATCH: `refused` once it answered one 501 or 405, and updates are then PUTs.
   * The connection keeps what a run learns (see scim.sync.ts), so the next run starts from it.
   */
  patchSupport: Support = 'unknown';
  /** The PATCH in flight while `patchSupport` is unknown: the others wait for its answer. */
  private patchProbe?: Promise<unknown>;
  /**
   * Whether the service takes the `roles` attribute: `refused` once it refused a user for them (a 400 naming
   * them) and then took the same user without them, and users are then sent without (see scim.push.ts).
   */
  rolesSupport: Support = 'unknown';
  /**
   * The media type of the bodies Roster sends: SCIM's own (RFC 7644 8.1) until the service refuses it with
   * 415, as services built on a general JSON framework may; then plain JSON.
   */
  private bodyType = SCIM_JSON;
  /**
   * Whether the service has taken a write (a create or an update) with this token, in this run or, as its
   * connection keeps (see scim.sync.ts), before: only then can a 403 to a write be one user's refusal.
   */
  writeTaken = false;
  /** The last {@link tokenWorks} check, shared by the calls of the next {@link TOKEN_CHECK_MS}. */
  private tokenCheck?: { at: number; done: Promise<void> };

  constructor(baseUrl: string, token: string, opts: { timeoutMs?: number; allowPrivate?: boolean } = {}) {
    this.baseUrl = baseUrl.replace(/\/+$/, '');
    this.token = token;
    this.timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.allowPrivate = opts.allowPrivate ?? false;
  }

  /**
   * Checks the URL and the token: the service's configuration (when it serves one), then one user of the
   * list. Many services serve their configuration to anyone (RFC 7644's discovery endpoints), so only the
   * list, which needs the token, says the token works.
   */
  async check(): Promise<void> {
    try {
      await this.call('GET', '/ServiceProviderConfig');
    } catch (err) {
      if (!(err instanceof ScimError && err.kind === 'not_found')) throw err;
    }
    await this.call('GET', '/Users?startIndex=1&count=1');
  }

  /**
   * {@link check}, shared: a run whose writes are refused one after another checks the token once, not once
   * per refusal. A check that failed is made again by the next caller.
   */
  tokenWorks(now = Date.now()): Promise<void> {
    const last = this.tokenCheck;
    if (last && now - last.at < TOKEN_CHECK_MS) return last.done;
    const done = this.check();
    const entry = { at: now, done };
    this.tokenCheck = entry;
    done.catch(() => {
      if (this.tokenCheck === entry) this.tokenCheck = undefined;
    });
    return done;
  }

  /** A digest of the token, kept with the connection to know which token a write was taken with. */
  get tokenDigest(): string {
    return createHash('sha256').update(this.token).digest('hex');
  }

  async findByUserName(userName: string): Promise<RemoteUser | null> {
    const wanted = userName.toLowerCase();
    const users = await this.usersWhere(`userName eq ${filterString(userName)}`, () => false);
    return users.find((u) => u.userName.toLowerCase() === wanted) ?? null;
  }

  /**
   * The user Roster created for its person `externalId` (the person's id, sent with every create), if the
   * service has one: found under an older userName too (a create whose answer was lost, then an email
   * change). A service that cannot filter on externalId (it refuses the filter, or has no such attribute)
   * is taken as having none, and so is a listing that does not match it exactly.
   */
  async findByExternalId(externalId: string): Promise<RemoteUser | null> {
    const users = await this.usersWhere(
      `externalId eq ${filterString(externalId)}`,
      (err) => err.kind === 'rejected' && FILTER_REFUSED.includes(err.status),
    );
    return users.find((u) => u.externalId === externalId) ?? null;
  }

  /** The users a filter lists; none when the service answers 404 or an error `none` accepts as such. */
  private async usersWhere(filter: string, none: (err: ScimError) => boolean): Promise<RemoteUser[]> {
    let list: unknown;
    try {
      list = await this.call<unknown>('GET', `/Users?filter=${encodeURIComponent(filter)}`);
    } catch (err) {
      // Some services answer 404 when the filter matches nobody (RFC 7644 3.4.2 asks for an empty list). A
      // URL without a Users endpoint at all says so again, on the create that follows.
      if (err instanceof ScimError && (err.kind === 'not_found' || none(err))) return [];
      throw err;
    }
    return listed(list, 'GET /Users').users;
  }

  /** One page of the Users list, from 1-based `startIndex`, and whether pages may follow it. */
  async listUsers(startIndex: number, count: number): Promise<{ users: RemoteUser[]; more: boolean }> {
    const list = listed(
      await this.call<unknown>('GET', `/Users?startIndex=${startIndex}&count=${count}`),
      'GET /Users',
    );
    const { users } = list;
    if (!users.length) return { users, more: false };
    // totalResults is required (RFC 7644 3.4.2), yet some services leave it out: then any page may have
    // more after it (many answer fewer users than asked, whatever `count` says), and only an empty one ends
    // the list: one request more per read.
    const more =
      typeof list.totalResults === 'number' ? startIndex - 1 + users.length < list.totalResults : true;
    return { users, more };
  }

  async get(id: string): Promise<RemoteUser> {
    const user = remoteUser(await this.call<unknown>('GET', `/Users/${encodeURIComponent(id)}`));
    if (!user) {
      throw new ScimError('rejected', 200, 'GET /Users/{id} answered with something that is not a SCIM user');
    }
    return user;
  }

  async create(user: Record<string, unknown> & { userName: string }): Promise<RemoteUser> {
    const created = remoteUser(await this.call<unknown>('POST', '/Users', user));
    if (created?.id) return created;
    // The answer SHOULD hold the new user (RFC 7644 3.3), so some services leave it out: the list names it.
    const found = await this.findByUserName(user.userName);
    if (!found) {
      // The user was created: a service whose list catches up with its writes a moment later lists it on
      // the next attempt, which links it.
      throw new ScimError(
        'transient',
        0,
        `POST /Users answered without the new user's id, and GET /Users does not list ${user.userName} yet`,
      );
    }
    return found;
  }

  async patch(id: string, operations: PatchOperation[]): Promise<RemoteUser | undefined> {
    return this.call<RemoteUser | undefined>('PATCH', `/Users/${encodeURIComponent(id)}`, {
      schemas: ['urn:ietf:params:scim:api:messages:2.0:PatchOp'],
      Operations: operations,
    });
  }

  /**
   * Changes the service's user `id` by `operations`, or, for a service that does not take PATCH (optional in
   * RFC 7644, which has such a service answer 501; some answer 405), by replacing it with `user`, the whole
   * user, with PUT. The first refused PATCH is remembered for the rest of this client's life. While it is not
   * known whether the service takes PATCH, one is sent at a time, so a refusal is met once, not once per
   * call in flight.
   */
  async update(id: string, operations: PatchOperation[], user: Record<string, unknown>): Promise<void> {
    while (this.patchSupport === 'unknown' && this.patchProbe) await this.patchProbe.catch(() => {});
    if (this.patchSupport !== 'refused') {
      const attempt = this.patch(id, operations);
      if (this.patchSupport === 'unknown') this.patchProbe = attempt;
      try {
        await attempt;
        this.patchSupport = 'taken';
        return;
      } catch (err) {
        if (!(err instanceof ScimError && (err.status === 501 || err.status === 405))) throw err;
        this.patchSupport = 'refused';
      } finally {
        if (this.patchProbe === attempt) this.patchProbe = undefined;
      }
    }
    await this.call('PUT', `/Users/${encodeURIComponent(id)}`, { ...user, id });
  }

  private async call<T>(method: string, path: string, body?: unknown): Promise<T> {
    const where = `${method} ${path.split('?')[0]}`;
    const bodyType = this.bodyType;
    let res: OutboundAnswer;
    let text: string;
    try {
      // The token goes with every call: without allowPrivate, the connection itself refuses this machine
      // and private networks, whatever the name resolved to when it was checked before.
      res = await outboundRequest(`${this.baseUrl}${path}`, {
        method,
        headers: {
          authorization: `Bearer ${this.token}`,
          accept: `${SCIM_JSON}, application/json`,
          ...(body !== undefined ? { 'content-type': bodyType } : {}),
        },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
        timeoutMs: this.timeoutMs,
        allowPrivate: this.allowPrivate,
      });
      text = await res.text(MAX_ANSWER_BYTES);
    } catch (err) {
      const e = err as OutboundError;
      if (e.code === 'PRIVATE_ADDRESS') throw new ScimError('rejected', 0, `${where}: ${e.message}`);
      if (e.code === 'TOO_LARGE') throw new ScimError('rejected', 0, `${where}: ${e.message}`);
      const what = e.code === 'TIMEOUT' ? `no answer within ${this.timeoutMs / 1000} s` : e.message;
      throw new ScimError('transient', 0, `${where}: ${what}`);
    }
    if (res.status === 415 && body !== undefined && bodyType === SCIM_JSON) {
      // Refused for its media type, so not done: the same body again, as application/json.
      this.bodyType = 'application/json';
      return this.call<T>(method, path, body);
    }
    if (res.status >= 300 && res.status < 400) {
      // Redirects are not followed: the token would go wherever the answer points.
      throw new ScimError('transient', res.status, `${where}: unexpected redirect (${res.status})`);
    }
    if (res.status >= 200 && res.status < 300) {
      if (method !== 'GET') this.writeTaken = true;
      try {
        return (text ? JSON.parse(text) : undefined) as T;
      } catch {
        // A page that is not SCIM (a login page, a product's home): said like any refusal, never a crash
        // that would leave people leased and no one told.
        throw new ScimError(
          'rejected',
          res.status,
          `${where} answered ${res.status} with something that is not JSON; is this the SCIM base URL?`,
        );
      }
    }
    const detail = errorDetail(text, this.token) ?? res.statusText;
    const type = scimType(text);
    const answered = `${where} answered ${res.status}${detail ? `: ${detail}` : ''}`;
    if (res.status === 401 || res.status === 403) throw new ScimError('unauthorized', res.status, answered);
    if (res.status === 429) {
      throw new ScimError(
        'rate_limited',
        429,
        answered,
        Math.max(MIN_RETRY_AFTER_MS, retryAfterMs(header(res, 'retry-after')) ?? DEFAULT_RETRY_AFTER_MS),
      );
    }
    if (res.status >= 500 || res.status === 408) {
      throw new ScimError('transient', res.status, answered, retryAfterMs(header(res, 'retry-after')));
    }
    // A duplicate userName is 409 in RFC 7644 (3.3, 3.12); some services (FusionAuth before 1.36, go-scim,
    // WSO2) answer it 400, saying which by the same scimType.
    if (res.status === 409 || (res.status === 400 && type === 'uniqueness')) {
      throw new ScimError('conflict', res.status, answered, undefined, type);
    }
    if (res.status === 404) throw new ScimError('not_found', 404, answered, undefined, type);
    throw new ScimError('rejected', res.status, answered, undefined, type);
  }
}

/**
 * What a SCIM error response says, cut short: SCIM 2.0's `detail`, or the `description`s of SCIM 1.1's
 * `Errors`; undefined when it says neither. `secret` is blanked out first, should the service echo it.
 */
function errorDetail(text: string, secret: string): string | undefined {
  const clean = (said: string, max: number) =>
    (secret ? said.replaceAll(secret, '[token]') : said).slice(0, max);
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    return text ? clean(text, 200) : undefined;
  }
  if (!body || typeof body !== 'object') return undefined;
  const { detail, Errors } = body as { detail?: unknown; Errors?: unknown };
  if (typeof detail === 'string' && detail.trim()) return clean(detail, 300);
  const descriptions = (Array.isArray(Errors) ? Errors : [])
    .map((e) => (e && typeof e === 'object' ? (e as { description?: unknown }).description : undefined))
    .filter((d): d is string => typeof d === 'string' && d.trim() !== '');
  return descriptions.length ? clean(descriptions.join('; '), 300) : undefined;
}

/** The `scimType` of a SCIM error response (RFC 7644 3.12), if it has one. */
function scimType(text: string): string | undefined {
  try {
    const said = (JSON.parse(text) as { scimType?: unknown } | null)?.scimType;
    return typeof said === 'string' ? said : undefined;
  } catch {
    return undefined;
  }
}

/** How long a {@link ScimClient.tokenWorks} check answers for the calls that follow it. */
const TOKEN_CHECK_MS = 30_000;

/** SCIM answers Roster reads are small (a page of users is well under this); more is cut off. */
const MAX_ANSWER_BYTES = 8 * 1024 * 1024;

function header(res: OutboundAnswer, name: string): string | null {
  const value = res.headers[name];
  return (Array.isArray(value) ? value[0] : value) ?? null;
}
