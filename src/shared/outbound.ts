import dns, { type LookupAddress, type LookupOptions } from 'node:dns';
import dnsPromises from 'node:dns/promises';
import http, { type IncomingHttpHeaders, type IncomingMessage } from 'node:http';
import https from 'node:https';
import { BlockList, isIP } from 'node:net';

/**
 * Addresses an admin-entered URL (a webhook endpoint, a SCIM service) may not reach: this
 * machine, private networks, link-local ones (cloud metadata at 169.254.169.254) and the like. Otherwise
 * an admin of one workspace could make Roster call, and report on, services only its own network sees.
 */
const BLOCKED = new BlockList();
for (const [net, prefix] of [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['100.64.0.0', 10],
  ['127.0.0.0', 8],
  ['169.254.0.0', 16],
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['224.0.0.0', 4],
  ['240.0.0.0', 4],
] as const) {
  BLOCKED.addSubnet(net, prefix, 'ipv4');
}
for (const [net, prefix] of [
  ['::', 128],
  ['::1', 128],
  // IPv4 inside IPv6: IPv4-compatible, NAT64 (well-known and local-use prefixes) and 6to4 addresses reach
  // whatever IPv4 address they embed, private ones included.
  ['::', 96],
  ['64:ff9b::', 96],
  ['64:ff9b:1::', 48],
  ['2002::', 16],
  // IPv4-translated addresses (an IPv4-mapped one is checked as the IPv4 address it holds).
  ['::ffff:0:0:0', 96],
  // Discard-only, unique local, link-local and the deprecated site-local ranges.
  ['100::', 64],
  ['fc00::', 7],
  ['fe80::', 10],
  ['fec0::', 10],
  ['ff00::', 8],
] as const) {
  BLOCKED.addSubnet(net, prefix, 'ipv6');
}

const LOOKUP_TIMEOUT_MS = 1000;

/**
 * An admin-entered URL as Slack notices and DMs name it to the admins: scheme, host and path. A receiver's URL
 * may carry a token in its query string (or fragment, or user name), which only the endpoint itself needs. The
 * audit log, which read API tokens can list, keeps less (see `auditedUrl`): many receivers' keys are in the path.
 */
export function redactedUrl(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return '[not a URL]';
  }
  const hidden = parsed.search || parsed.hash ? '?[redacted]' : '';
  return `${parsed.protocol}//${parsed.host}${parsed.pathname}${hidden}`;
}

/**
 * A URL as shown to people who did not set it: its scheme and host, with `/…` standing for any path and query.
 * Many receivers carry their key in the path (`/hooks/catch/<id>/<key>/`), so only the host is safe to share.
 */
export function hostOnlyUrl(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return '[not a URL]';
  }
  const more = parsed.pathname !== '/' || parsed.search || parsed.hash ? '/…' : '';
  return `${parsed.protocol}//${parsed.host}${more}`;
}

function blocked(address: string): boolean {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address)?.[1];
  if (mapped) return BLOCKED.check(mapped, 'ipv4');
  const family = isIP(address);
  if (family === 0) return false;
  return BLOCKED.check(address, family === 4 ? 'ipv4' : 'ipv6');
}

/**
 * Why Roster may not call `url`, or null. With `allowPrivate` (ALLOW_PRIVATE_URLS, set by an operator whose
 * product lives on an internal network, or to try Roster on one machine) every address is allowed. A host whose
 * name does not resolve is let through: the call itself then fails and says so.
 */
export async function outboundProblem(url: string, allowPrivate: boolean): Promise<string | null> {
  if (allowPrivate) return null;
  const host = new URL(url).hostname.replace(/^\[|\]$/g, '');
  let addresses: string[];
  if (isIP(host)) addresses = [host];
  else {
    // Bounded: this runs before a form's ack, and a slow resolver would pass Slack's 3 s. A name that does
    // not resolve in time is let through here; every call checks it again.
    const resolved = await Promise.race([
      dnsPromises.lookup(host, { all: true, verbatim: true }).catch(() => null),
      new Promise<null>((r) => setTimeout(() => r(null), LOOKUP_TIMEOUT_MS).unref()),
    ]);
    if (!resolved) return null;
    addresses = resolved.map((a) => a.address);
  }
  return addresses.some(blocked) ? privateMessage(host) : null;
}

function privateMessage(host: string): string {
  return `${host} is on this machine or a private network, which Roster does not call (an operator can allow it with ALLOW_PRIVATE_URLS=true)`;
}

/**
 * Why a call failed before an answer: `PRIVATE_ADDRESS` (refused, see above), `TIMEOUT`, `TOO_LARGE` (an
 * answer over the limit read) or the system's code (ECONNREFUSED, ENOTFOUND…).
 */
export class OutboundError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.name = 'OutboundError';
    this.code = code;
  }
}

/**
 * The resolver of the connection itself. The address a call connects to is the address checked here, in
 * the same lookup: a check made apart from the connection could be answered with a public address and the
 * connection a moment later with 127.0.0.1 (DNS rebinding).
 */
function guardedLookup(
  hostname: string,
  options: LookupOptions,
  callback: (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void,
): void {
  dns.lookup(hostname, { ...options, all: true }, (err, addresses) => {
    if (err) return callback(err, []);
    if (addresses.length === 0 || addresses.some((a) => blocked(a.address))) {
      return callback(new OutboundError('PRIVATE_ADDRESS', privateMessage(hostname)), []);
    }
    if (options.all) return callback(null, addresses);
    callback(null, addresses[0]!.address, addresses[0]!.family);
  });
}

// Kept-alive connections per kind: one opened while private addresses were allowed is never reused by a
// call that may not reach them. An idle connection is closed after a few seconds (as Node's own agent
// does), before most servers close theirs and a call on it would fail.
const IDLE_MS = 4000;
const agents = {
  guarded: {
    'http:': new http.Agent({ keepAlive: true, timeout: IDLE_MS, lookup: guardedLookup }),
    'https:': new https.Agent({ keepAlive: true, timeout: IDLE_MS, lookup: guardedLookup }),
  },
  open: {
    'http:': new http.Agent({ keepAlive: true, timeout: IDLE_MS }),
    'https:': new https.Agent({ keepAlive: true, timeout: IDLE_MS }),
  },
};

/** How much of an answer nobody reads is drained before the connection is closed instead. */
const DISCARD_MAX_BYTES = 64 * 1024;

/** An answer to {@link outboundRequest}: its body is read with `text` or dropped with `discard`. */
export type OutboundAnswer = {
  status: number;
  statusText: string;
  headers: IncomingHttpHeaders;
  /** The body as UTF-8 text, read no further than `maxBytes` (more is an `OutboundError` `TOO_LARGE`). */
  text(maxBytes: number): Promise<string>;
  /** Drops the answer unread (a receiver could send any amount). */
  discard(): void;
};

/**
 * One HTTP call to an admin-entered URL. Without `allowPrivate`, the connection's own lookup refuses a host
 * that resolves to this machine or a private network, and an address in the URL is checked before any
 * connection; either way the call fails with an `OutboundError` `PRIVATE_ADDRESS` and nothing is sent.
 * Redirects are not followed (a 3xx is the answer). `timeoutMs` bounds the whole call, answer read included.
 */
export function outboundRequest(
  url: string,
  opts: {
    method: string;
    headers: Record<string, string>;
    body?: string;
    timeoutMs: number;
    allowPrivate: boolean;
  },
): Promise<OutboundAnswer> {
  const target = new URL(url);
  const host = target.hostname.replace(/^\[|\]$/g, '');
  if (target.protocol !== 'http:' && target.protocol !== 'https:') {
    return Promise.reject(new OutboundError('BAD_URL', `${target.protocol} URLs are not called`));
  }
  if (!opts.allowPrivate && blocked(host)) {
    return Promise.reject(new OutboundError('PRIVATE_ADDRESS', privateMessage(host)));
  }
  const protocol = target.protocol;
  const mod = protocol === 'https:' ? https : http;
  const agent = agents[opts.allowPrivate ? 'open' : 'guarded'][protocol];
  return new Promise<OutboundAnswer>((resolve, reject) => {
    let timedOut = false;
    const headers: Record<string, string> = { ...opts.headers };
    if (opts.body !== undefined) headers['content-length'] = String(Buffer.byteLength(opts.body));
    const req = mod.request(target, { method: opts.method, headers, agent });
    const timer = setTimeout(() => {
      timedOut = true;
      req.destroy(new OutboundError('TIMEOUT', `no answer within ${opts.timeoutMs} ms`));
    }, opts.timeoutMs);
    const failure = (err: unknown): OutboundError => {
      if (timedOut) return new OutboundError('TIMEOUT', `no answer within ${opts.timeoutMs} ms`);
      if (err instanceof OutboundError) return err;
      const e = err as NodeJS.ErrnoException;
      return new OutboundError(e.code ?? 'ERROR', e.message || String(e.code));
    };
    req.on('error', (err) => {
      clearTimeout(timer);
      reject(failure(err));
    });
    req.on('response', (res: IncomingMessage) => {
      resolve({
        status: res.statusCode ?? 0,
        statusText: res.statusMessage ?? '',
        headers: res.headers,
        async text(maxBytes) {
          const chunks: Buffer[] = [];
          let size = 0;
          try {
            for await (const chunk of res) {
              size += (chunk as Buffer).byteLength;
              if (size > maxBytes) {
                throw new OutboundError(
                  'TOO_LARGE',
                  `the answer was larger than ${maxBytes / 1024 / 1024} MB`,
                );
              }
              chunks.push(chunk as Buffer);
            }
          } catch (err) {
            req.destroy();
            throw failure(err);
          } finally {
            clearTimeout(timer);
          }
          return Buffer.concat(chunks).toString('utf8');
        },
        discard() {
          // Drained and dropped, so the connection can serve the next call; a long answer is cut off.
          let size = 0;
          res.on('data', (chunk: Buffer) => {
            size += chunk.byteLength;
            if (size > DISCARD_MAX_BYTES) res.destroy();
          });
          res.on('error', () => undefined);
          res.on('close', () => clearTimeout(timer));
          res.resume();
        },
      });
    });
    req.end(opts.body);
  });
}
