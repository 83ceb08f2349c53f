import { lookup } from 'node:dns/promises';
import { BlockList, isIP } from 'node:net';

/**
 * Addresses an admin-entered URL (a webhook endpoint, a SCIM service) may not reach in production: this
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
  ['fc00::', 7],
  ['fe80::', 10],
  ['ff00::', 8],
] as const) {
  BLOCKED.addSubnet(net, prefix, 'ipv6');
}

const LOOKUP_TIMEOUT_MS = 1000;

function blocked(address: string): boolean {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address)?.[1];
  if (mapped) return BLOCKED.check(mapped, 'ipv4');
  const family = isIP(address);
  if (family === 0) return false;
  return BLOCKED.check(address, family === 4 ? 'ipv4' : 'ipv6');
}

/**
 * Why Roster may not call `url`, or null. With `allowPrivate` (outside production, or ALLOW_PRIVATE_URLS
 * set by an operator whose product lives on an internal network) every address is allowed. A host whose
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
      lookup(host, { all: true, verbatim: true }).catch(() => null),
      new Promise<null>((r) => setTimeout(() => r(null), LOOKUP_TIMEOUT_MS).unref()),
    ]);
    if (!resolved) return null;
    addresses = resolved.map((a) => a.address);
  }
  return addresses.some(blocked)
    ? `${host} is on this machine or a private network, which Roster does not call (an operator can allow it with ALLOW_PRIVATE_URLS=true)`
    : null;
}
