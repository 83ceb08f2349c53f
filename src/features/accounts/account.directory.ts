import type { EntityManager } from '@mikro-orm/postgresql';

/** What never changes about an account once it exists: its id and its Slack workspace. */
export type AccountIdentity = { id: string; teamId: string };

/**
 * The accounts of the workspaces Roster is installed in, by Slack team id, held in memory so that a Slack
 * request finds its account before its ack without a database round trip. Only the identity is held: it
 * cannot go stale, however many Roster instances share the database and change seat limits or settings.
 * A team that is not here has not installed Roster, and its requests are refused.
 */
export class AccountDirectory {
  private readonly byTeam = new Map<string, AccountIdentity>();

  /** Fills the directory from the installations recorded in the database (done at start). */
  async load(em: EntityManager): Promise<void> {
    const rows = await em
      .getConnection()
      .execute<{ id: string; team_id: string }[]>(
        'select a.id, a.team_id from slack_installation i join account a on a.team_id = i.team_id',
      );
    for (const row of rows) this.remember({ id: row.id, teamId: row.team_id });
  }

  /** Records a workspace that has just installed Roster. */
  remember(identity: AccountIdentity): void {
    this.byTeam.set(identity.teamId, { id: identity.id, teamId: identity.teamId });
  }

  find(teamId: string): AccountIdentity | undefined {
    return this.byTeam.get(teamId);
  }

  get size(): number {
    return this.byTeam.size;
  }
}
