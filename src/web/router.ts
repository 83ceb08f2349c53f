import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { EntityManager } from '@mikro-orm/postgresql';
import type { Logger } from '../shared/logger.ts';

export type WebRequest = {
  method: string;
  path: string;
  params: Record<string, string>;
  query: URLSearchParams;
  form: URLSearchParams;
  ip: string;
  cookies: Record<string, string>;
  em: EntityManager;
  log: Logger;
  raw: IncomingMessage;
};

export type WebResponse = {
  status?: number;
  html?: string;
  json?: unknown;
  headers?: Record<string, string | string[]>;
  redirect?: string;
};

export type WebHandler = (req: WebRequest) => Promise<WebResponse>;

type Route = { method: string; pattern: RegExp; keys: string[]; handler: WebHandler };

/** The routes of the web pages: `/invitations/:token` style paths, handlers return a response. */
export class Router {
  private readonly routes: Route[] = [];

  add(method: 'GET' | 'POST', path: string, handler: WebHandler): void {
    const keys: string[] = [];
    const source = path.replace(/:([A-Za-z]+)/g, (_, key: string) => {
      keys.push(key);
      return '([^/]+)';
    });
    this.routes.push({ method, pattern: new RegExp(`^${source}/?$`), keys, handler });
  }

  match(
    method: string,
    path: string,
  ): { handler: WebHandler; params: Record<string, string> } | 'wrong_method' | null {
    let pathMatched = false;
    for (const route of this.routes) {
      const m = route.pattern.exec(path);
      if (!m) continue;
      pathMatched = true;
      if (route.method !== method && !(method === 'HEAD' && route.method === 'GET')) continue;
      const params: Record<string, string> = {};
      route.keys.forEach((k, i) => {
        params[k] = decodeURIComponent(m[i + 1] ?? '');
      });
      return { handler: route.handler, params };
    }
    return pathMatched ? 'wrong_method' : null;
  }
}

export function parseCookies(header: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of (header ?? '').split(';')) {
    const i = part.indexOf('=');
    if (i > 0) out[part.slice(0, i).trim()] = decodeURIComponent(part.slice(i + 1).trim());
  }
  return out;
}

export async function readBody(req: IncomingMessage, limit = 64 * 1024): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > limit) throw Object.assign(new Error('body too large'), { status: 413 });
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/**
 * CSRF protection for the web forms: a random value in a SameSite=Strict cookie, echoed in a hidden
 * field as an HMAC bound to the form's path, so a value from another page or site does not pass.
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
      cookie = `roster_csrf=${nonce}; Path=/; HttpOnly; SameSite=Strict${this.secure ? '; Secure' : ''}`;
    }
    return { field: this.sign(nonce, req.path), cookie };
  }

  verify(req: WebRequest): boolean {
    const nonce = req.cookies.roster_csrf;
    const sent = req.form.get('csrf');
    if (!nonce || !sent) return false;
    const expected = Buffer.from(this.sign(nonce, req.path));
    const given = Buffer.from(sent);
    return expected.length === given.length && timingSafeEqual(expected, given);
  }

  private sign(nonce: string, path: string): string {
    return createHmac('sha256', this.key).update(`${nonce}|${path}`).digest('base64url');
  }
}

export function send(res: ServerResponse, r: WebResponse): void {
  const headers: Record<string, string | string[]> = {
    'x-content-type-options': 'nosniff',
    'referrer-policy': 'no-referrer',
    'cache-control': 'no-store',
    ...r.headers,
  };
  if (r.redirect) {
    res.writeHead(r.status ?? 303, { ...headers, location: r.redirect });
    res.end();
    return;
  }
  if (r.json !== undefined) {
    res.writeHead(r.status ?? 200, { ...headers, 'content-type': 'application/json' });
    res.end(JSON.stringify(r.json));
    return;
  }
  res.writeHead(r.status ?? 200, {
    ...headers,
    'content-type': 'text/html; charset=utf-8',
    'content-security-policy':
      "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'",
    'x-frame-options': 'DENY',
  });
  res.end(r.html ?? '');
}
