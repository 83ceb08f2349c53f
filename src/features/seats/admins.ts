import type { EntityManager } from '@mikro-orm/postgresql';
import type { WebClient } from '@slack/web-api';
import { query, sql } from '../../db/sql.ts';
import { TryLater } from '../../shared/jobs.ts';
import type { IAccount } from '../accounts/account.entity.ts';
import {
  type DirectoryService,
  type GuestKind,
  guestKind,
  isOfWorkspace,
  type Member,
  memberOf,
} from '../directory/directory.service.ts';
import { User } from '../people/user.entity.ts';

/** How soon a job waiting for the first directory sync looks again. */
const SYNC_POLL_MS = 5_000;
/** How long jobs wait for the first directory sync before they make do with what the mirror knows. */
const FIRST_SYNC_PATIENCE_MS = 15 * 60_000;

/**
 * Who may approve seats, import and post join links: the workspace's Slack admins and owners (from the
 * directory mirror) and active users whose permission set is Admin. A Slack guest (single- or
 * multi-channel) is never one, whatever their permission set: every admin check goes through
 * {@link isAdminMember}.
 */
export class AdminDirectory {
  private readonly slack: WebClient;
  private readonly lookup: WebClient;
  private readonly now: () => number;

  private readonly directory: DirectoryService;
  /**
   * Queues the directory sync job, true when it could; otherwise (no such job here) a caller that needs
   * the mirror syncs it itself.
   */
  private readonly requestSync?: () => Promise<boolean>;

  /**
   * `slack` walks the directory (paced bulk work); `lookup` asks about one person, which may happen while
   * that person waits on a click (by default the same client).
   */
  constructor(
    slack: WebClient,
    directory: DirectoryService,
    now: () => number = Date.now,
    lookup: WebClient = slack,
    requestSync?: () => Promise<boolean>,
  ) {
    this.requestSync = requestSync;
    this.slack = slack;
    this.lookup = lookup;
    this.directory = directory;
    this.now = now;
  }

  /** Whether the Slack user `userId` is a Roster admin here (see {@link isAdminMember}). */
  async isAdmin(em: EntityManager, account: IAccount, userId: string): Promise<boolean> {
    return this.isAdminMember(em, account, await this.member(em, account, userId));
  }

  /**
   * Whether a Slack user is an admin, from the database alone, never asking Slack: for a caller inside a
   * transaction, whose connection must not wait on Slack. `seen` is what Slack said of them before, used only
   * when the mirror does not hold them.
   */
  async isAdminInDatabase(
    em: EntityManager,
    account: IAccount,
    userId: string,
    seen?: Member | null,
  ): Promise<boolean> {
    const known = await this.directory.byId(em, account, userId);
    // What Slack said before the transaction wins over a row whose guest flags were never learnt (its
    // write to the mirror may have lost to a newer change that did not carry them).
    const person =
      known && guestKind(known) === 'unknown' && seen && guestKind(seen) !== 'unknown' ? seen : known;
    return this.isAdminMember(em, account, person ?? seen ?? null);
  }

  /**
   * Whether `person`, as {@link member} found them, is an admin: for a caller that needs the member too.
   * The one admin check every surface uses.
   */
  async isAdminMember(em: EntityManager, account: IAccount, person: Member | null): Promise<boolean> {
    if (!person || person.deleted) return false;
    const userId = person.slackUserId;
    // An admin of another organisation, met in a shared channel, is no admin here.
    if (!isOfWorkspace(person, account.teamId)) return false;
    // A guest is let into some channels, not trusted with the workspace: never an admin, whatever their
    // permission set says.
    const kind = guestKind(person);
    if (kind === 'single_channel' || kind === 'multi_channel') return false;
    // Slack makes no guest an admin or owner.
    if (person.isAdmin || person.isOwner) return true;
    const rosterAdmin = await em.count(User, {
      account,
      slackUserId: userId,
      status: 'active',
      permissionSet: { isAdmin: true },
    });
    if (rosterAdmin === 0) return false;
    if (kind !== 'unknown') return true;
    // The mirror cannot say whether they are a guest (recorded before it kept the flags): Slack is asked
    // once and the answer kept, but never while a transaction is open; until Slack says they are a full
    // member, they are treated as a guest, as the join page treats an address it cannot place.
    if (em.isInTransaction()) return false;
    const asked = await this.member(em, account, userId, { guestFlags: true }).catch(() => null);
    return asked !== null && guestKind(asked) === null;
  }

  /**
   * Whether the Slack account behind a person (by Slack id, else by email in the mirror) is a guest:
   * its kind, null for a full member or someone the mirror does not know, `unknown` when neither the
   * mirror nor Slack can say. Asks Slack (users.info) only outside a transaction, and never with `askSlack: false`.
   */
  async guestOf(
    em: EntityManager,
    account: IAccount,
    who: { slackUserId?: string | null; email?: string | null },
    opts: { askSlack: boolean } = { askSlack: true },
  ): Promise<GuestKind | 'unknown' | null> {
    let person = who.slackUserId ? await this.directory.byId(em, account, who.slackUserId) : null;
    if (!person && who.email) person = await this.directory.byEmail(em, account, who.email);
    if (!person) return null;
    const kind = guestKind(person);
    if (kind !== 'unknown' || em.isInTransaction() || !opts.askSlack) return kind;
    const asked = await this.member(em, account, person.slackUserId, { guestFlags: true }).catch(() => null);
    return asked ? guestKind(asked) : 'unknown';
  }

  /**
   * A Slack user as the directory mirror knows them; one the mirror has not seen yet is asked of Slack
   * (users.info) once and remembered there. Null for a user Slack does not know. With `guestFlags`, a
   * member the mirror knows but whose guest flags it has not learnt yet (recorded before it kept them) is
   * asked of Slack too, so the caller can tell a guest from a full member.
   */
  async member(
    em: EntityManager,
    account: IAccount,
    userId: string,
    opts: { guestFlags?: boolean } = {},
  ): Promise<Member | null> {
    const known = await this.directory.byId(em, account, userId);
    if (known && !(opts.guestFlags && guestKind(known) === 'unknown')) return known;
    // What Slack answers is true as of before the call: a user_change recorded while it was under way is
    // newer news, and the answer is not written over it.
    const [{ asOf }] = (await query<{ asOf: Date }>(em, sql`select now() as "asOf"`)) as [{ asOf: Date }];
    const res = await this.lookup.users.info({ user: userId }).catch((err) => {
      if ((err as { data?: { error?: string } }).data?.error === 'user_not_found') return null;
      throw err;
    });
    const member = res?.user ? memberOf(res.user) : null;
    // A deletion the mirror did not know is left for Slack's user_change event or the nightly sync to
    // record: they deactivate the person in Roster too, and the sync finds such a deactivation by the change
    // of the mirror's row, which a lookup recording it first would hide.
    if (member && !(member.deleted && known && !known.deleted)) {
      await this.directory.upsert(em, account, [member], { asOf: { recordedAt: new Date(asOf) } });
    }
    return member ?? known;
  }

  /**
   * Slack user ids of the workspace admins and owners, and of Roster's Admin users, from the directory
   * mirror: a constant cost however large the workspace. Before the first sync has finished, the sync job
   * is queued and the caller (a job) is told to try again shortly (TryLater): the directory is walked once,
   * by that job, never by two walks at once or on the thread that answers Slack.
   */
  async adminIds(em: EntityManager, account: IAccount): Promise<string[]> {
    const { finishedAt, since } = await this.directory.awaited(em, account);
    if (!finishedAt) {
      const waiting = this.now() - since.getTime() < FIRST_SYNC_PATIENCE_MS;
      if (!(await this.requestSync?.())) {
        const synced = await this.directory.sync(em, account, this.slack);
        // Another instance is reading it: as when the sync job was queued.
        if (synced.running && waiting) {
          throw new TryLater(
            SYNC_POLL_MS,
            'the Slack directory is still being read; the admins are known once it is',
          );
        }
      } else if (waiting) {
        throw new TryLater(
          SYNC_POLL_MS,
          'the Slack directory is still being read; the admins are known once it is',
        );
      }
      // A sync that has not finished in that long (Slack refusing users.list, say) is not waited for
      // forever: the admins the mirror knows so far, and Roster's own, are asked.
    }
    const ids = new Set(await this.directory.adminIds(em, account));
    // Roster's Admin users, but no one the mirror knows as a Slack guest, as deleted in Slack or as a
    // member of another organisation (Slack Connect): the buttons they would be sent refuse them
    // (isAdminMember), which also asks Slack about anyone the mirror cannot yet place, and the requests
    // they would be sent name people of this workspace.
    const rosterAdmins = await query<{ slack_user_id: string }>(
      em,
      sql`select u.slack_user_id from app_user u join permission_set s on s.id = u.permission_set_id
          where u.account_id = ${account.id} and u.status = 'active' and u.slack_user_id is not null
            and s.is_admin and not exists (
              select 1 from slack_member m where m.account_id = u.account_id
                and m.slack_user_id = u.slack_user_id
                and (m.deleted or m.is_restricted or m.is_ultra_restricted
                  or not (cardinality(m.team_ids) = 0 or ${account.teamId} = any(m.team_ids))))`,
    );
    for (const u of rosterAdmins) ids.add(u.slack_user_id);
    return [...ids];
  }
}
