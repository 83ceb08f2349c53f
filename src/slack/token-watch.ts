import { ErrorCode, WebClient } from '@slack/web-api';
import type { Config } from '../config.ts';
import { TryLater } from '../shared/jobs.ts';
import type { Logger } from '../shared/logger.ts';
import { boltLogger } from './logger.ts';

/**
 * Slack's answers that refuse the bot token itself, whatever the method: the app was uninstalled, its token
 * revoked, the workspace deactivated. Every further call with that token is refused the same way.
 */
export const TOKEN_REFUSALS: ReadonlySet<string> = new Set([
  'invalid_auth',
  'not_authed',
  'account_inactive',
  'token_revoked',
  'token_expired',
]);

/** The code of a Web API error that refuses the bot token, else undefined. */
export function tokenRefusal(err: unknown): string | undefined {
  if (err instanceof TokenRefused) return err.code;
  const e = err as { code?: string; data?: { error?: string } };
  const code = e?.code === ErrorCode.PlatformError ? e.data?.error : undefined;
  return code && TOKEN_REFUSALS.has(code) ? code : undefined;
}

/**
 * A call not made, or refused, because Slack refuses the bot token: work that meets it is queued again
 * for when Slack may take the token again (see TryLater), rather than spending its retries on calls
 * Slack refuses.
 */
export class TokenRefused extends TryLater {
  /** Slack's error code: `token_revoked`, `invalid_auth`, … */
  readonly code: string;
  constructor(method: string, code: string, retryInMs: number) {
    super(
      retryInMs,
      `Slack no longer accepts the bot token (${code}): ${method} waits; trying again in ${Math.ceil(retryInMs / 1000)} s`,
      `Slack no longer accepts the bot token (${code}); checked again every ${Math.ceil(retryInMs / 1000)} s`,
    );
    this.name = 'TokenRefused';
    this.code = code;
  }
}

/** How often Roster asks Slack (auth.test) whether it takes a refused bot token again. */
export const TOKEN_RECHECK_MS = 60_000;

/**
 * Whether Slack still takes the bot token, as the calls Roster makes find out while it runs. The first
 * refusal is logged once, as an error saying what to do, and /readyz says it until Slack takes the token
 * again; meanwhile bulk work is held back (see PacedWebClient) rather than calling Slack with a token it
 * refuses, and one bounded auth.test every {@link TOKEN_RECHECK_MS} tells when it is taken again (the
 * app reinstalled with the same token, a workspace reactivated).
 */
export class TokenWatch {
  readonly recheckMs: number;
  #refused?: { code: string; since: Date };
  #timer?: NodeJS.Timeout;
  #checking = false;
  readonly #config: Pick<Config, 'slack'>;
  readonly #logger: Logger;
  readonly #onRefused?: (code: string) => void;
  readonly #listeners: ((code: string) => void)[] = [];

  /**
   * `onRefused`: told of a refusal instead of logging it, in the bulk jobs thread, whose calls meet most
   * refusals: the thread that answers Slack logs it and says it on /readyz.
   */
  constructor(
    config: Pick<Config, 'slack'>,
    logger: Logger,
    opts: { recheckMs?: number; onRefused?: (code: string) => void } = {},
  ) {
    this.#config = config;
    this.#logger = logger;
    this.recheckMs = opts.recheckMs ?? TOKEN_RECHECK_MS;
    this.#onRefused = opts.onRefused;
  }

  /** Calls `listener` with Slack's code each time the token becomes refused (the bulk thread learns it so). */
  onRefusal(listener: (code: string) => void): void {
    this.#listeners.push(listener);
  }

  /** The refusal in force, if Slack refuses the bot token now. */
  get refused(): { code: string; since: Date } | undefined {
    return this.#refused;
  }

  /** What /readyz and the log say while the token is refused. */
  problem(): string | undefined {
    const r = this.#refused;
    if (!r) return undefined;
    return `Slack no longer accepts SLACK_BOT_TOKEN (${r.code}) since ${r.since.toISOString()}: the app was uninstalled, its token revoked or the workspace deactivated. Bulk work waits meanwhile (nothing is lost). A workspace admin reinstalls Roster (README: "Create the Slack app") and puts the new Bot User OAuth Token in SLACK_BOT_TOKEN, then restarts it; Roster checks the token again every ${Math.round(this.recheckMs / 1000)} s.`;
  }

  /** Notes what a Web API call failed with; true when it was a refusal of the token. */
  noteError(err: unknown): boolean {
    const code = tokenRefusal(err);
    if (!code) return false;
    this.noteRefused(code);
    return true;
  }

  /**
   * Slack refuses the bot token from now on, as a call's `code` said, or an event (`app_uninstalled`,
   * `tokens_revoked`) told before any call met it.
   */
  noteRefused(code: string): void {
    if (this.#refused) return;
    this.#refused = { code, since: new Date() };
    if (this.#onRefused) this.#onRefused(code);
    else this.#logger.error(this.problem());
    for (const listener of this.#listeners) listener(code);
    this.#timer = setInterval(() => void this.recheck(), this.recheckMs);
    this.#timer.unref();
  }

  /** Asks Slack once (auth.test, no retries) whether it takes the token again. */
  async recheck(): Promise<void> {
    if (!this.#refused || this.#checking) return;
    this.#checking = true;
    const client = new WebClient(this.#config.slack.botToken, {
      slackApiUrl: this.#config.slack.apiUrl,
      retryConfig: { retries: 0 },
      timeout: 8000,
      logger: boltLogger(this.#logger),
    });
    try {
      await client.auth.test();
      this.#refused = undefined;
      this.stop();
      this.#logger.info('Slack accepts SLACK_BOT_TOKEN again: Roster is ready, and bulk work goes on');
    } catch (err) {
      // Still refused, or Slack not reachable for the check: the next one tells.
      if (!tokenRefusal(err)) this.#logger.warn({ err }, 'could not check the bot token with Slack');
    } finally {
      this.#checking = false;
    }
  }

  /** Ends the checks (when Roster stops). */
  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }
}
