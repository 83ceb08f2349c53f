import type { SocketModeReceiver } from '@slack/bolt';
import type { WebClient } from '@slack/web-api';
import { type Logger, scrub } from '../shared/logger.ts';

export type SocketState = 'connecting' | 'connected' | 'reconnecting' | 'disconnected';

/** What Slack's `disconnect` reasons mean for whoever reads /readyz or the log. */
const DISCONNECT_REASONS: Record<string, string> = {
  refresh_requested: 'Slack asked Roster to reconnect (refresh_requested), as it does every few hours',
  warning: 'Slack is about to move the connection to another server (warning)',
  link_disabled:
    "Slack turned Socket Mode off for the app (link_disabled): turn it on again under Settings → Socket Mode in the app's configuration",
  too_many_websockets: 'Slack refused another connection for the app (too_many_websockets)',
};

/** Errors of apps.connections.open that mean the app-level token itself is refused. */
const TOKEN_REFUSED = new Set([
  'not_authed',
  'invalid_auth',
  'account_inactive',
  'token_revoked',
  'token_expired',
  // An app-level token without connections:write: no scope can be added to a token once made.
  'missing_scope',
]);

/** How long Slack waits for an envelope's ack. */
const SLACK_ACK_MS = 3000;

/** Whether a Socket Mode message is Slack's `disconnect`. */
function isDisconnect(data: unknown): boolean {
  if (typeof data !== 'string' || !data.includes('"disconnect"')) return false;
  try {
    return (JSON.parse(data) as { type?: string }).type === 'disconnect';
  } catch {
    return false;
  }
}

/** Pauses before trying again a reconnect that failed: 5 s, 10 s, 20 s, then every 30 s. */
const RETRY_MS = [5_000, 10_000, 20_000, 30_000];

/**
 * The Socket Mode connection as it really is: connected, reconnecting or disconnected, since when and why.
 * The client announces `disconnected` only when it is stopped for good; a dropped connection is seen by its
 * `close`, and it reconnects by itself after a pause, so the state says `reconnecting` meanwhile.
 */
export class SocketHealth {
  state: SocketState = 'connecting';
  since = new Date();
  /** Why the connection went down last, if known; cleared once it is up again. */
  reason?: string;
  private stopping = false;
  private everConnected = false;
  private failedReconnects = 0;
  private retryTimer?: NodeJS.Timeout;
  private readonly logger: Logger;

  constructor(logger: Logger) {
    this.logger = logger;
  }

  /**
   * Follows `client`'s connection. With `acked` (resolving once the requests being worked have been
   * acknowledged, or after the time it is given), a disconnect Slack asks for closes the socket only then.
   */
  watch(
    client: SocketModeReceiver['client'],
    opts: { acked?: (timeoutMs: number) => Promise<boolean> } = {},
  ): void {
    this.retryFailedReconnects(client);
    this.endFirstStartOnRefusal(client);
    if (opts.acked) this.ackBeforeDisconnecting(client, opts.acked);
    client.on('connecting', () => {
      // A reconnect opens its connection with start() too: it stays what it was until it is up.
      if (!this.everConnected) this.set('connecting');
    });
    client.on('connected', () => {
      this.everConnected = true;
      this.failedReconnects = 0;
      if (this.state !== 'connecting') {
        const downMs = Date.now() - this.since.getTime();
        this.logger.info({ downMs }, 'Socket Mode connection to Slack is up again');
      }
      this.reason = undefined;
      this.set('connected');
    });
    client.on('ws_message', (data: unknown) => {
      if (typeof data !== 'string' || !data.includes('"disconnect"')) return;
      try {
        const message = JSON.parse(data) as { type?: string; reason?: string };
        if (message.type !== 'disconnect') return;
        const reason = String(message.reason);
        this.reason = DISCONNECT_REASONS[reason] ?? `Slack closed the connection (${reason})`;
        const log = reason === 'link_disabled' ? this.logger.error : this.logger.info;
        log.call(this.logger, { reason }, this.reason);
      } catch {
        // not JSON: the client ignores it too
      }
    });
    client.on('error', (err: Error) => {
      // A dropped connection often comes with an error that says nothing; the close then says "lost".
      if (err.message) this.reason = `the connection failed: ${err.message}`;
    });
    client.on('close', () => {
      if (this.stopping || this.state === 'reconnecting') return;
      this.reason ??= 'the connection to Slack was lost';
      this.logger.warn({ reason: this.reason }, 'Socket Mode connection to Slack closed; reconnecting');
      this.set('reconnecting');
    });
    client.on('reconnecting', () => this.set('reconnecting'));
    client.on('disconnecting', () => {
      this.stopping = true;
      clearTimeout(this.retryTimer);
    });
    client.on('disconnected', () => this.set('disconnected'));
  }

  /** The /readyz line, and the reason Roster is not ready when the connection is not up. */
  report(): { check: string; problem?: string } {
    const since = this.since.toISOString();
    const why = this.reason ? ` (${this.reason})` : '';
    const check = `${this.state} since ${since}${this.state === 'connected' ? '' : why}`;
    if (this.state === 'connected') return { check };
    const problem =
      this.state === 'disconnected'
        ? `the Socket Mode connection to Slack is closed since ${since}${why}`
        : `the Socket Mode connection to Slack is down since ${since}${why}; Roster is reconnecting`;
    return { check, problem };
  }

  /**
   * The client reconnects by calling its start() again, and when that fails for good (Slack unreachable,
   * the app-level token refused) the rejection reaches nobody and it never tries again: Roster would stay
   * cut off from Slack until restarted. Such a failure is said here and tried again after a pause.
   */
  private retryFailedReconnects(client: SocketModeReceiver['client']): void {
    const start = client.start.bind(client);
    client.start = async () => {
      // The first start's errors reach startRoster, which says what to check.
      if (!this.everConnected) return start();
      try {
        return await start();
      } catch (err) {
        if (this.stopping) return undefined as never;
        const delay = RETRY_MS[Math.min(this.failedReconnects, RETRY_MS.length - 1)]!;
        this.failedReconnects += 1;
        const code = (err as { data?: { error?: string } }).data?.error;
        if (code && TOKEN_REFUSED.has(code)) {
          this.reason = `Slack refused SLACK_APP_TOKEN (${code}) when reconnecting: generate a new app-level token with the connections:write scope on the app's "Basic Information" page, set it and restart Roster`;
          this.set('disconnected');
        } else {
          this.reason = `Slack could not be reached to reconnect (${scrub((err as Error).message)})`;
        }
        this.logger.error({ err, retryInMs: delay }, `Socket Mode could not reconnect: ${this.reason}`);
        this.retryTimer = setTimeout(() => void client.start(), delay);
        this.retryTimer.unref();
        return undefined as never;
      }
    };
  }

  /**
   * The client tries apps.connections.open again, forever, on every refusal but a few (`missing_scope`,
   * `token_revoked` and `token_expired` among those it retries): a first start with such a token would
   * never end nor say why. Refused on the first start, it is not tried again, and the start fails, saying
   * what to check.
   */
  private endFirstStartOnRefusal(client: SocketModeReceiver['client']): void {
    const c = client as unknown as { webClient: WebClient; autoReconnectEnabled: boolean };
    const connections = c.webClient.apps.connections;
    const open = connections.open.bind(connections);
    connections.open = async (args) => {
      try {
        return await open(args);
      } catch (err) {
        const code = (err as { data?: { error?: string } }).data?.error;
        if (!this.everConnected && code && TOKEN_REFUSED.has(code)) c.autoReconnectEnabled = false;
        throw err;
      }
    };
  }

  /**
   * On Slack's `disconnect` (every few hours, `refresh_requested`), the client closes the socket at once:
   * a request still being worked would lose its ack with it, and its person see Slack's error. The message
   * is handed on once they are acknowledged, within Slack's 3 s.
   */
  private ackBeforeDisconnecting(
    client: SocketModeReceiver['client'],
    acked: (timeoutMs: number) => Promise<boolean>,
  ): void {
    const emit = client.emit.bind(client);
    client.emit = ((name: string | symbol, ...args: unknown[]) => {
      if (name === 'ws_message' && isDisconnect(args[0])) {
        void acked(SLACK_ACK_MS).then(() => emit(name, ...args));
        return true;
      }
      return emit(name, ...args);
    }) as typeof client.emit;
  }

  private set(state: SocketState): void {
    if (state === this.state) return;
    this.state = state;
    this.since = new Date();
  }
}
