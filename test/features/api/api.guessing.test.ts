/**
 * Requests with missing or unknown tokens are limited per client address: past FAILED_AUTH_LIMIT within a
 * minute the address's failing requests wait, while its working tokens and other addresses go on as
 * before. Every answer is checked against the served OpenAPI document.
 */
import { FAILED_AUTH_LIMIT } from '../../../src/features/api/web/routes.ts';
import { clientNetwork } from '../../../src/web/server.ts';
import { startTestApp, type TestApp } from '../../support/app.ts';
import { ApiClient, tokenFor } from './support.ts';

let t: TestApp;
let api: ApiClient;
let token: string;

beforeAll(async () => {
  // Behind a proxy that names the client in X-Forwarded-For, as in most deployments.
  t = await startTestApp({ env: { TRUST_PROXY: 'true' } });
  api = new ApiClient(t);
  token = await tokenFor(t, await t.account(), 'Reader');
});
afterAll(() => t.stop());

const from = (ip: string, bearer?: string) =>
  api.get('/api/v1/people', { token: bearer, query: { limit: '1' }, headers: { 'x-forwarded-for': ip } });

it('makes an address that keeps sending unknown tokens wait, with Retry-After, and no other', async () => {
  const guesser = '203.0.113.7';
  for (let i = 0; i < FAILED_AUTH_LIMIT; i++) {
    const res = await from(guesser, `roster_${String(i).padStart(43, 'g')}`);
    expect(res.status).toBe(401);
  }
  const limited = await from(guesser, `roster_${'h'.repeat(43)}`);
  expect(limited.status).toBe(429);
  expect(limited.headers.get('content-type')).toBe('application/problem+json');
  const wait = Number(limited.headers.get('retry-after'));
  expect(wait).toBeGreaterThanOrEqual(1);
  expect(wait).toBeLessThanOrEqual(60);
  expect(limited.body.detail).toContain(`Try again in ${wait} s`);
  expect((await from(guesser)).status).toBe(429);
  // Other addresses are not affected, with or without a working token.
  expect((await from('198.51.100.20', token)).status).toBe(200);
  expect((await from('198.51.100.21', `roster_${'h'.repeat(43)}`)).status).toBe(401);
});

it('still answers a working token from an address whose other requests are refused for unknown tokens', async () => {
  // One integration on a host keeps retrying its revoked token; another on the same host has a working one.
  const host = '203.0.113.9';
  const stale = `roster_${'s'.repeat(43)}`;
  for (let i = 0; i < FAILED_AUTH_LIMIT; i++) expect((await from(host, stale)).status).toBe(401);
  expect((await from(host, stale)).status).toBe(429);

  const working = await from(host, token);
  expect(working.status).toBe(200);
  expect(working.headers.get('retry-after')).toBeNull();
  expect(Array.isArray(working.body.data)).toBe(true);
  // The working token's request did not lift the limit for the stale one, nor for no token at all.
  const again = await from(host, stale);
  expect(again.status).toBe(429);
  expect(Number(again.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
  expect((await from(host)).status).toBe(429);
  expect((await from(host, token)).status).toBe(200);
});

it('counts an IPv6 client by its /64, so a new address for every guess does not escape the limit', async () => {
  const prefix = '2001:db8:77:1';
  for (let i = 0; i < FAILED_AUTH_LIMIT; i++) {
    const res = await from(`${prefix}::${(i + 1).toString(16)}`, `roster_${String(i).padStart(43, 'k')}`);
    expect(res.status).toBe(401);
  }
  expect((await from(`${prefix}:ffff:ffff:ffff:ffff`, `roster_${'k'.repeat(43)}`)).status).toBe(429);
  // The next /64 is someone else.
  expect((await from('2001:db8:77:2::1', token)).status).toBe(200);
});

it.each([
  ['203.0.113.7', '203.0.113.7'],
  ['::ffff:203.0.113.7', '203.0.113.7'],
  ['2001:db8:77:1::5', '2001:db8:77:1::/64'],
  ['2001:0db8:0077:0001:aaaa:bbbb:cccc:dddd', '2001:db8:77:1::/64'],
  ['2001:db8::1', '2001:db8:0:0::/64'],
  ['::1', '0:0:0:0::/64'],
  ['fe80::1%eth0', 'fe80:0:0:0::/64'],
  ['203.0.113.7:51234', '203.0.113.7'],
  ['[2001:db8:77:1::5]:51234', '2001:db8:77:1::/64'],
  ['[2001:db8:77:1::5]', '2001:db8:77:1::/64'],
])('counts %s as %s', (ip, network) => {
  expect(clientNetwork(ip)).toBe(network);
});
