/** What never changes about an account once it exists: its id and its Slack workspace. */
export type AccountIdentity = { id: string; teamId: string };

/**
 * The accounts of the workspaces Roster serves, by Slack team id, held in memory so that a Slack request
 * finds its account before its ack without a database round trip: the workspace of SLACK_BOT_TOKEN, once
 * Slack has said which it is. Only the identity is held: it cannot go stale, however many Roster instances
 * share the database and change seat limits or settings. A team that is not here is not served (it has not
 * installed Roster, or an earlier bot token served it), and its requests are refused.
 */
export class AccountDirectory {
  private readonly byTeam = new Map<string, AccountIdentity>();

  /** Records the workspace Roster serves. */
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
