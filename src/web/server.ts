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
import { parseCookies, type Router, readBody, send, type WebRequest } from './router.ts';

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
  return createServer((req, res) => {
    handle(deps, req, res).catch((err) => {
      const ref = referenceId();
      deps.logger.error({ err, ref, path: req.url?.split('?')[0] }, 'web request failed');
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
}

async function handle(deps: ServerDeps, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://localhost');
  const method = req.method ?? 'GET';

  if (url.pathname === '/slack/events') {
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
    if (!READ_METHODS.includes(method)) {
      methodNotAllowed(res, READ_METHODS);
      return;
    }
    const check = url.pathname === '/healthz' ? await deps.health() : await deps.ready!();
    send(res, { status: check.ok ? 200 : 503, json: check.body });
    return;
  }

  const found = deps.router.match(method, url.pathname);
  if (found === null || found === 'wrong_method') {
    send(res, {
      status: found === null ? 404 : 405,
      html: page(
        'Not found',
        html`<h1>There is nothing here</h1><p>Check the link you followed, or ask the person who sent it.</p>`,
      ),
    });
    return;
  }
  const isForm = method === 'POST';
  const body = isForm ? await readBody(req) : '';
  const request: WebRequest = {
    method,
    path: url.pathname,
    params: found.params,
    query: url.searchParams,
    form: new URLSearchParams(body),
    ip: clientIp(req, deps.trustProxy),
    cookies: parseCookies(req.headers.cookie),
    em: deps.orm.em.fork(),
    log: deps.logger.child({ surface: 'web', route: url.pathname.split('/')[1] }),
    raw: req,
  };
  send(res, await found.handler(request));
}
