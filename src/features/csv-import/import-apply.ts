import { statements } from '../../db/sql.ts';
import { referenceId } from '../../shared/ids.ts';
import { FIELD_MAX } from '../people/field-limits.ts';
import { applyInvitations, planInvitations } from './import-invitations.ts';
import type { Applied, ApplyContext, BatchRow } from './import-types.ts';

/**
 * Postgres errors that one row's values can cause (data exceptions, constraint violations, a trigger
 * raising): the batch is retried in halves to find the row, which alone is reported in error. Anything
 * else (a lost connection, a deadlock, a bug) fails the batch, which the job retries.
 */
function isRowFault(err: unknown): boolean {
  const code = (err as { code?: unknown })?.code;
  return typeof code === 'string' && /^(22|23|P0)/.test(code);
}

/**
 * What the database's refusal of one row means, in words for the admin who fixes the file: the database's
 * own message (constraint names, SQL types) stays in the log, under the reference the row gives.
 */
export function refusalInWords(err: unknown): string {
  const code = String((err as { code?: unknown })?.code ?? '');
  if (code === '22001') return 'a value is longer than Roster can keep';
  if (code.startsWith('22')) return 'a value is not in a form Roster can keep';
  if (code === '23505') return 'it clashes with a person or contact already in Roster';
  if (code === '23502') return 'a value Roster needs is missing';
  if (code === '23503') return 'it refers to something that is no longer in Roster';
  return 'Roster refused one of its values';
}

let savepoints = 0;

// The statements read each row's values from its staged row (csv_import_row) by id: the batch reads
// only the ids and what sorts them into statements, so no row's values cross to Node and back.

/** The ids of `rows`, as one bigint[] parameter. */
const ids = (rows: BatchRow[]) => rows.map((r) => r.id);

/** A contact row's values, from its staged row. */
const CONTACT_ROWS = `select r.id, r.data->>'name' as name, r.data->>'email' as email, r.data->>'phone' as phone,
    r.data->>'company' as company, r.data->>'title' as title, r.data->>'notes' as notes
  from csv_import_row r where r.id = any($1::bigint[])`;

// Every statement below reaches existing people and contacts through lateral or correlated lookups on
// their (account, email) and (account, name, company) indexes: during a large import the planner's
// statistics lag behind the tables, and a hash join would read every person of the account per batch.

/**
 * Applies a batch of staged rows inside `tx`, set-based. A statement that fails because of a row's
 * values is rolled back to a savepoint and the batch applied again in halves, down to the single row at
 * fault, which is reported as that row's error while every other row is written.
 */
export async function applyRows(ctx: ApplyContext, rows: BatchRow[]): Promise<Map<string, Applied>> {
  const exec = statements(ctx.tx);
  const name = `csv_rows_${++savepoints}`;
  await exec(`savepoint ${name}`);
  try {
    const results = await applyAll(ctx, rows);
    await exec(`release savepoint ${name}`);
    return results;
  } catch (err) {
    await exec(`rollback to savepoint ${name}`);
    if (!isRowFault(err)) throw err;
    const [only] = rows;
    if (only && rows.length === 1) {
      const ref = referenceId();
      ctx.log?.warn(
        { err, ref, importId: ctx.importId, line: only.line },
        'the database refused a row of a CSV import',
      );
      const error = `could not be written: ${refusalInWords(err)} (reference ${ref}). Check the row's values and import the error file again`;
      return new Map([[String(only.id), { result: 'error', error }]]);
    }
    const half = Math.ceil(rows.length / 2);
    const first = await applyRows(ctx, rows.slice(0, half));
    for (const [id, a] of await applyRows(ctx, rows.slice(half))) first.set(id, a);
    return first;
  }
}

async function applyAll(ctx: ApplyContext, rows: BatchRow[]): Promise<Map<string, Applied>> {
  const results = new Map<string, Applied>();
  const users = rows.filter((r) => r.kind === 'user' && !r.data.sendInvitation);
  const withEmail = rows.filter((r) => r.kind === 'contact' && r.data.email);
  const withoutEmail = rows.filter((r) => r.kind === 'contact' && !r.data.email);
  const invited = rows.filter((r) => r.kind === 'user' && r.data.sendInvitation);
  // Invited rows go last: they lock the account's seats, which stay locked only until this batch commits.
  const set = (m: Map<string, Applied>) => {
    for (const [id, a] of m) results.set(id, a);
  };
  if (withEmail.length) set(await applyContacts(ctx, withEmail));
  if (withoutEmail.length) set(await applyNamedContacts(ctx, withoutEmail));
  const plan = invited.length
    ? await planInvitations(ctx, invited)
    : { actions: [], profileOnly: [], refused: new Map<string, Applied>() };
  set(plan.refused);
  if (users.length || plan.profileOnly.length) set(await applyUsers(ctx, [...users, ...plan.profileOnly]));
  if (plan.actions.length) set(await applyInvitations(ctx, plan.actions));
  // A row refused (no paid seat, the allowed domains, changed meanwhile) writes nothing, its details included.
  const detailed = rows.filter(
    (r) => r.kind === 'user' && r.data.detailed && results.get(r.id)?.result !== 'error',
  );
  if (detailed.length) {
    for (const id of await applyUserDetails(ctx, detailed)) {
      if (results.get(id)?.result === 'unchanged')
        results.set(id, { ...results.get(id)!, result: 'updated' });
    }
  }
  return results;
}

/**
 * A user row's company and notes, kept on the user's linked contact details as converting a contact
 * keeps them: the first linked contact is updated, or one is made (without an email of its own, since
 * the user's is their login; named as the person is, cut to what a contact's name holds, as the person
 * card does: the names stay whole on the user). Returns the rows whose details changed.
 */
async function applyUserDetails(ctx: ApplyContext, rows: BatchRow[]): Promise<string[]> {
  const changed = await statements(ctx.tx)<{ id: string }>(
    `/* csv:user-details */ with x as (
       select r.id, r.data->>'email' as email,
         concat_ws(' ', nullif(r.data->>'firstName', ''), nullif(r.data->>'lastName', '')) as name,
         r.data->>'company' as company, r.data->>'notes' as notes
       from csv_import_row r where r.id = any($1::bigint[])),
     u as (
       select x.*, u.id as user_id, c.id as contact_id, c.company as old_company, c.notes as old_notes from x
       join lateral (select id from app_user where account_id = $2 and lower(btrim(email)) = lower(btrim(x.email))) u on true
       left join lateral (
         select id, company, notes from contact where account_id = $2 and user_id = u.id order by created_at limit 1
       ) c on true),
     upd as (
       update contact c set company = coalesce(u.company, c.company), notes = coalesce(u.notes, c.notes),
         updated_at = now()
       from u where c.id = u.contact_id
         and ((u.company is not null and u.company is distinct from u.old_company)
           or (u.notes is not null and u.notes is distinct from u.old_notes))
       returning u.id),
     ins as (
       insert into contact (id, account_id, name, email, company, notes, user_id, added_by)
       select gen_random_uuid(), $2::uuid, left(coalesce(nullif(btrim(u.name), ''), btrim(u.email)), ${FIELD_MAX.name}), null, u.company,
         u.notes, u.user_id, $3::text
       from u where u.contact_id is null
       returning user_id)
     select id from upd
     union all select u.id from u join ins on ins.user_id = u.user_id`,
    [ids(rows), ctx.account.id, ctx.actor.slackUserId],
  );
  return changed.map((c) => String(c.id));
}

function outcomes(rows: BatchRow[], created: { id: string }[], updated: { id: string }[]) {
  const out = new Map<string, Applied>(rows.map((r) => [String(r.id), { result: 'unchanged' }]));
  for (const c of created) out.set(String(c.id), { result: 'created' });
  for (const u of updated) out.set(String(u.id), { result: 'updated' });
  return out;
}

/** Users without an invitation, set-based: created locked (no login, no seat), or their details updated. */
async function applyUsers(ctx: ApplyContext, rows: BatchRow[]): Promise<Map<string, Applied>> {
  const exec = statements(ctx.tx);
  const x = `(select r.id, r.data->>'email' as email, r.data->>'firstName' as first_name,
      r.data->>'lastName' as last_name, r.data->>'title' as title, r.data->>'phone' as phone,
      r.data->>'role' as role, (r.data->>'permissionSetId')::uuid as permission_set_id,
      r.data->>'loginHint' as login_hint
    from csv_import_row r where r.id = any($1::bigint[])) x`;
  const a = ctx.account.id;
  const who = ctx.actor.slackUserId;
  const created = await exec<{ id: string }>(
    `/* csv:users-insert */ with x as (select * from ${x}),
     ins as (
       insert into app_user (id, account_id, email, first_name, last_name, title, phone, role, status,
         permission_set_id, added_by, login_missing, login_hint)
       select gen_random_uuid(), $2::uuid, x.email, x.first_name, x.last_name, x.title, x.phone,
         coalesce(x.role, 'employee'), 'locked',
         (select ps.id from permission_set ps where ps.id = x.permission_set_id and ps.account_id = $2::uuid), $3::text,
         x.login_hint is not null, x.login_hint
       from x
       on conflict (account_id, lower(btrim(email))) do nothing
       returning id, email
     ),
     linked as (
       update contact c set user_id = ins.id, updated_at = now() from ins
       where c.id = (select c2.id from contact c2 where c2.account_id = $2 and c2.email is not null
         and lower(btrim(c2.email)) = lower(btrim(ins.email)) and c2.user_id is null)
     ),
     logged as (
       insert into audit_event (account_id, actor, action, subject_type, subject_id, surface, data)
       select $2::uuid, $3::text, 'user.imported', 'user', ins.id::text, 'slack',
         jsonb_build_object('email', ins.email, 'status', 'locked', 'importId', $4::text)
       from ins
     )
     select x.id from x join ins on lower(btrim(ins.email)) = lower(btrim(x.email))`,
    [ids(rows), a, who, ctx.importId],
  );
  // Rows just created hold what the file says; only the others can need an update.
  const fresh = new Set(created.map((c) => String(c.id)));
  const others = rows.filter((r) => !fresh.has(String(r.id)));
  if (!others.length) return outcomes(rows, created, []);
  const updated = await exec<{ id: string }>(
    `/* csv:users-update */ with x as (select * from ${x}),
     upd as (
       update app_user u set first_name = coalesce(x.first_name, u.first_name),
         last_name = coalesce(x.last_name, u.last_name), title = coalesce(x.title, u.title),
         phone = coalesce(x.phone, u.phone), updated_at = now()
       from x
       where u.id = (select u2.id from app_user u2 where u2.account_id = $2
           and lower(btrim(u2.email)) = lower(btrim(x.email)))
         and ((x.first_name is not null and x.first_name is distinct from u.first_name)
           or (x.last_name is not null and x.last_name is distinct from u.last_name)
           or (x.title is not null and x.title is distinct from u.title)
           or (x.phone is not null and x.phone is distinct from u.phone))
       returning x.id, u.id as user_id, u.email
     ),
     logged as (
       insert into audit_event (account_id, actor, action, subject_type, subject_id, surface, data)
       select $2::uuid, $3::text, 'user.updated', 'user', upd.user_id::text, 'slack',
         jsonb_build_object('email', upd.email, 'importId', $4::text)
       from upd
     )
     select id from upd`,
    [ids(others), a, who, ctx.importId],
  );
  return outcomes(rows, created, updated);
}

/** Contacts with an email, set-based: created, or updated by email. */
async function applyContacts(ctx: ApplyContext, rows: BatchRow[]): Promise<Map<string, Applied>> {
  const changed = await statements(ctx.tx)<{ id: string; inserted: boolean }>(
    `/* csv:contacts */ with x as (${CONTACT_ROWS}),
     up as (
       insert into contact as c (id, account_id, name, email, phone, company, title, notes, added_by)
       select gen_random_uuid(), $2::uuid, x.name, x.email, x.phone, x.company, x.title, x.notes, $3::text from x
       on conflict (account_id, lower(btrim(email))) where email is not null do update set
         name = excluded.name, phone = coalesce(excluded.phone, c.phone),
         company = coalesce(excluded.company, c.company), title = coalesce(excluded.title, c.title),
         notes = coalesce(excluded.notes, c.notes), updated_at = now()
       where excluded.name is distinct from c.name
         or (excluded.phone is not null and excluded.phone is distinct from c.phone)
         or (excluded.company is not null and excluded.company is distinct from c.company)
         or (excluded.title is not null and excluded.title is distinct from c.title)
         or (excluded.notes is not null and excluded.notes is distinct from c.notes)
       returning c.id, c.email, (xmax = 0) as inserted
     ),
     logged as (
       insert into audit_event (account_id, actor, action, subject_type, subject_id, surface, data)
       select $2::uuid, $3::text, case when up.inserted then 'contact.imported' else 'contact.updated' end, 'contact',
         up.id::text, 'slack', jsonb_build_object('email', up.email, 'importId', $4::text)
       from up
     )
     select x.id, up.inserted from x join up on lower(btrim(up.email)) = lower(btrim(x.email))`,
    [ids(rows), ctx.account.id, ctx.actor.slackUserId, ctx.importId],
  );
  return outcomes(
    rows,
    changed.filter((c) => c.inserted),
    changed.filter((c) => !c.inserted),
  );
}

/** Contacts without an email, set-based: matched on name and company, so a second import finds them. */
async function applyNamedContacts(ctx: ApplyContext, rows: BatchRow[]): Promise<Map<string, Applied>> {
  const changed = await statements(ctx.tx)<{ id: string; what: 'created' | 'updated' }>(
    `/* csv:named-contacts */ with x as (${CONTACT_ROWS}),
     m as (
       select x.*, c.id as cid from x
       left join lateral (
         select c.id from contact c where c.account_id = $2 and c.email is null and c.user_id is null
           and lower(btrim(c.name)) = lower(btrim(x.name))
           and lower(btrim(coalesce(c.company, ''))) = lower(btrim(coalesce(x.company, '')))
         order by c.created_at, c.id limit 1
       ) c on true
     ),
     upd as (
       update contact c set name = m.name, company = coalesce(m.company, c.company),
         phone = coalesce(m.phone, c.phone), title = coalesce(m.title, c.title),
         notes = coalesce(m.notes, c.notes), updated_at = now()
       from m
       where c.id = m.cid and (m.name is distinct from c.name
         or (m.company is not null and m.company is distinct from c.company)
         or (m.phone is not null and m.phone is distinct from c.phone)
         or (m.title is not null and m.title is distinct from c.title)
         or (m.notes is not null and m.notes is distinct from c.notes))
       returning m.id, c.id as contact_id
     ),
     ins as (
       insert into contact (id, account_id, name, email, phone, company, title, notes, added_by)
       select gen_random_uuid(), $2::uuid, m.name, null, m.phone, m.company, m.title, m.notes, $3::text from m
       where m.cid is null
       returning id
     ),
     logged as (
       insert into audit_event (account_id, actor, action, subject_type, subject_id, surface, data)
       select $2::uuid, $3::text, 'contact.imported', 'contact', ins.id::text, 'slack', jsonb_build_object('importId', $4::text)
       from ins
       union all
       select $2::uuid, $3::text, 'contact.updated', 'contact', upd.contact_id::text, 'slack', jsonb_build_object('importId', $4::text)
       from upd
     )
     select id, 'updated' as what from upd
     union all
     select m.id, 'created' from m where m.cid is null`,
    [ids(rows), ctx.account.id, ctx.actor.slackUserId, ctx.importId],
  );
  return outcomes(
    rows,
    changed.filter((c) => c.what === 'created'),
    changed.filter((c) => c.what === 'updated'),
  );
}
