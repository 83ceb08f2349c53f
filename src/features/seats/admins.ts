import type { EntityManager } from '@mikro-orm/postgresql';
import type { WebClient } from '@slack/web-api';
import type { IAccount } from '../accounts/account.entity.ts';
import { type DirectoryService, type Member, memberOf, PAGE_SIZE } from '../directory/directory.service.ts';
import { User } from '../people/user.entity.ts';

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
   * `slack` walks the directory (paced bulk work); `lookup` asks about one person, which may happen while
   * that person waits on a click (by default the same client).
   */
  constructor(
    slack: WebClient,
    directory: DirectoryService,
    now: () => number = Date.now,
    lookup: WebClient = slack,
  ) {
    this.slack = slack;
    this.lookup = lookup;
    this.directory = directory;
    this.now = now;
  }

  async isAdmin(em: EntityManager, account: IAccount, userId: string): Promise<boolean> {
    const person = await this.member(em, account, userId);
    if (!person || person.deleted) return false;
    // An admin of another organisation, met in a shared channel, is no admin here.
    if (person.teamIds.length > 0 && !person.teamIds.includes(account.teamId)) return false;
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
   * (users.info) once and remembered there. Null for a user Slack does not know.
   */
  async member(em: EntityManager, account: IAccount, userId: string): Promise<Member | null> {
    const known = await this.directory.byId(em, account, userId);
    if (known) return known;
    const res = await this.lookup.users.info({ user: userId }).catch((err) => {
      if ((err as { data?: { error?: string } }).data?.error === 'user_not_found') return null;
      throw err;
    });
    const member = res?.user ? memberOf(res.user) : null;
    if (member) await this.directory.upsert(em, account, [member]);
    return member;
  }

  /**
   * Slack user ids of the workspace admins and owners, and of Roster's Admin users. From the directory
   * mirror once it has been synced: a constant cost however large the workspace. Before the first sync
   * the directory is read page by page, filling the mirror on the way.
   */
  async adminIds(em: EntityManager, account: IAccount): Promise<string[]> {
    const ids = new Set<string>();
    if (await this.directory.syncedAt(em, account)) {
      for (const id of await this.directory.adminIds(em, account)) ids.add(id);
    } else {
      let cursor: string | undefined;
      do {
        const page = await this.slack.users.list({ limit: PAGE_SIZE, cursor });
        const members = (page.members ?? []).map((m) => memberOf(m)).filter((m): m is Member => !!m);
        await this.directory.upsert(em, account, members);
        for (const m of members) {
          if (!m.deleted && !m.isBot && (m.isAdmin || m.isOwner) && inWorkspace(m, account.teamId))
            ids.add(m.slackUserId);
        }
        cursor = page.response_metadata?.next_cursor || undefined;
      } while (cursor);
    }
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

/** Whether a Slack user is a member of this workspace, not someone met through a shared channel. */
function inWorkspace(m: Member, teamId: string): boolean {
  return m.teamIds.length === 0 || m.teamIds.includes(teamId);
}
