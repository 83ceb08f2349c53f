import type { Logger } from '../../../shared/logger.ts';

/**
 * Keeps a progress message up to date while an import runs: it sends the latest count on a fixed
 * cadence (never two updates at once), whatever the pace of the batches, and once more when stopped.
 */
export class ProgressReporter {
  private done = 0;
  private total = 0;
  private timer?: NodeJS.Timeout;
  private inflight?: Promise<void>;
  private readonly send: (done: number, total: number) => Promise<unknown>;
  private readonly intervalMs: number;
  private readonly logger?: Logger;

  constructor(
    send: (done: number, total: number) => Promise<unknown>,
    opts: { intervalMs?: number; logger?: Logger } = {},
  ) {
    this.send = send;
    // chat.update is Tier 3 (50 a minute): one update every 3 s leaves room for everything else.
    this.intervalMs = opts.intervalMs ?? 3000;
    this.logger = opts.logger;
  }

  set(done: number, total: number): void {
    this.done = done;
    this.total = total;
  }

  start(): void {
    this.tick();
    this.timer = setInterval(() => this.tick(), this.intervalMs);
  }

  /** Stops the updates and waits for the one under way, so the summary always comes last. */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.inflight;
  }

  private tick(): void {
    if (this.inflight) return;
    this.inflight = this.send(this.done, this.total)
      .then(
        () => undefined,
        (err) => this.logger?.warn({ err }, 'could not update the import progress message'),
      )
      .finally(() => {
        this.inflight = undefined;
      });
  }
}
