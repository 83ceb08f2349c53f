import { query, sql } from '../../../src/db/sql.ts';
import { startTestApp, type TestApp } from '../../support/app.ts';
import { type ScimServer, startScimServer } from '../../support/scim-server.ts';
import { textOf } from '../../support/views.ts';
import { connect, dmTo, remoteUser } from './support.ts';

let t: TestApp;
let server: ScimServer;

beforeAll(async () => {
  server = await startScimServer();
  t = await startTestApp({ seatLimit: 10 });
  const form = await connect(t, server);
  expect(textOf(form)).toContain('Connected.');
  await dmTo(t, 'UADMIN', /Sync with .* done/);
});
afterAll(async () => {
  await t.stop();
  await server.close();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('a 429 whose Retry-After asks for no wait', () => {
  it.each([
    ['0 seconds', 0],
    ['a date already past (the service’s clock behind)', new Date(Date.now() - 60_000).toUTCString()],
  ])(
    'pauses the sync anyway rather than calling again at once: %s',
    async (_what, retryAfter) => {
      const account = await t.account();
      const email = `pace-${typeof retryAfter}@acme.test`;
      const before = server.calls.length;
      server.fail(429, { times: 1000, retryAfter: retryAfter as unknown as number });
      await query(
        t.em(),
        sql`insert into app_user (id, account_id, email, first_name, role, status)
        values (gen_random_uuid(), ${account.id}, ${email}, 'Pace', 'client', 'active')`,
      );
      await sleep(2500);
      const limited = server.calls.slice(before).filter((c) => c.status === 429).length;
      // A second between calls at the least: a few, not a call as fast as Roster can make them.
      expect(limited).toBeGreaterThan(0);
      expect(limited).toBeLessThanOrEqual(4);
      server.reset();
      await remoteUser(server, email);
    },
    30_000,
  );
});
