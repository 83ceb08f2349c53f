import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { EntityManager } from '@mikro-orm/postgresql';
import type { Logger } from '../shared/logger.ts';

export type WebRequest = {
  method: string;
  path: string;
  /**
   * The route as it was added, `/invitations/:token`: what logs name. The path itself may hold a live
   * invitation or join token.
   */
  route: string;
  /**
   * Where people's browsers reach Roster on its host: PUBLIC_URL's path, `/roster` behind a proxy that
   * serves it there (and strips it before passing requests on), '' at the host's root. Every link,
   * redirect and cookie path a page sends starts with it; `path` never holds it.
   */
  base: string;
  params: Record<string, string>;
  query: URLSearchParams;
  form: URLSearchParams;
  ip: string;
  /** What rate limits count the client by (see clientNetwork): its IPv4 address or IPv6 /64. */
  network: string;
  cookies: Record<string, string>;
  em: EntityManager;
  log: Logger;
  raw: IncomingMessage;
};

export type WebResponse = {
  status?: number;
  html?: string;
  json?: unknown;
  /** The type of a JSON answer when not plain application/json, e.g. application/problem+json. */
  contentType?: string;
  headers?: Record<string, string | string[]>;
  redirect?: string;
};

export type WebHandler = (req: WebRequest) => Promise<WebResponse>;

type Route = { method: string; path: string; pattern: RegExp; keys: string[]; handler: WebHandler };

/**
 * A request Roster cannot read: a broken percent-escape, a body too large or of the wrong type. It gets a
 * 400 page saying `message`, is logged without a stack, and reaches no handler.
 */
export class BadRequest extends Error {
  readonly status = 400;
  constructor(message: string) {
    super(message);
    this.name = 'BadRequest';
  }
}

/** Strict percent-decoding: an escape that is not two hex digits, or bytes that are not UTF-8, are refused. */
export function decodeStrict(value: string, plusIsSpace = false): string {
  const text = plusIsSpace ? value.replace(/\+/g, ' ') : value;
  try {
    return decodeURIComponent(text);
  } catch {
    throw new BadRequest('Part of this address or form is not correctly encoded.');
  }
}

/**
 * Form and query text as browsers send it (`a=1&b=x+y`), refusing what no browser sends: broken escapes
 * or invalid UTF-8, which URLSearchParams would quietly turn into other text.
 */
export function parseForm(text: string): URLSearchParams {
  const out = new URLSearchParams();
  for (const part of text.split('&')) {
    if (!part) continue;
    const i = part.indexOf('=');
    const key = i < 0 ? part : part.slice(0, i);
    const value = i < 0 ? '' : part.slice(i + 1);
    out.append(decodeStrict(key, true), decodeStrict(value, true));
  }
  return out;
}

/** The routes of the web pages: `/invitations/:token` style paths, handlers return a response. */
export class Router {
  private readonly routes: Route[] = [];

  add(method: 'GET' | 'POST', path: string, handler: WebHandler): void {
    const keys: string[] = [];
    const source = path.replace(/:([A-Za-z]+)/g, (_, key: string) => {
      keys.push(key);
      return '([^/]+)';
    });
    this.routes.push({ method, path, pattern: new RegExp(`^${source}/?$`), keys, handler });
  }

  match(
    method: string,
    path: string,
  ): { handler: WebHandler; params: Record<string, string>; route: string } | 'wrong_method' | null {
    let pathMatched = false;
    for (const route of this.routes) {
      const m = route.pattern.exec(path);
      if (!m) continue;
      pathMatched = true;
      if (route.method !== method && !(method === 'HEAD' && route.method === 'GET')) continue;
      const params: Record<string, string> = {};
      route.keys.forEach((k, i) => {
        params[k] = decodeStrict(m[i + 1] ?? '');
      });
      return { handler: route.handler, params, route: route.path };
    }
    return pathMatched ? 'wrong_method' : null;
  }

  /** The methods the routes of `path` take, HEAD with GET, for an `Allow` header. */
  allowed(path: string): string[] {
    const methods = new Set<string>();
    for (const route of this.routes) {
      if (!route.pattern.test(path)) continue;
      if (route.method === 'GET') methods.add('GET').add('HEAD');
      else methods.add(route.method);
    }
    return [...methods];
  }
}

/**
 * Cookies by name. One that does not decode is left out rather than refused: cookies outlive the request
 * (another app on the same host may have set it), so a 400 would lock that browser out; the CSRF cookie
 * is then simply issued afresh.
 */
export function parseCookies(header: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of (header ?? '').split(';')) {
    const i = part.indexOf('=');
    if (i <= 0) continue;
    try {
      out[part.slice(0, i).trim()] = decodeURIComponent(part.slice(i + 1).trim());
    } catch {
      // An undecodable value: as if the cookie were not there.
    }
  }
  return out;
}

/** The web pages' forms are a few short fields; anything near this size is not one of them. */
export const FORM_BODY_LIMIT = 16 * 1024;

/** A form body, refused before it is read when its declared length is too large, and while read otherwise. */
export async function readBody(req: IncomingMessage, limit = FORM_BODY_LIMIT): Promise<string> {
  const tooLarge = () => new BadRequest('This form sent more than Roster accepts.');
  if (Number(req.headers['content-length'] ?? 0) > limit) throw tooLarge();
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > limit) throw tooLarge();
    chunks.push(chunk as Buffer);
  }
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(Buffer.concat(chunks));
  } catch {
    throw new BadRequest('Part of this address or form is not correctly encoded.');
  }
}

/**
 * CSRF protection for the web forms: a random value in a cookie, echoed in a hidden field as an HMAC bound
 * to the form's path, so a value from another page or site does not pass. The cookie is SameSite=Lax, not
 * Strict: people open these pages from links in webmail on another site, and a Strict cookie is not sent
 * on that visit, so each visit would replace it and break the form in a tab opened earlier. Lax still keeps
 * it off another site's POSTs. A page reuses a cookie the browser already has, never replaces it.
 */
export class Csrf {
  private readonly key: Buffer;
  private readonly secure: boolean;
  constructor(secret: string, publicUrl: string) {
    this.key = createHmac('sha256', secret).update('roster-csrf').digest();
    this.secure = publicUrl.startsWith('https://');
  }

  issue(req: WebRequest): { field: string; cookie?: string } {
    let nonce = req.cookies.roster_csrf;
    let cookie: string | undefined;
    if (!nonce || !/^[A-Za-z0-9_-]{32,}$/.test(nonce)) {
      nonce = randomBytes(24).toString('base64url');
      cookie = `roster_csrf=${nonce}; Path=${req.base}/; HttpOnly; SameSite=Lax${this.secure ? '; Secure' : ''}`;
    }
    return { field: this.sign(nonce, req.path), cookie };
  }

  verify(req: WebRequest): boolean {
    return this.check(req) === 'ok';
  }

  /**
   * Whether the form passes, and if not why: `no_cookie` when the browser sent no CSRF cookie at all (it
   * blocks cookies, or lost them since the page was opened), which the page must say, as pressing the
   * button again cannot help while cookies are blocked; `mismatch` for a cookie that does not go with
   * the form (expired, replaced, another page's or site's).
   */
  check(req: WebRequest): 'ok' | 'no_cookie' | 'mismatch' {
    const nonce = req.cookies.roster_csrf;
    // One sent but left out for not decoding is a cookie that does not go with the form, not a missing one.
    if (!nonce) return /(?:^|;)\s*roster_csrf=/.test(req.raw.headers.cookie ?? '') ? 'mismatch' : 'no_cookie';
    const sent = req.form.get('csrf');
    if (!sent) return 'mismatch';
    const expected = Buffer.from(this.sign(nonce, req.path));
    const given = Buffer.from(sent);
    return expected.length === given.length && timingSafeEqual(expected, given) ? 'ok' : 'mismatch';
  }

  private sign(nonce: string, path: string): string {
    return createHmac('sha256', this.key).update(`${nonce}|${path}`).digest('base64url');
  }
}

/** The path under which browsers reach Roster, from its public address: `/roster`, or '' at the root. */
export function basePath(publicUrl: string): string {
  try {
    return new URL(publicUrl).pathname.replace(/\/+$/, '');
  } catch {
    return '';
  }
}

/** Headers every answer carries: nothing cached, sniffed, or sent on as a referrer (links hold tokens). */
export const COMMON_HEADERS = {
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-store',
} as const;

/**
 * Headers every HTML page carries besides: no scripts, no framing, forms only back to Roster, and no
 * `<base>` element to turn the pages' relative links and form targets elsewhere.
 */
export const PAGE_HEADERS = {
  'content-security-policy':
    "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
  'x-frame-options': 'DENY',
} as const;

/**
 * Strict-Transport-Security when browsers reach Roster over https (PUBLIC_URL), so they never again open
 * its links (which carry tokens) over plain http, for a year, on Roster's host alone (another service on
 * a subdomain may not have https). None over http: it would have no effect and nothing to protect.
 */
export function transportHeaders(publicUrl: string | undefined): Record<string, string> {
  return publicUrl && /^https:/i.test(publicUrl) ? { 'strict-transport-security': 'max-age=31536000' } : {};
}

export function send(res: ServerResponse, r: WebResponse): void {
  const headers: Record<string, string | string[]> = { ...COMMON_HEADERS, ...r.headers };
  if (r.redirect) {
    res.writeHead(r.status ?? 303, { ...headers, location: r.redirect });
    res.end();
    return;
  }
  if (r.json !== undefined) {
    res.writeHead(r.status ?? 200, { ...headers, 'content-type': r.contentType ?? 'application/json' });
    res.end(JSON.stringify(r.json));
    return;
  }
  res.writeHead(r.status ?? 200, {
    ...headers,
    'content-type': 'text/html; charset=utf-8',
    ...PAGE_HEADERS,
  });
  res.end(r.html ?? '');
}
