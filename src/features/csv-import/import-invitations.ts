import { randomUUID } from 'node:crypto';
import type { EntityManager } from '@mikro-orm/postgresql';
import { json, statements } from '../../db/sql.ts';
import type { IAccount } from '../accounts/account.entity.ts';
import { INVITE_JOBS } from '../invites/invitation.service.ts';
import { isPaidRole, type Role } from '../people/user.entity.ts';
import type { SeatService, SeatUsage } from '../seats/seat.service.ts';
import type { Applied, ApplyContext, BatchRow } from './import-types.ts';

type Current = {
  id: string;
  user_id: string | null;
  status: string | null;
  role: Role | null;
  outside: string | null;
};
export type Action = {
  row: BatchRow;
  userId: string | null;
  kind: 'create' | 'unlock' | 'invite';
  seat: boolean;
};

/**
 * Locks the account's seats until the transaction ends and counts them: the same account-row lock that
 * SeatService.lock takes, so a batch and any other paid addition or `/seats N` never both see the last
 * free seat. The import takes it as late in each batch as it can (see applyInvitations).
 */
export async function lockSeatsForBatch(
  tx: EntityManager,
  seats: SeatService,
  account: IAccount,
): Promise<SeatUsage> {
  await statements(tx)('select id from account where id = $1 for no key update', [account.id]);
  return seats.usage(tx, account);
}

/** What a user row asking for an invitation does, decided against the user as it is now. */
export type InvitationPlan = { actions: Action[]; profileOnly: BatchRow[]; refused: Map<string, Applied> };

/**
 * Sorts user rows that ask for an invitation by what their user is now: new (created and invited),
 * locked (unlocked and invited), not yet invited (invited), or already invited or active, which need
 * no invitation any more and come back as `profileOnly`, for the plain user update. A row to invite whose
 * email is outside the account's allowed email domains (changed since the preview) is refused.
 */
export async function planInvitations(ctx: ApplyContext, rows: BatchRow[]): Promise<InvitationPlan> {
  const current = await statements(ctx.tx)<Current>(
    `/* csv:invited-current */ select x.id, u.id as user_id, u.status, u.role,
       case when cardinality(a.allowed_email_domains) > 0
         and not lower(split_part(btrim(x.email), '@', 2)) = any(a.allowed_email_domains)
         then array_to_string(array(select '@' || d from unnest(a.allowed_email_domains) d), ', ') end as outside
     from jsonb_to_recordset($1::jsonb) as x(id bigint, email text)
     join account a on a.id = $2
     left join lateral (
       select u.id, u.status, u.role from app_user u
       where u.account_id = $2 and lower(btrim(u.email)) = lower(btrim(x.email))
       limit 1
     ) u on true`,
    [json(rows.map((r) => ({ id: r.id, email: r.data.email }))), ctx.account.id],
  );
  const byId = new Map(current.map((c) => [String(c.id), c]));
  const actions: Action[] = [];
  const profileOnly: BatchRow[] = [];
  const refused = new Map<string, Applied>();
  for (const row of rows) {
    const c = byId.get(String(row.id));
    const invites = !c?.user_id || c.status === 'locked' || c.status === 'not_invited';
    if (invites && c?.outside) {
      refused.set(String(row.id), {
        result: 'error',
        error: `email ${row.data.email} is outside the allowed email domains, so no invitation can be sent: invitations go only to ${c.outside} addresses. Import the row without send_invitation, or ask an admin to change the domains with /seats settings`,
      });
    } else if (!c?.user_id) {
      actions.push({
        row,
        userId: null,
        kind: 'create',
        seat: isPaidRole((row.data.role ?? 'employee') as Role),
      });
    } else if (c.status === 'locked') {
      actions.push({ row, userId: c.user_id, kind: 'unlock', seat: isPaidRole(c.role as Role) });
    } else if (c.status === 'not_invited') {
      actions.push({ row, userId: c.user_id, kind: 'invite', seat: false });
    } else {
      profileOnly.push(row);
    }
  }
  return { actions, profileOnly, refused };
}

let savepoints = 0;

/**
 * Invites the planned rows, set-based: new users are created invited, locked or not yet invited ones
 * are invited, each taking a paid seat where their role needs one, in file order until the seats run
 * out; the rest end in error and nothing of them is written. Their invitations, audit events and
 * delivery jobs are written in one statement each.
 *
 * The account's seat lock is what another admin's `/seats` and every paid addition wait for, so it is
 * held as briefly as possible: when the seats the batch needs look free, everything is written first
 * and the lock is taken only to count the seats again, with the batch's own users, just before the
 * commit. Should the count pass the limit (another admin took seats or lowered the limit meanwhile),
 * the writes are rolled back and the batch gives seats out under the lock, in file order.
 */
export async function applyInvitations(ctx: ApplyContext, actions: Action[]): Promise<Map<string, Applied>> {
  if (!actions.length) return new Map();
  const needed = actions.filter((x) => x.seat).length;
  if (!needed) return (await writeInvitations(ctx, actions)).applied;
  const exec = statements(ctx.tx);
  const free = ctx.seatsFree.value ?? (await ctx.seats.usage(ctx.tx, ctx.account)).free;
  if (needed <= free) {
    const name = `csv_seats_${++savepoints}`;
    await exec(`savepoint ${name}`);
    const written = await writeInvitations(ctx, actions);
    const usage = await lockSeatsForBatch(ctx.tx, ctx.seats, ctx.account);
    if (usage.used <= usage.limit) {
      await exec(`release savepoint ${name}`);
      await auditSeats(ctx, written.seated, usage.used - written.seated.length, usage.limit);
      ctx.seatsFree.value = usage.limit - usage.used;
      return written.applied;
    }
    await exec(`rollback to savepoint ${name}`);
  }
  const usage = await lockSeatsForBatch(ctx.tx, ctx.seats, ctx.account);
  const refused = new Map<string, Applied>();
  const granted: Action[] = [];
  let used = usage.used;
  for (const x of actions) {
    if (!x.seat) granted.push(x);
    else if (used < usage.limit) {
      used++;
      granted.push(x);
    } else {
      refused.set(String(x.row.id), {
        result: 'error',
        error: `no paid seat free (${used} of ${usage.limit} used), so ${x.row.data.email} was not imported; raise the limit with /seats and import the error file`,
      });
    }
  }
  const written = await writeInvitations(ctx, granted);
  await auditSeats(ctx, written.seated, usage.used, usage.limit);
  ctx.seatsFree.value = Math.max(0, usage.limit - usage.used - written.seated.length);
  for (const [id, a] of refused) written.applied.set(id, a);
  return written.applied;
}

/** One `seat.taken` audit event per seat given, numbered from the seats used before the batch. */
async function auditSeats(ctx: ApplyContext, seated: string[], usedBefore: number, limit: number) {
  if (!seated.length) return;
  await statements(ctx.tx)(
    `/* csv:seats-audit */ insert into audit_event (account_id, actor, action, subject_type, subject_id, surface, data)
     select $2::uuid, $3::text, 'seat.taken', 'seat', null, $4,
       jsonb_build_object('for', e.email, 'used', $5::int + e.n, 'limit', $6::int, 'seatAdded', false)
     from unnest($1::text[]) with ordinality as e(email, n)`,
    [seated, ctx.account.id, ctx.actor.slackUserId, ctx.actor.surface, usedBefore, limit],
  );
}

/**
 * Writes the invitations of `granted`, whose seats are settled: the users, their invitations, audit
 * events and delivery jobs. Returns each row's result and the emails of the rows that took a seat.
 */
async function writeInvitations(
  ctx: ApplyContext,
  granted: Action[],
): Promise<{ applied: Map<string, Applied>; seated: string[] }> {
  const exec = statements(ctx.tx);
  const a = ctx.account.id;
  const who = ctx.actor.slackUserId;
  const applied = new Map<string, Applied>();
  // The rows' values, read from their staged rows by id, beside the user each one is for.
  const staged = (
    userIds: string,
  ) => `(select a.id, a.user_id, r.data->>'email' as email, r.data->>'firstName' as first_name,
      r.data->>'lastName' as last_name, r.data->>'title' as title, r.data->>'phone' as phone,
      r.data->>'role' as role, (r.data->>'permissionSetId')::uuid as permission_set_id
    from unnest($1::bigint[], ${userIds}::uuid[]) as a(id, user_id) join csv_import_row r on r.id = a.id) x`;
  const rowIds = (list: Action[]) => list.map((g) => g.row.id);
  const userIds = (list: Action[]) => list.map((g) => g.userId);

  // New users, invited at once; a contact with the same email fills what the row left empty and is linked.
  // Their ids are chosen here, so each inserted user is matched to its row by id, not by email.
  const creates = granted.filter((x) => x.kind === 'create');
  const users = new Map<string, { userId: string; email: string; kind: Action['kind'] }>();
  if (creates.length) {
    const created = await exec<{ id: string; user_id: string; email: string }>(
      `/* csv:invited-insert */ with x as (select * from ${staged('$4')}),
       c as (
         select x.id, c.name, c.title, c.phone from x
         join lateral (
           select c.name, c.title, c.phone from contact c where c.account_id = $2 and c.email is not null
             and lower(btrim(c.email)) = lower(btrim(x.email))
           limit 1
         ) c on true
       ),
       ins as (
         insert into app_user (id, account_id, email, first_name, last_name, title, phone, role, status,
           permission_set_id, added_by)
         select x.user_id, $2::uuid, btrim(x.email),
           coalesce(x.first_name, nullif(split_part(btrim(c.name), ' ', 1), '')),
           coalesce(x.last_name, nullif(btrim(substr(btrim(c.name), length(split_part(btrim(c.name), ' ', 1)) + 1)), '')),
           coalesce(x.title, c.title), coalesce(x.phone, c.phone), coalesce(x.role, 'employee'), 'invited',
           (select ps.id from permission_set ps where ps.id = x.permission_set_id and ps.account_id = $2::uuid), $3::text
         from x left join c on c.id = x.id
         on conflict (account_id, lower(btrim(email))) do nothing
         returning id, email
       ),
       linked as (
         update contact c set user_id = ins.id, updated_at = now() from ins
         where c.id = (select c2.id from contact c2 where c2.account_id = $2 and c2.email is not null
           and lower(btrim(c2.email)) = lower(btrim(ins.email)) and c2.user_id is null)
       )
       select x.id, ins.id as user_id, ins.email from x join ins on ins.id = x.user_id`,
      [rowIds(creates), a, who, creates.map(() => randomUUID())],
    );
    for (const c of created) users.set(String(c.id), { userId: c.user_id, email: c.email, kind: 'create' });
  }
  // Locked and not-yet-invited users: invited, with the details the row gives. The status is checked
  // again in the update itself, so a user deactivated meanwhile is left alone.
  const existing = granted.filter((x) => x.kind !== 'create');
  if (existing.length) {
    const updated = await exec<{ id: string; user_id: string; email: string }>(
      `/* csv:invited-update */ with x as (select * from ${staged('$3')})
       update app_user u set status = 'invited', first_name = coalesce(x.first_name, u.first_name),
         last_name = coalesce(x.last_name, u.last_name), title = coalesce(x.title, u.title),
         phone = coalesce(x.phone, u.phone), updated_at = now()
       from x where u.id = x.user_id and u.account_id = $2 and u.status in ('locked', 'not_invited')
       returning x.id, u.id as user_id, u.email`,
      [rowIds(existing), a, userIds(existing)],
    );
    for (const u of updated) users.set(String(u.id), { userId: u.user_id, email: u.email, kind: 'unlock' });
  }
  const seated: string[] = [];
  for (const x of granted) {
    const user = users.get(String(x.row.id));
    if (user && x.seat) seated.push(String(x.row.data.email).trim());
    if (!user) {
      applied.set(String(x.row.id), {
        result: 'error',
        error: `${x.row.data.email} changed in Roster while the import ran, so it was not imported; import the error file again`,
      });
    }
  }
  if (!users.size) return { applied, seated };

  // Only a user who was there before the import can have a pending invitation to supersede.
  const before = [...users.values()].filter((u) => u.kind !== 'create').map((u) => u.userId);
  const superseded = before.length
    ? await exec<{ user_id: string }>(
        `update invitation set status = 'superseded', updated_at = now()
         where account_id = $1 and user_id = any($2::uuid[]) and status = 'pending' returning user_id`,
        [a, before],
      )
    : [];
  // The link's token is made when the invitation is delivered (its hash is null until then).
  // Each user's audit events (imported or updated, then the invitation created or resent) are written
  // by the same statement, in the users' order.
  const list = [...users.values()];
  const invitations = await exec<{ id: string }>(
    `/* csv:invitations */ with u as (
       select * from unnest($2::uuid[], $4::text[], $5::text[]) with ordinality as u(user_id, email, kind, n)),
     inv as (
       insert into invitation (id, account_id, user_id, token_hash, status, expires_at, invited_by)
       select gen_random_uuid(), a.id, u.user_id, null, 'pending', now() + make_interval(days => a.invitation_expiry_days), $3::text
       from u join account a on a.id = $1
       returning id, user_id),
     logged as (
       insert into audit_event (account_id, actor, action, subject_type, subject_id, surface, data)
       select $1::uuid, $3::text, e.action, e.subject_type, e.subject_id, $7, e.data
       from u join inv on inv.user_id = u.user_id
       cross join lateral (values
         (1, case when u.kind = 'create' then 'user.imported' else 'user.updated' end, 'user', u.user_id::text,
           jsonb_build_object('email', u.email, 'status', 'invited', 'importId', $8::text)),
         (2, case when u.user_id = any($6::uuid[]) then 'invitation.resent' else 'invitation.created' end,
           'invitation', inv.id::text, jsonb_build_object('email', u.email))
       ) as e(k, action, subject_type, subject_id, data)
       order by u.n, e.k)
     select inv.id from inv join u on u.user_id = inv.user_id order by u.n`,
    [
      a,
      list.map((u) => u.userId),
      who,
      list.map((u) => u.email),
      list.map((u) => u.kind),
      superseded.map((s) => s.user_id),
      ctx.actor.surface,
      ctx.importId,
    ],
  );
  await queueDeliveries(
    ctx.tx,
    ctx,
    invitations.map((i) => i.id),
  );

  for (const [id, u] of users) {
    applied.set(id, { result: u.kind === 'create' ? 'created' : 'updated', invited: true });
  }
  return { applied, seated };
}

/**
 * One delivery job for the batch's invitations, in file order, inside its transaction: the job exists
 * only if the rows do (see deliverBatch).
 */
async function queueDeliveries(tx: EntityManager, ctx: ApplyContext, invitationIds: string[]) {
  if (!invitationIds.length) return;
  await ctx.jobs.send(INVITE_JOBS.deliverBatch, { invitationIds }, { em: tx });
}
