import { randomUUID } from 'node:crypto';
import type { EntityManager } from '@mikro-orm/postgresql';
import type { WebClient } from '@slack/web-api';
import { json, query, sql, statements } from '../../db/sql.ts';
import { HandedBack } from '../../shared/jobs.ts';
import type { Logger } from '../../shared/logger.ts';
import { slackErrorCode } from '../../slack/errors.ts';
import type { IAccount } from '../accounts/account.entity.ts';

/** A Slack user as Roster keeps them: enough to decide who is an admin and who is in the workspace. */
export type Member = {
  slackUserId: string;
  email: string | null;
  name: string | null;
  title: string | null;
  phone: string | null;
  isAdmin: boolean;
  isOwner: boolean;
  isBot: boolean;
  deleted: boolean;
  /** Their own team, and every team of theirs on an Enterprise Grid. */
  teamIds: string[];
  /**
   * Slack's `is_restricted`: a guest (multi-channel, or single-channel with `isUltraRestricted` too).
   * Null when not known yet: a member the mirror recorded before it kept these flags.
   */
  isRestricted: boolean | null;
  /** Slack's `is_ultra_restricted`: a single-channel guest. Null when not known yet. */
  isUltraRestricted: boolean | null;
};

/** The two kinds of Slack guest: neither is a full member of the workspace, and neither is an admin. */
export type GuestKind = 'multi_channel' | 'single_channel';

/** How Roster says each kind of guest to people. */
export const GUEST_LABEL: Record<GuestKind, string> = {
  multi_channel: 'a multi-channel guest',
  single_channel: 'a single-channel guest',
};

/**
 * Whether `member` is a guest of their workspace in Slack, and which kind; null for a full member, and
 * `unknown` while the mirror has not learnt the flags (ask Slack: users.info).
 */
export function guestKind(
  member: Pick<Member, 'isRestricted' | 'isUltraRestricted'>,
): GuestKind | null | 'unknown' {
  if (member.isUltraRestricted) return 'single_channel';
  if (member.isRestricted) return 'multi_channel';
  if (member.isRestricted === null || member.isUltraRestricted === null) return 'unknown';
  return null;
}

/** users.list's page size: Slack serves at most 1,000 a page (Tier 2, about 20 pages a minute). */
export const PAGE_SIZE = 1000;
/** A directory older than this is synced again at start. */
export const STALE_MS = 24 * 3_600_000;
/**
 * How long a sync's claim on its workspace lasts unless renewed (every {@link LEASE_RENEW_MS} while it
 * runs): when the instance running it dies, another sync may take over this long after its last renewal.
 */
export const LEASE_MS = 90_000;
export const LEASE_RENEW_MS = 20_000;

/**
 * What a sync did: the pages and members it read, or `running` when another sync holds the workspace, with
 * how long that one's lease has left (a holder that died leaves it to lapse).
 */
export type SyncResult =
  | { pages: number; members: number; running?: false }
  | { running: true; leaseLeftMs: number };

export type SlackUser = {
  id?: string;
  team_id?: string;
  deleted?: boolean;
  is_bot?: boolean;
  is_admin?: boolean;
  is_owner?: boolean;
  is_primary_owner?: boolean;
  is_restricted?: boolean;
  is_ultra_restricted?: boolean;
  real_name?: string;
  name?: string;
  profile?: { email?: string; real_name?: string; title?: string; phone?: string };
  enterprise_user?: { teams?: string[] };
};

/**
 * Of a Slack user object, only what {@link memberOf} reads (and the mirror keeps): what a queued event keeps
 * of the person, without the rest of their profile (names, status, photos, custom fields).
 */
export function mirroredFields(u: SlackUser): SlackUser {
  const { id, team_id, deleted, is_bot, is_admin, is_owner, is_primary_owner } = u;
  const { is_restricted, is_ultra_restricted, real_name, name } = u;
  const p = u.profile;
  return {
    id,
    team_id,
    deleted,
    is_bot,
    is_admin,
    is_owner,
    is_primary_owner,
    is_restricted,
    is_ultra_restricted,
    real_name,
    name,
    ...(p ? { profile: { email: p.email, real_name: p.real_name, title: p.title, phone: p.phone } } : {}),
    ...(u.enterprise_user ? { enterprise_user: { teams: u.enterprise_user.teams } } : {}),
  };
}

/** A Slack user object (users.list, users.info, team_join, user_change) as a member row. */
export function memberOf(u: SlackUser): Member | null {
  if (!u.id) return null;
  return {
    slackUserId: u.id,
    email: u.profile?.email?.trim() || null,
    name: u.real_name || u.profile?.real_name || u.name || null,
    title: u.profile?.title || null,
    phone: u.profile?.phone || null,
    isAdmin: Boolean(u.is_admin),
    isOwner: Boolean(u.is_owner || u.is_primary_owner),
    isBot: Boolean(u.is_bot),
    deleted: Boolean(u.deleted),
    teamIds: [u.team_id, ...(u.enterprise_user?.teams ?? [])].filter((t): t is string => Boolean(t)),
    // Slack names both flags on every user object; one that does not is "not known", never "not a guest".
    isRestricted: typeof u.is_restricted === 'boolean' ? u.is_restricted : null,
    isUltraRestricted: typeof u.is_ultra_restricted === 'boolean' ? u.is_ultra_restricted : null,
  };
}

/**
 * Whether `member` is of the workspace `teamId`: their own team or, on an Enterprise Grid, one of their
 * teams. A member Slack names no team for counts as one. Someone of another organisation, met through a
 * Slack Connect channel, is not.
 */
export function isOfWorkspace(member: Pick<Member, 'teamIds'>, teamId: string): boolean {
  return member.teamIds.length === 0 || member.teamIds.includes(teamId);
}

/**
 * As of when what Slack said about someone was true. `eventTime`: when it happened in Slack (an event's
 * `event_time`, whole seconds); `recordedAt`: when Roster recorded the event, or asked for a sync's page,
 * on the database's clock. Without `eventTime` (a sync, which says how things are now), `recordedAt` stands
 * for both, counted in whole seconds as Slack counts.
 */
export type AsOf = { eventTime?: Date | null; recordedAt: Date };

/**
 * The workspace's directory in Postgres: who is a member, who is an admin, by Slack id and by email.
 * Filled by a paced users.list sync that resumes from its cursor after a restart, and kept fresh by
 * Slack's team_join and user_change events, so no request ever walks the directory.
 */
export class DirectoryService {
  /**
   * Writes members as Slack describes them; one statement for a whole page. `asOf` is when what Slack said
   * was true (now, without it). Each row keeps that time (`known_at`, in whole seconds, and `recorded_at`
   * to order two of the same second), and a member the mirror knows as of a later time is kept as it is:
   * that is newer news, however late this write runs. A guest flag Slack did not name keeps what the
   * mirror knew. A member first recorded as deleted keeps when that was recorded (`deleted_since`), which the
   * nightly reconciliation weighs against an admin's reactivation in Roster. Returns the Slack ids of those it recorded as deleted whom the mirror knew as not deleted.
   */
  async upsert(
    em: EntityManager,
    account: IAccount,
    members: Member[],
    opts: { asOf?: AsOf } = {},
  ): Promise<string[]> {
    if (!members.length) return [];
    const rows = await statements(em)<{ slack_user_id: string }>(
      `with page as (
         select * from jsonb_to_recordset($1::jsonb) as m(id text, email text, name text, title text,
           phone text, is_admin boolean, is_owner boolean, is_bot boolean, deleted boolean, team_ids jsonb,
           is_restricted boolean, is_ultra_restricted boolean)
       ), active_before as (
         select slack_user_id from slack_member
         where account_id = $2::uuid and not deleted and slack_user_id in (select id from page where deleted)
       ), written as (
         insert into slack_member (account_id, slack_user_id, email, name, title, phone, is_admin, is_owner,
           is_bot, deleted, team_ids, is_restricted, is_ultra_restricted, updated_at, known_at, recorded_at,
           deleted_since)
         select $2::uuid, m.id, m.email, m.name, m.title, m.phone, m.is_admin, m.is_owner, m.is_bot, m.deleted,
           array(select jsonb_array_elements_text(m.team_ids)), m.is_restricted, m.is_ultra_restricted, now(),
           date_trunc('second', coalesce($3::timestamptz, $4::timestamptz, now())), coalesce($4::timestamptz, now()),
           case when m.deleted then coalesce($4::timestamptz, now()) end
         from page m
         on conflict (account_id, slack_user_id) do update set email = excluded.email, name = excluded.name,
           title = excluded.title, phone = excluded.phone, is_admin = excluded.is_admin,
           is_owner = excluded.is_owner, is_bot = excluded.is_bot, deleted = excluded.deleted,
           team_ids = excluded.team_ids,
           is_restricted = coalesce(excluded.is_restricted, slack_member.is_restricted),
           is_ultra_restricted = coalesce(excluded.is_ultra_restricted, slack_member.is_ultra_restricted),
           updated_at = now(), known_at = excluded.known_at, recorded_at = excluded.recorded_at,
           deleted_since = case when not excluded.deleted then null
             when slack_member.deleted then coalesce(slack_member.deleted_since, excluded.deleted_since)
             else excluded.deleted_since end
         where (slack_member.known_at, slack_member.recorded_at) <= (excluded.known_at, excluded.recorded_at)
         returning slack_user_id, deleted
       )
       select w.slack_user_id from written w join active_before b using (slack_user_id) where w.deleted`,
      [
        json(
          members.map((m) => ({
            id: m.slackUserId,
            email: m.email,
            name: m.name,
            title: m.title,
            phone: m.phone,
            is_admin: m.isAdmin,
            is_owner: m.isOwner,
            is_bot: m.isBot,
            deleted: m.deleted,
            team_ids: m.teamIds,
            is_restricted: m.isRestricted,
            is_ultra_restricted: m.isUltraRestricted,
          })),
        ),
        account.id,
        opts.asOf?.eventTime ?? null,
        opts.asOf?.recordedAt ?? null,
      ],
    );
    return rows.map((r) => r.slack_user_id);
  }

  /** One member by Slack id, or null when the directory has not seen them. */
  async byId(em: EntityManager, account: IAccount, slackUserId: string): Promise<Member | null> {
    const [row] = await query<Row>(
      em,
      sql`select * from slack_member where account_id = ${account.id} and slack_user_id = ${slackUserId}`,
    );
    return row ? fromRow(row) : null;
  }

  /** The member as the mirror knows them, when it knows them as of later than `asOf`; otherwise null. */
  async knownSince(
    em: EntityManager,
    account: IAccount,
    slackUserId: string,
    asOf: AsOf,
  ): Promise<Member | null> {
    const at = asOf.eventTime ?? asOf.recordedAt;
    const [row] = await query<Row>(
      em,
      sql`select * from slack_member where account_id = ${account.id} and slack_user_id = ${slackUserId}
            and (known_at, recorded_at)
              > (date_trunc('second', ${at}::timestamptz), ${asOf.recordedAt}::timestamptz)`,
    );
    return row ? fromRow(row) : null;
  }

  /**
   * The workspace member with this email (not deleted), or null. Someone of another organisation met in a
   * Slack Connect channel is never the answer, even with the same address: their organisation vouches for
   * it, not this workspace, and a DM to them would hand this account's invitation to an outsider.
   */
  async byEmail(em: EntityManager, account: IAccount, email: string): Promise<Member | null> {
    const [row] = await query<Row>(
      em,
      sql`select * from slack_member where account_id = ${account.id}
            and lower(btrim(email)) = ${email.trim().toLowerCase()} and not deleted
            and (cardinality(team_ids) = 0 or ${account.teamId} = any(team_ids))
          order by updated_at desc limit 1`,
    );
    return row ? fromRow(row) : null;
  }

  /** Slack ids of the workspace's admins and owners, from the mirror. */
  async adminIds(em: EntityManager, account: IAccount): Promise<string[]> {
    const rows = await query<{ slack_user_id: string }>(
      em,
      sql`select slack_user_id from slack_member where account_id = ${account.id}
            and (is_admin or is_owner) and not deleted and not is_bot
            and (cardinality(team_ids) = 0 or ${account.teamId} = any(team_ids))`,
    );
    return rows.map((r) => r.slack_user_id);
  }

  /**
   * For a caller waiting on the first full sync: when a full sync last finished (null while none has; a
   * later walk under way leaves it as it was, the mirror being whole meanwhile), and since when
   * the mirror has been awaited, that is when the current sync started or, before any, when first asked.
   */
  async awaited(em: EntityManager, account: IAccount): Promise<{ finishedAt: Date | null; since: Date }> {
    const [row] = await query<{ finished_at: Date | null; started_at: Date }>(
      em,
      sql`insert into slack_directory_sync (account_id) values (${account.id})
          on conflict (account_id) do update set account_id = excluded.account_id
          returning finished_at, started_at`,
    );
    return {
      finishedAt: row?.finished_at ? new Date(row.finished_at) : null,
      since: row ? new Date(row.started_at) : new Date(),
    };
  }

  /**
   * When the last full sync finished; null before any has, and while a walk is under way (one stopped half
   * way included), so the sync job does not take a mirror mid-walk for an up-to-date one.
   */
  async syncedAt(em: EntityManager, account: IAccount): Promise<Date | null> {
    const [row] = await query<{ finished_at: string | Date | null }>(
      em,
      sql`select finished_at from slack_directory_sync where account_id = ${account.id} and cursor is null`,
    );
    return row?.finished_at ? new Date(row.finished_at) : null;
  }

  /** How long the workspace's sync lease has left (0 when none is held). */
  private async leaseLeftMs(em: EntityManager, account: IAccount): Promise<number> {
    const [row] = await query<{ ms: number }>(
      em,
      sql`select greatest(0, extract(epoch from lease_until - now()) * 1000)::int as ms
          from slack_directory_sync where account_id = ${account.id}`,
    );
    return row?.ms ?? 0;
  }

  /**
   * Links the people in Roster that no Slack account is linked to yet to the members among `members` with
   * their email, as the mirror now knows them (an event that arrives late never links an address its
   * member has since given up): members of this workspace, guests too (the same person; a guest is never
   * an admin), not deleted, no bot (someone met through Slack Connect may give any address). Someone who
   * accepted their invitation on the web, or whose invitation went by email, and joined Slack later, is then
   * known by their Slack account: their Admin permission set works, and Slack's deactivation reaches them.
   * Its own short statement, outside any transaction that holds the mirror's rows. Returns how many.
   */
  async linkUsers(em: EntityManager, account: IAccount, members: Member[]): Promise<number> {
    if (!members.length) return 0;
    const ids = members.map((m) => m.slackUserId);
    const linked = await query<{ id: string }>(
      em,
      sql`with found as (
            select distinct on (lower(btrim(m.email))) m.slack_user_id, m.email
            from slack_member m
            where m.account_id = ${account.id} and m.slack_user_id = any(${ids}::text[])
              and m.email is not null and not m.deleted and not m.is_bot
              and (cardinality(m.team_ids) = 0 or ${account.teamId} = any(m.team_ids))
            order by lower(btrim(m.email)), m.slack_user_id
          )
          update app_user u set slack_user_id = f.slack_user_id, updated_at = now()
          from found f
          where u.account_id = ${account.id} and u.slack_user_id is null
            and lower(btrim(u.email)) = lower(btrim(f.email))
            and not exists (select 1 from app_user o where o.account_id = ${account.id}
              and o.slack_user_id = f.slack_user_id)
          returning u.id`,
    );
    return linked.length;
  }

  /**
   * Reads the whole directory, a page of 1,000 at a time, resuming from the cursor saved after each page
   * (a restart loses at most one page). Paced by the Web API client's own rate-limit handling.
   *
   * One sync per workspace at a time, across every instance on the database: the sync first takes the
   * workspace's lease (a row update, no transaction held), renews it while it runs and gives it back at
   * the end. A sync that finds the lease held returns `{ running: true }` and the lease's time left at
   * once, without calling Slack;
   * a lease whose holder died lapses after {@link LEASE_MS}, and the next sync resumes from the cursor.
   *
   * `onDeleted` is given, in the transaction that writes the page, the members of a page whom Slack now
   * says are deleted and the mirror knew as not deleted: a deactivation whose event Roster never got. Should
   * it fail, the page is not written either, and the sync's retry reads it again.
   */
  async sync(
    em: EntityManager,
    account: IAccount,
    slack: WebClient,
    log?: Logger,
    opts: {
      onDeleted?: (tx: EntityManager, members: Member[], asOf: Date) => Promise<void>;
      /** Aborted when Roster stops: the sync ends before its next page (HandedBack), its lease given back. */
      signal?: AbortSignal;
    } = {},
  ): Promise<SyncResult> {
    const holder = randomUUID();
    await query(
      em,
      sql`insert into slack_directory_sync (account_id) values (${account.id}) on conflict (account_id) do nothing`,
    );
    const [state] = await query<{ cursor: string | null }>(
      em,
      sql`update slack_directory_sync set lease_holder = ${holder},
            lease_until = now() + make_interval(secs => ${LEASE_MS / 1000})
          where account_id = ${account.id} and (lease_until is null or lease_until < now())
          returning cursor`,
    );
    if (!state) {
      log?.info('a Slack directory sync is already running for this workspace; this one ends');
      return { running: true, leaseLeftMs: await this.leaseLeftMs(em, account) };
    }
    const renew = setInterval(() => {
      query(
        em.fork(),
        sql`update slack_directory_sync set lease_until = now() + make_interval(secs => ${LEASE_MS / 1000})
            where account_id = ${account.id} and lease_holder = ${holder}`,
      ).catch((err: unknown) => log?.warn({ err }, 'could not renew the Slack directory sync lease'));
    }, LEASE_RENEW_MS);
    renew.unref();
    try {
      // A saved cursor is a walk under way (a finished walk leaves none): it goes on from there.
      let cursor = state.cursor ?? undefined;
      if (!cursor) {
        await query(
          em,
          sql`update slack_directory_sync set started_at = now(), pages = 0, cursor = null
              where account_id = ${account.id} and lease_holder = ${holder}`,
        );
      }
      let pages = 0;
      let members = 0;
      /** Whether this sync began at the cursor an earlier one saved, which Slack may no longer take. */
      let resumed = !!cursor;
      for (;;) {
        // Stopping: the walk goes on from the saved cursor after the next start.
        if (opts.signal?.aborted) throw new HandedBack();
        // The page says who was what as of now, or a little later: an event Slack dates later is newer.
        const [{ asOf }] = (await query<{ asOf: Date }>(em, sql`select now() as "asOf"`)) as [{ asOf: Date }];
        let page: Awaited<ReturnType<WebClient['users']['list']>>;
        try {
          page = await slack.users.list({ limit: PAGE_SIZE, ...(cursor ? { cursor } : {}) });
        } catch (err) {
          if (!(resumed && slackErrorCode(err) === 'invalid_cursor')) throw err;
          // Slack no longer takes the cursor a stopped sync saved (they do not last): the walk starts
          // again from the first page, once, rather than failing on that cursor every night.
          log?.info('Slack refused the saved directory cursor; the sync starts again');
          resumed = false;
          cursor = undefined;
          await query(
            em,
            sql`update slack_directory_sync set started_at = now(), pages = 0, cursor = null
                where account_id = ${account.id} and lease_holder = ${holder}`,
          );
          continue;
        }
        resumed = false;
        const rows = (page.members ?? [])
          .map((u) => memberOf(u as SlackUser))
          .filter((m): m is Member => !!m);
        const recordedAt = new Date(asOf);
        const onDeleted = opts.onDeleted;
        if (onDeleted) {
          await em.transactional(async (tx) => {
            const gone = new Set(await this.upsert(tx, account, rows, { asOf: { recordedAt } }));
            if (gone.size)
              await onDeleted(
                tx,
                rows.filter((m) => gone.has(m.slackUserId)),
                recordedAt,
              );
          });
        } else {
          await this.upsert(em, account, rows, { asOf: { recordedAt } });
        }
        await this.linkUsers(em, account, rows);
        cursor = page.response_metadata?.next_cursor || undefined;
        pages += 1;
        members += rows.length;
        const kept = await query<{ account_id: string }>(
          em,
          sql`update slack_directory_sync set cursor = ${cursor ?? null}, pages = pages + 1,
                finished_at = case when ${cursor ?? null}::text is null then now() else finished_at end,
                lease_until = now() + make_interval(secs => ${LEASE_MS / 1000})
              where account_id = ${account.id} and lease_holder = ${holder} returning account_id`,
        );
        if (!kept.length) {
          // This instance stalled past its lease and another sync took over: it goes on from the cursor.
          log?.warn({ pages }, 'the Slack directory sync lost its lease to another; this one ends');
          return { running: true, leaseLeftMs: await this.leaseLeftMs(em, account) };
        }
        if (!cursor) break;
      }
      log?.info({ pages, members }, 'Slack directory synced');
      return { pages, members };
    } finally {
      clearInterval(renew);
      // Given back for the next sync (a job rescheduled while Slack is busy resumes at once); if this
      // fails, the lease lapses on its own.
      await query(
        em.fork(),
        sql`update slack_directory_sync set lease_holder = null, lease_until = null
            where account_id = ${account.id} and lease_holder = ${holder}`,
      ).catch((err: unknown) => log?.warn({ err }, 'could not give back the Slack directory sync lease'));
    }
  }
}

type Row = {
  slack_user_id: string;
  email: string | null;
  name: string | null;
  title: string | null;
  phone: string | null;
  is_admin: boolean;
  is_owner: boolean;
  is_bot: boolean;
  deleted: boolean;
  team_ids: string[];
  is_restricted: boolean | null;
  is_ultra_restricted: boolean | null;
};

function fromRow(r: Row): Member {
  return {
    slackUserId: r.slack_user_id,
    email: r.email,
    name: r.name,
    title: r.title,
    phone: r.phone,
    isAdmin: r.is_admin,
    isOwner: r.is_owner,
    isBot: r.is_bot,
    deleted: r.deleted,
    teamIds: r.team_ids,
    isRestricted: r.is_restricted,
    isUltraRestricted: r.is_ultra_restricted,
  };
}
