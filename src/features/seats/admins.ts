import type { EntityManager } from '@mikro-orm/postgresql';
import type { WebClient } from '@slack/web-api';
import type { IAccount } from '../accounts/account.entity.ts';
import { User } from '../people/user.entity.ts';

const CACHE_MS = 5 * 60_000;

type SlackPerson = {
  isWorkspaceAdmin: boolean;
  deleted: boolean;
  email?: string;
  name?: string;
  /** The workspaces the person belongs to: their own team, and every team of theirs on an Enterprise Grid. */
  teams: string[];
};

/**
 * Who may approve seats, import and post join links: the workspace's Slack admins and owners
 * (from users.info, cached for a few minutes) and active users whose permission set is Admin.
 */
export class AdminDirectory {
  private readonly slack: WebClient;
  private readonly cache = new Map<string, { at: number; person: SlackPerson }>();
  private readonly now: () => number;

  constructor(slack: WebClient, now: () => number = Date.now) {
    this.slack = slack;
    this.now = now;
  }

  async slackPerson(userId: string): Promise<SlackPerson> {
    const hit = this.cache.get(userId);
    if (hit && this.now() - hit.at < CACHE_MS) return hit.person;
    const res = await this.slack.users.info({ user: userId });
    const u = res.user;
    const person: SlackPerson = {
      isWorkspaceAdmin: Boolean(u?.is_admin || u?.is_owner || u?.is_primary_owner),
      deleted: Boolean(u?.deleted),
      email: u?.profile?.email,
      name: u?.real_name || u?.profile?.real_name || u?.name,
      teams: teamsOf(u ?? {}),
    };
    this.cache.set(userId, { at: this.now(), person });
    return person;
  }

  async isAdmin(em: EntityManager, account: IAccount, userId: string): Promise<boolean> {
    const person = await this.slackPerson(userId);
    if (person.deleted) return false;
    // An admin of another organisation, met in a shared channel, is no admin here.
    if (person.teams.length > 0 && !person.teams.includes(account.teamId)) return false;
    if (person.isWorkspaceAdmin) return true;
    const rosterAdmin = await em.count(User, {
      account,
      slackUserId: userId,
      status: 'active',
      permissionSet: { isAdmin: true },
    });
    return rosterAdmin > 0;
  }

  /** Slack user ids of the workspace admins and owners, and of Roster's Admin users. */
  async adminIds(em: EntityManager, account: IAccount): Promise<string[]> {
    const ids = new Set<string>();
    let cursor: string | undefined;
    do {
      const page = await this.slack.users.list({ limit: 200, cursor });
      for (const m of page.members ?? []) {
        if (m.id && !m.deleted && !m.is_bot && (m.is_admin || m.is_owner) && memberOf(m, account.teamId))
          ids.add(m.id);
      }
      cursor = page.response_metadata?.next_cursor || undefined;
    } while (cursor);
    const rosterAdmins = await em.find(User, {
      account,
      status: 'active',
      slackUserId: { $ne: null },
      permissionSet: { isAdmin: true },
    });
    for (const u of rosterAdmins) if (u.slackUserId) ids.add(u.slackUserId);
    return [...ids];
  }

  forget(userId: string): void {
    this.cache.delete(userId);
  }
}

type Membership = { team_id?: string; enterprise_user?: { teams?: string[] } };

/** The workspaces a Slack user belongs to: their own team, and every team of theirs on an Enterprise Grid. */
function teamsOf(u: Membership): string[] {
  return [u.team_id, ...(u.enterprise_user?.teams ?? [])].filter((t): t is string => Boolean(t));
}

/** Whether a Slack user is a member of this workspace, not someone met through a shared channel. */
function memberOf(u: Membership, teamId: string): boolean {
  const teams = teamsOf(u);
  return teams.length === 0 || teams.includes(teamId);
}
