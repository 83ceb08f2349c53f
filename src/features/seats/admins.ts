import type { EntityManager } from '@mikro-orm/postgresql';
import type { WebClient } from '@slack/web-api';
import { TryLater } from '../../shared/jobs.ts';
import type { IAccount } from '../accounts/account.entity.ts';
import {
  type DirectoryService,
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
 * directory mirror) and active users whose permission set is Admin.
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
    return this.isAdminMember(em, account, (await this.directory.byId(em, account, userId)) ?? seen ?? null);
  }

  /** Whether `person`, as {@link member} found them, is an admin: for a caller that needs the member too. */
  async isAdminMember(em: EntityManager, account: IAccount, person: Member | null): Promise<boolean> {
    if (!person || person.deleted) return false;
    const userId = person.slackUserId;
    // An admin of another organisation, met in a shared channel, is no admin here.
    if (!isOfWorkspace(person, account.teamId)) return false;
    if (person.isAdmin || person.isOwner) return true;
    const rosterAdmin = await em.count(User, {
      account,
      slackUserId: userId,
      status: 'active',
      permissionSet: { isAdmin: true },
    });
    return rosterAdmin > 0;
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
    const res = await this.lookup.users.info({ user: userId }).catch((err) => {
      if ((err as { data?: { error?: string } }).data?.error === 'user_not_found') return null;
      throw err;
    });
    const member = res?.user ? memberOf(res.user) : null;
    if (member) await this.directory.upsert(em, account, [member]);
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
    const rosterAdmins = await em.find(User, {
      account,
      status: 'active',
      slackUserId: { $ne: null },
      permissionSet: { isAdmin: true },
    });
    for (const u of rosterAdmins) if (u.slackUserId) ids.add(u.slackUserId);
    return [...ids];
  }
}
