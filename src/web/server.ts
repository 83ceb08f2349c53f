import {
  createServer,
  type IncomingMessage,
  type RequestListener,
  type Server,
  type ServerResponse,
} from 'node:http';
import type { MikroORM } from '@mikro-orm/postgresql';
import { referenceId } from '../shared/ids.ts';
import type { Logger } from '../shared/logger.ts';
import { html, page } from './html.ts';
import { ApiProblem, isApiPath, PROBLEM_TYPE } from './problem.ts';
import {
  BadRequest,
  basePath,
  COMMON_HEADERS,
  PAGE_HEADERS,
  parseCookies,
  parseForm,
  type Router,
  readBody,
  send,
  transportHeaders,
  type WebRequest,
} from './router.ts';

export type ServerDeps = {
  orm: MikroORM;
  logger: Logger;
  router: Router;
  /** Bolt's HTTP receiver, absent in Socket Mode. */
  slackListener?: RequestListener;
  /** Why Slack's requests cannot be handled yet (Slack not reached at start), or undefined. */
  slackProblem?: () => string | undefined;
  /** Liveness: the process answers. */
  health: () => Promise<{ ok: boolean; body: Record<string, unknown> }>;
  /** Readiness: everything Roster needs to do its work. */
  ready?: () => Promise<{ ok: boolean; body: Record<string, unknown> }>;
  /** Believe X-Forwarded-For (TRUST_PROXY): only behind a proxy that sets it, since anyone can send it. */
  trustProxy?: boolean;
  /** PUBLIC_URL, read at each request: its path is where browsers reach the pages (see WebRequest.base). */
  publicUrl?: () => string;
};

function clientIp(req: IncomingMessage, trustProxy = false): string {
  const forwarded = req.headers['x-forwarded-for'];
  if (trustProxy && typeof forwarded === 'string') {
    // The proxy appends the address it saw: the last entry is the one a client cannot forge.
    const last = forwarded.split(',').at(-1)?.trim();
    if (last) return last;
  }
  return req.socket.remoteAddress ?? 'unknown';
}

/**
 * What a rate limit counts a client by: its IPv4 address, or the /64 block of its IPv6 address (one
 * subscriber or host usually holds a whole /64, and could otherwise send from a new address every time).
 * An IPv4 address written as IPv6 (::ffff:a.b.c.d) is the IPv4 address.
 */
export function clientNetwork(ip: string): string {
  // Some proxies write the client's port too: 203.0.113.7:51234, [2001:db8::1]:51234.
  const unported =
    /^\[([^\]]+)\](?::\d+)?$/.exec(ip)?.[1] ?? /^(\d+\.\d+\.\d+\.\d+):\d+$/.exec(ip)?.[1] ?? ip;
  const address = unported.split('%')[0] ?? unported;
  const v4 = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address)?.[1];
  if (v4) return v4;
  if (!address.includes(':')) return address;
  const [head = '', tail] = address.split('::');
  const groups = (part: string) =>
    part ? part.split(':').flatMap((g) => (g.includes('.') ? ['0', '0'] : [g])) : [];
  const front = groups(head);
  const back = tail === undefined ? [] : groups(tail);
  const all =
    tail === undefined
      ? front
      : [...front, ...Array(Math.max(0, 8 - front.length - back.length)).fill('0'), ...back];
  return `${all
    .slice(0, 4)
    .map((g) => (Number.parseInt(g, 16) || 0).toString(16))
    .join(':')}::/64`;
}

/** Far longer than any of Roster's links (a token is 43 characters), far shorter than Node's header limit. */
const URL_LIMIT = 2000;

/**
 * The request's path and query, taken as a path even when it starts with `//` (never as another host);
 * a full URL, as some proxies send, counts by its path. Refused when unreadable.
 */
function requestUrl(raw: string | undefined): URL {
  const target = raw ?? '/';
  if (target.length > URL_LIMIT) throw new BadRequest('This address is too long.');
  const absolute = /^https?:\/\//i.test(target);
  if (!absolute && !target.startsWith('/')) throw new BadRequest('This address is not one Roster serves.');
  try {
    return absolute ? new URL(target) : new URL(`http://localhost${target}`);
  } catch {
    throw new BadRequest('This address is not correctly written.');
  }
}

function badRequestPage(reason: string): string {
  return page(
    'Bad request',
    html`<h1>Roster could not read this request</h1><p>${reason}</p><p>Check the link you followed, or open the page again and send the form from there.</p>`,
  );
}

const READ_METHODS = ['GET', 'HEAD'];

function methodNotAllowed(res: ServerResponse, allow: string[]): void {
  send(res, {
    status: 405,
    headers: { allow: allow.join(', ') },
    json: { error: `Use ${allow.join(' or ')} here.` },
  });
}

/** One HTTP server for Slack's requests, the health check and the web pages. */
export function createHttpServer(deps: ServerDeps): Server {
  const server = createServer((req, res) => {
    // On every answer, Slack's and the API's included: the browser applies it to the whole host.
    for (const [name, value] of Object.entries(transportHeaders(deps.publicUrl?.()))) {
      res.setHeader(name, value);
    }
    const served: Served = {};
    handle(deps, req, res, served).catch((err) => {
      if (err instanceof BadRequest) {
        // Anyone can send junk; it says nothing about Roster's health, so no error and no stack.
        deps.logger.info({ reason: err.message, method: req.method }, 'malformed web request refused');
        if (res.headersSent) res.end();
        // The rest of a refused body is not read: the connection closes after the answer.
        else if (isApiPath(req.url)) {
          const answer = new ApiProblem(400, err.message, { headers: { connection: 'close' } }).response();
          send(res, answer);
        } else
          send(res, { status: 400, headers: { connection: 'close' }, html: badRequestPage(err.message) });
        return;
      }
      const ref = referenceId();
      // The route, never the path: /invitations/…, /join/… and /join/confirm/… carry live tokens.
      deps.logger.error({ err, ref, method: req.method, route: served.route ?? null }, 'web request failed');
      if (!res.headersSent) {
        send(res, {
          status: (err as { status?: number }).status ?? 500,
          html: page(
            'Something went wrong',
            html`<h1>Something went wrong</h1><p>Roster could not finish this request. Please try again in a moment.</p><p class="muted">Reference: ${ref}</p>`,
          ),
        });
      } else {
        res.end();
      }
    });
  });
  // Requests Node's parser refuses (a request line or headers over its limit, bytes HTTP does not allow)
  // never reach `handle`; answer them with the same page instead of Node's bare status line.
  server.on('clientError', (err: NodeJS.ErrnoException, socket) => {
    // As Node's own handler does: an answer already under way on this connection cannot get another.
    const current = (socket as { _httpMessage?: { headersSent?: boolean } })._httpMessage;
    if (err.code === 'ECONNRESET' || !socket.writable || current?.headersSent) {
      socket.destroy();
      return;
    }
    if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') {
      socket.end('HTTP/1.1 408 Request Timeout\r\nconnection: close\r\n\r\n');
      return;
    }
    deps.logger.info({ code: err.code }, 'unreadable HTTP request refused');
    const tooLong = err.code === 'HPE_HEADER_OVERFLOW';
    // The API's clients read JSON: the request line, as far as it was received, says whether it was theirs.
    const raw = (err as { rawPacket?: Buffer }).rawPacket;
    const line = /^[A-Z]+ (\S+) HTTP\//.exec(raw?.subarray(0, 4096).toString('latin1') ?? '');
    const target = line?.[1];
    const api = isApiPath(target);
    const body = api
      ? JSON.stringify(
          new ApiProblem(
            400,
            tooLong
              ? 'The request line or its headers are too long.'
              : 'The request was not well-formed HTTP.',
          ).response().json,
        )
      : badRequestPage(
          tooLong
            ? 'This address, or what the browser sent with it, is too long.'
            : 'The request was not well-formed HTTP.',
        );
    // The same headers as every other answer: written by hand, as no response object exists here.
    const headers = Object.entries({
      'content-type': api ? PROBLEM_TYPE : 'text/html; charset=utf-8',
      'content-length': String(Buffer.byteLength(body)),
      ...COMMON_HEADERS,
      ...(api ? {} : PAGE_HEADERS),
      ...transportHeaders(deps.publicUrl?.()),
      connection: 'close',
    })
      .map(([name, value]) => `${name}: ${value}\r\n`)
      .join('');
    socket.end(`HTTP/1.1 400 Bad Request\r\n${headers}\r\n${body}`);
  });
  return server;
}

const FORM_TYPE = 'application/x-www-form-urlencoded';

/** What a request turned out to be, for the log: the route it matched (`/invitations/:token`). */
type Served = { route?: string };

async function handle(
  deps: ServerDeps,
  req: IncomingMessage,
  res: ServerResponse,
  served: Served,
): Promise<void> {
  const url = requestUrl(req.url);
  const method = req.method ?? 'GET';

  if (url.pathname === '/slack/events') {
    served.route = url.pathname;
    // Slack only POSTs here; Bolt would answer anything else with an error and a stack trace in the log.
    if (method !== 'POST') {
      methodNotAllowed(res, ['POST']);
      return;
    }
    if (!deps.slackListener) {
      send(res, {
        status: 404,
        json: { error: 'Roster runs in Socket Mode; Slack requests do not come over HTTP.' },
      });
      return;
    }
    const problem = deps.slackProblem?.();
    if (problem) {
      send(res, { status: 503, headers: { 'retry-after': '30' }, json: { error: problem } });
      return;
    }
    deps.slackListener(req, res);
    return;
  }

  if (url.pathname === '/healthz' || (url.pathname === '/readyz' && deps.ready)) {
    served.route = url.pathname;
    if (!READ_METHODS.includes(method)) {
      methodNotAllowed(res, READ_METHODS);
      return;
    }
    const check = url.pathname === '/healthz' ? await deps.health() : await deps.ready!();
    send(res, { status: check.ok ? 200 : 503, json: check.body });
    return;
  }

  const found = deps.router.match(method, url.pathname);
  if ((found === null || found === 'wrong_method') && isApiPath(url.pathname)) {
    const answer =
      found === null
        ? new ApiProblem(
            404,
            url.pathname.startsWith('//')
              ? `${url.pathname} begins with a doubled slash: the base URL ends in one. Ask for ${url.pathname.replace(/^\/+/, '/')}.`
              : `${url.pathname} is not part of the API; /api/v1/openapi.json lists what is.`,
          )
        : new ApiProblem(405, 'The API only reads: use GET.', {
            headers: { allow: READ_METHODS.join(', ') },
          });
    send(res, answer.response());
    return;
  }
  if (found === null) {
    send(res, {
      status: 404,
      html: page(
        'Not found',
        html`<h1>There is nothing here</h1><p>Check the link you followed, or ask the person who sent it.</p>`,
      ),
    });
    return;
  }
  if (found === 'wrong_method') {
    // A page exists here, for other methods: say which (HTTP requires it of a 405), and answer OPTIONS,
    // as a link checker may send it, with them alone. Nothing is looked up or changed either way.
    const allow = deps.router.allowed(url.pathname).join(', ');
    if (method === 'OPTIONS') {
      send(res, { status: 204, headers: { allow } });
      return;
    }
    send(res, {
      status: 405,
      headers: { allow },
      html: page(
        'Not allowed',
        html`<h1>This page cannot be used that way</h1><p>Open the link in your browser, or ask the person who sent it.</p>`,
      ),
    });
    return;
  }
  served.route = found.route;
  const isForm = method === 'POST';
  if (isForm && req.headers['content-type']?.split(';')[0]?.trim().toLowerCase() !== FORM_TYPE) {
    throw new BadRequest('This form was not sent the way its page sends it.');
  }
  const query = parseForm(url.search.slice(1));
  const body = isForm ? await readBody(req) : '';
  const request: WebRequest = {
    method,
    path: url.pathname,
    route: found.route,
    base: basePath(deps.publicUrl?.() ?? ''),
    params: found.params,
    query,
    form: parseForm(body),
    ip: clientIp(req, deps.trustProxy),
    network: clientNetwork(clientIp(req, deps.trustProxy)),
    cookies: parseCookies(req.headers.cookie),
    em: deps.orm.em.fork(),
    log: deps.logger.child({ surface: 'web', route: found.route }),
    raw: req,
  };
  send(res, await found.handler(request));
}
