type Args = Record<string, unknown>;

/**
 * Slack's Web API rate limits as documented (api.slack.com/apis/rate-limits and each method's page):
 * per method and workspace, Tier 1 about 1 a minute, Tier 2 about 20, Tier 3 about 50, Tier 4 about 100;
 * chat.postMessage about 1 a second per channel with short bursts, under a workspace-wide limit of
 * "several hundred a minute". Over a limit Slack answers HTTP 429 with Retry-After in seconds.
 */
export const TIER_PER_MINUTE = { 1: 1, 2: 20, 3: 50, 4: 100 } as const;

/** The tier of each method the stand-in answers, as its page on api.slack.com gives it. */
export const STANDIN_TIERS: Record<string, keyof typeof TIER_PER_MINUTE> = {
  'users.list': 2,
  'conversations.list': 2,
  'users.lookupByEmail': 3,
  'conversations.history': 3,
  'conversations.open': 3,
  'conversations.info': 3,
  'chat.update': 3,
  'chat.delete': 3,
  'team.info': 3,
  'users.info': 4,
  'chat.postEphemeral': 4,
  'views.open': 4,
  'views.push': 4,
  'views.update': 4,
  'views.publish': 4,
  'files.info': 4,
  'files.getUploadURLExternal': 4,
  'files.completeUploadExternal': 4,
  // "Special" tier, hundreds a minute: held to Tier 4 here.
  'auth.test': 4,
  'chat.getPermalink': 4,
};

/** chat.postMessage: per channel (1 a second, bursts of 3: a token bucket) and per workspace. */
export const POST_MESSAGE_LIMITS = {
  perChannel: { burst: 3, perSecond: 1 },
  workspace: { max: 300, windowMs: 60_000 },
};

export type Limit = { max: number; windowMs: number; retryAfter?: number };

/** How the stand-in limits calls: Slack's tiers (the default), their windows shortened by `scale`, or none. */
export type TierOptions = false | { scale?: number };

/**
 * Sliding windows of calls, one per method (and per channel for chat.postMessage): a call over a window's
 * `max` is refused, with Retry-After the seconds until the oldest call in the window leaves it.
 */
export class RateLimits {
  private readonly windows = new Map<string, number[]>();
  private readonly channels = new Map<string, { tokens: number; at: number }>();
  private readonly overrides = new Map<string, Limit>();
  private readonly tiersOn: boolean;
  /** How many times shorter every window is than Slack's (1: Slack's own). */
  scale: number;

  constructor(opts: TierOptions = {}) {
    this.tiersOn = opts !== false;
    this.scale = opts === false ? 1 : (opts.scale ?? 1);
  }

  /** Replaces the limit of one method (a test that needs speed raises it; one about 429s lowers it). */
  set(method: string, limit: Limit): void {
    this.overrides.set(method, limit);
    this.windows.delete(`method:${method}`);
  }

  /** Back to Slack's tier for the method. */
  clear(method: string): void {
    this.overrides.delete(method);
    this.windows.delete(`method:${method}`);
  }

  /** The limits a call of `method` is counted against. */
  limitsFor(method: string, args: Args): { key: string; limit: Limit; channel?: boolean }[] {
    const override = this.overrides.get(method);
    if (override) return [{ key: `method:${method}`, limit: override }];
    if (!this.tiersOn) return [];
    const scaled = (l: Limit): Limit => ({ ...l, windowMs: l.windowMs / this.scale });
    if (method === 'chat.postMessage') {
      const channel = String(args.channel ?? '').replace(/^([UW])/, 'D$1');
      return [
        { key: 'method:chat.postMessage', limit: scaled(POST_MESSAGE_LIMITS.workspace) },
        { key: `channel:${channel}`, limit: { max: 0, windowMs: 0 }, channel: true },
      ];
    }
    const tier = STANDIN_TIERS[method];
    if (!tier) return [];
    return [{ key: `method:${method}`, limit: scaled({ max: TIER_PER_MINUTE[tier], windowMs: 60_000 }) }];
  }

  /** Counts the call, or refuses it: the seconds Slack would put in Retry-After. */
  check(method: string, args: Args, now = Date.now()): number | null {
    const limits = this.limitsFor(method, args);
    const { burst, perSecond } = POST_MESSAGE_LIMITS.perChannel;
    const rate = (perSecond * this.scale) / 1000;
    const refill = (key: string) => {
      const b = this.channels.get(key) ?? { tokens: burst, at: now };
      return { tokens: Math.min(burst, b.tokens + (now - b.at) * rate), at: now };
    };
    for (const { key, limit, channel } of limits) {
      if (channel) {
        const b = refill(key);
        this.channels.set(key, b);
        // Slack's per-channel limit: about one a second, so the wait is the time to the next token.
        if (b.tokens < 1) return Math.max(1, Math.ceil((1 - b.tokens) / rate / 1000));
        continue;
      }
      const at = (this.windows.get(key) ?? []).filter((t) => now - t < limit.windowMs);
      this.windows.set(key, at);
      if (at.length >= limit.max) {
        const oldest = at[0] ?? now;
        return limit.retryAfter ?? Math.max(1, Math.ceil((oldest + limit.windowMs - now) / 1000));
      }
    }
    for (const { key, channel } of limits) {
      if (channel) {
        const b = this.channels.get(key);
        if (b) b.tokens -= 1;
      } else this.windows.get(key)?.push(now);
    }
    return null;
  }
}
