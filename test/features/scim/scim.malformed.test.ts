import http from 'node:http';
import { query, sql } from '../../../src/db/sql.ts';
import { ScimClient } from '../../../src/features/scim/scim.client.ts';
import { drain } from '../../../src/features/scim/scim.sync.ts';
import { connectedService } from './service.ts';

// A service that answers 200 with JSON that is not the shape SCIM gives it: each person's push fails,
// recorded with what was wrong, and nobody is left leased for the next runs to skip.
let service: Awaited<ReturnType<typeof connectedService>>;
let body = '';
const bad = http.createServer((req, res) => {
  res.writeHead(200, { 'content-type': 'application/scim+json' });
  res.end(req.method === 'GET' ? body : '{}');
});
let url = '';

beforeAll(async () => {
  service = await connectedService('T_SCIM_MALFORMED');
  await new Promise<void>((r) => bad.listen(0, '127.0.0.1', r));
  url = `http://127.0.0.1:${(bad.address() as { port: number }).port}/scim/v2`;
  await query(
    service.orm.em.fork(),
    sql`update scim_connection set base_url = ${url} where account_id = ${service.accountId}`,
  );
});
afterAll(async () => {
  bad.close();
  await service.close();
});

const client = () => new ScimClient(url, 'tok', { allowPrivate: true });
const syncRow = async (email: string) =>
  (
    await query<{ state: string; last_error: string | null; leased: boolean }>(
      service.orm.em.fork(),
      sql`select s.state, s.last_error, coalesce(s.leased_until > now(), false) as leased
        from scim_sync s join app_user u on u.id = s.user_id where u.email = ${email}`,
    )
  )[0];

it.each([
  ['null', 'null'],
  ['an empty body', ''],
  ['Resources as an object', '{"totalResults":1,"Resources":{"userName":"x"}}'],
])('records a push as failed when the list lookup answers %s', async (_what, answer) => {
  body = answer;
  const email = `dee.${_what.replace(/\W+/g, '-')}@acme.test`;
  await query(
    service.orm.em.fork(),
    sql`insert into app_user (id, account_id, email, first_name, role, status)
      values (gen_random_uuid(), ${service.accountId}, ${email}, 'Dee', 'client', 'active')`,
  );
  const result = await drain(service.orm.em.fork(), await service.connection(), client());
  expect(result.synced).toBe(0);
  expect(result.failed).toHaveLength(1);
  const row = await syncRow(email);
  expect(row).toMatchObject({ leased: false });
  expect(row?.last_error).toMatch(/answered with something that is not a SCIM list of users|not JSON/);
});

it('passes over list entries that are not users or whose userName is not text, linking no one by them', async () => {
  body = '{"totalResults":3,"Resources":[null,{"id":"r1","userName":42},{"id":7,"emails":"x"}]}';
  await query(
    service.orm.em.fork(),
    sql`insert into app_user (id, account_id, email, first_name, role, status)
      values (gen_random_uuid(), ${service.accountId}, 'eve.odd@acme.test', 'Eve', 'client', 'active')`,
  );
  // The create's answer ({}) holds no id and the list never names her: her push fails for now, recorded.
  await drain(service.orm.em.fork(), await service.connection(), client());
  const row = await syncRow('eve.odd@acme.test');
  expect(row?.leased).toBe(false);
  expect(row?.last_error).toContain("POST /Users answered without the new user's id");
});
