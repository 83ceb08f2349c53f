import type { SocketModeReceiver } from '@slack/bolt';
import type { Logger } from '../shared/logger.ts';

export type SocketState = 'connecting' | 'connected' | 'reconnecting' | 'disconnected';

/** What Slack's `disconnect` reasons mean for whoever reads /readyz or the log. */
const DISCONNECT_REASONS: Record<string, string> = {
  refresh_requested: 'Slack asked Roster to reconnect (refresh_requested), as it does every few hours',
  warning: 'Slack is about to move the connection to another server (warning)',
  link_disabled:
    "Slack turned Socket Mode off for the app (link_disabled): turn it on again under Settings → Socket Mode in the app's configuration",
  too_many_websockets: 'Slack refused another connection for the app (too_many_websockets)',
};

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
  private readonly logger: Logger;

  constructor(logger: Logger) {
    this.logger = logger;
  }

  watch(client: SocketModeReceiver['client']): void {
    client.on('connecting', () => {
      // A reconnect opens its connection with start() too: it stays "reconnecting" until it is up.
      if (this.state !== 'reconnecting') this.set('connecting');
    });
    client.on('connected', () => {
      if (this.state === 'reconnecting') {
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

  private set(state: SocketState): void {
    if (state === this.state) return;
    this.state = state;
    this.since = new Date();
  }
}
