import { createHash } from 'node:crypto';
import type { EntityManager } from '@mikro-orm/postgresql';
import {
  ErrorCode,
  type RetryOptions,
  type WebAPICallResult,
  type WebAPIRateLimitedError,
  WebClient,
  type WebClientOptions,
} from '@slack/web-api';
import { query, sql } from '../db/sql.ts';
import { TryLater } from '../shared/jobs.ts';
import type { Logger } from '../shared/logger.ts';
import { withRetryAfter } from './retry-after.ts';
import { TokenRefused, type TokenWatch } from './token-watch.ts';

/** Calls a minute Slack allows each tier of Web API methods, per method and workspace (its documented floors). */
export const TIER_PER_MINUTE = { 1: 1, 2: 20, 3: 50, 4: 100 } as const;
type Tier = keyof typeof TIER_PER_MINUTE;

/** The tier of every Web API method Roster calls, from each method's page on api.slack.com. */
export const METHOD_TIERS: Record<string, Tier> = {
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
  // "Special" methods that allow hundreds a minute: paced as Tier 4.
  'auth.test': 4,
  'chat.getPermalink': 4,
};

/**
 * chat.postMessage is limited per channel (about one message a second, short bursts allowed) and per
 * workspace ("several hundred a minute"). Bulk work stays under both.
 */
export const POST_MESSAGE = { perChannelPerMinute: 50, workspacePerMinute: 180, workspaceBurst: 10 } as const;

/**
 * The share of each tier bulk work may use: the rest is left for the calls that answer a person right now,
 * which are never paced. users.list is called only by bulk work (the directory sync), so it gets more.
 */
const BULK_SHARE = 0.75;
const SHARE: Record<string, number> = { 'users.list': 0.85 };

/** A bucket: `perMinute` calls a minute on average, at most `burst` at once after a quiet spell. */
export type Bucket = { key: string; perMinute: number; burst: number };

/** The buckets a bulk call of `method` takes a token from: the method's, and the channel's for a post. */
export function bucketsFor(method: string, args: Record<string, unknown>, scale = 1): Bucket[] {
  if (method === 'chat.postMessage') {
    const buckets: Bucket[] = [
      {
        key: 'method:chat.postMessage',
        perMinute: POST_MESSAGE.workspacePerMinute * scale,
        burst: POST_MESSAGE.workspaceBurst,
      },
    ];
    const channel = typeof args.channel === 'string' ? args.channel : undefined;
    if (channel) {
      buckets.push({
        key: `channel:${channel}`,
        perMinute: POST_MESSAGE.perChannelPerMinute * scale,
        burst: 1,
      });
    }
    return buckets;
  }
  const perMinute = TIER_PER_MINUTE[METHOD_TIERS[method] ?? 3];
  return [
    {
      key: `method:${method}`,
      perMinute: perMinute * (SHARE[method] ?? BULK_SHARE) * scale,
      burst: Math.max(1, Math.floor(perMinute * 0.1)),
    },
  ];
}

/** Slack is busy for this work: the call was not made; try again after `retryInMs`. */
/** How long work waits after Slack took a call and did not answer it in time. */
const NO_ANSWER_RETRY_MS = 30_000;

/** Set on the error of a post (chat.postMessage) that ran out of time: Slack may have made it. */
const UNANSWERED_POST = Symbol('unanswered post');

/** Marks a post's timeout (see UNANSWERED_POST), so the client does not simply make it again. */
function markUnansweredPosts(inner: typeof fetch): typeof fetch {
  return async (input, init) => {
    try {
      return await inner(input, init);
    } catch (err) {
      const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
      const { name, message } = err as { name?: string; message?: string };
      // fetch's own error may be of another realm (the Web API client would keep only its text): a new one.
      if (name === 'TimeoutError' && /\/chat\.postMessage$/.test(url)) {
        throw Object.assign(new Error(`TimeoutError: ${message}`), { name, [UNANSWERED_POST]: true });
      }
      throw err;
    }
  };
}

/** How long a DM Slack did not answer is looked for before being posted again (its job's tries). */
const UNANSWERED_KEPT_MS = 60 * 60_000;

/**
 * Which DM a post is: its channel, its text and what its buttons carry (two invitations of one inviter to
 * one person have the same text, but their Accept buttons name each its own). A post without text is never
 * looked for.
 */
function postKey(args: Record<string, unknown> | undefined): string | undefined {
  const text = args?.text;
  const to = String(args?.channel ?? '');
  if (typeof text !== 'string' || !/^[UWD][A-Z0-9]+$/.test(to)) return undefined;
  return createHash('sha256')
    .update(`${to}\n${text}\n${carried(args?.blocks)}`)
    .digest('base64url');
}

/** The values a message's buttons and menus carry, in order: what tells it from another of the same text. */
function carried(blocks: unknown): string {
  const values: string[] = [];
  const walk = (node: unknown): void => {
    if (Array.isArray(node)) for (const item of node) walk(item);
    else if (node && typeof node === 'object') {
      for (const [key, value] of Object.entries(node)) {
        if (key === 'value' && typeof value === 'string') values.push(value);
        else walk(value);
      }
    }
  };
  walk(blocks);
  return JSON.stringify(values);
}

/** A call whose every try ran out of time (the client's `timeout`) with no answer from Slack. */
function noAnswer(err: unknown): boolean {
  const e = err as { code?: string; original?: { name?: string; message?: string } };
  // The client wraps what fetch threw; one that is not an Error of this realm arrives as its string.
  return (
    e?.code === ErrorCode.RequestError &&
    (e.original?.name === 'TimeoutError' || /^TimeoutError\b/.test(e.original?.message ?? ''))
  );
}

export class SlackBusy extends TryLater {
  readonly method: string;
  constructor(method: string, retryInMs: number, why: string) {
    super(
      retryInMs,
      `Slack paces ${method}: ${why}; trying again in ${Math.ceil(retryInMs / 1000)} s`,
      `Slack paces ${method}; each waits for its turn`,
    );
    this.name = 'SlackBusy';
    this.method = method;
  }
}

/** What pacing cost, for benches and logs. */
export type PacingStats = {
  taken: number;
  waits: number;
  waitedMs: number;
  queries: number;
  queryMs: number;
};

/**
 * Token buckets in Postgres, shared by every Roster instance on the database: one statement per bucket
 * takes a token (refilling it for the time passed) or says how long to wait, and a 429's Retry-After holds
 * a bucket for every instance at once.
 */
export class SlackPacer {
  readonly stats: PacingStats = { taken: 0, waits: 0, waitedMs: 0, queries: 0, queryMs: 0 };
  private readonly em: () => EntityManager;

  constructor(em: () => EntityManager) {
    this.em = em;
  }

  /** Takes a token from `bucket`: 0 when taken, otherwise the milliseconds to wait (nothing taken). */
  async take(bucket: Bucket): Promise<number> {
    const rate = bucket.perMinute / 60;
    const refilled = sql`least(${bucket.burst}::float8, p.tokens + extract(epoch from now() - p.refilled_at) * ${rate}::float8)`;
    const open = sql`(p.held_until is null or p.held_until <= now())`;
    const [row] = await this.run<{ granted: boolean; tokens: number; held_ms: number | null }>(
      sql`insert into slack_pace as p (key, tokens, refilled_at, granted)
          values (${bucket.key}, ${bucket.burst - 1}::float8, now(), true)
          on conflict (key) do update set
            granted = ${open} and ${refilled} >= 1,
            tokens = ${refilled} - case when ${open} and ${refilled} >= 1 then 1 else 0 end,
            refilled_at = now()
          returning granted, tokens,
            extract(epoch from greatest(held_until - now(), interval '0')) * 1000 as held_ms`,
    );
    if (!row) throw new Error('slack_pace: no row returned');
    if (row.granted) {
      this.stats.taken += 1;
      return 0;
    }
    const heldMs = Number(row.held_ms ?? 0);
    const refillMs = ((1 - Number(row.tokens)) / rate) * 1000;
    return Math.max(1, Math.ceil(Math.max(heldMs, refillMs)));
  }

  /** Gives back a token taken for a call that was then not made. */
  async giveBack(bucket: Bucket): Promise<void> {
    await this.run(
      sql`update slack_pace set tokens = least(${bucket.burst}::float8, tokens + 1) where key = ${bucket.key}`,
    );
  }

  /** Slack answered 429: no instance calls this bucket's method until Retry-After has passed. */
  async hold(key: string, retryAfterMs: number): Promise<void> {
    await this.run(
      sql`insert into slack_pace as p (key, tokens, refilled_at, held_until, granted)
          values (${key}, 0, now(), now() + ${retryAfterMs} * interval '1 millisecond', false)
          on conflict (key) do update set tokens = 0, refilled_at = now(),
            held_until = greatest(coalesce(p.held_until, now()), excluded.held_until)`,
    );
  }

  /** Forgets buckets of channels not posted to for an hour (one row per DM would otherwise pile up). */
  async prune(): Promise<number> {
    const rows = await this.run<{ key: string }>(
      sql`delete from slack_pace where key like 'channel:%' and refilled_at < now() - interval '1 hour'
          and (held_until is null or held_until < now()) returning key`,
    );
    return rows.length;
  }

  private async run<T>(statement: ReturnType<typeof sql>): Promise<T[]> {
    const started = performance.now();
    try {
      return await query<T>(this.em(), statement);
    } finally {
      this.stats.queries += 1;
      this.stats.queryMs += performance.now() - started;
    }
  }
}

export type PacedClientOptions = {
  pacer: SlackPacer;
  logger: Logger;
  /** Longest a call waits in the process for its turn; past that it throws {@link SlackBusy}. */
  maxWaitMs?: number;
  /** Multiplies every pace: for a Slack stand-in whose windows are shortened by the same factor. */
  scale?: number;
  /**
   * Whether Slack still takes the bot token: while it refuses it, no call is made, and a call it refuses
   * throws {@link TokenRefused}, so the job waits for the token rather than failing on every try.
   */
  watch?: TokenWatch;
};

/**
 * The Web API client for bulk work (jobs): every call first takes its turn from the shared buckets,
 * waiting briefly when the turn is near and throwing {@link SlackBusy} when it is not, so a job is
 * rescheduled instead of holding a worker. A 429 is never slept on here: it holds the method for every
 * instance and the call throws {@link SlackBusy}. It shares no queue with the client that answers people.
 */
export class PacedWebClient extends WebClient {
  private readonly pacing: Required<Omit<PacedClientOptions, 'logger' | 'watch'>> & {
    logger: Logger;
    watch?: TokenWatch;
  };
  /** Set when Roster stops: calls waiting for their turn give up at once, so their jobs can be requeued. */
  private closed = false;
  private readonly sleepers = new Set<() => void>();

  /** The pace multiplier (see {@link PacedClientOptions.scale}); a bench sets it back to 1 between runs. */
  get scale(): number {
    return this.pacing.scale;
  }
  set scale(value: number) {
    this.pacing.scale = value;
  }

  constructor(
    token: string,
    opts: PacedClientOptions & { client: Omit<WebClientOptions, 'fetch' | 'rejectRateLimitedCalls'> },
  ) {
    // A 429 without Retry-After holds the method too, for a default wait (see DEFAULT_RETRY_AFTER_S).
    // Without one given, the Web API client's own default (ten retries in about thirty minutes).
    const given = opts.client.retryConfig ?? { retries: 10, factor: 1.96821, randomize: true };
    super(token, {
      ...opts.client,
      rejectRateLimitedCalls: true,
      fetch: withRetryAfter(markUnansweredPosts((input, init) => fetch(input, init))),
      // A post Slack did not answer may have been made: it is looked for (see findPost), not made again here.
      // (The client hands retryConfig to p-retry, whose onFailedAttempt ends the retries by throwing.)
      retryConfig: {
        ...given,
        onFailedAttempt: (err: Error) => {
          const original = (err as { original?: object }).original;
          if (original && UNANSWERED_POST in original) throw err;
        },
      } as RetryOptions,
    });
    this.pacing = { maxWaitMs: 10_000, scale: 1, ...opts };
  }

  /** DMs whose post Slack did not answer, by {@link postKey}: when the first was sent. */
  private readonly unanswered = new Map<string, number>();

  private remember(key: string, sentAt: number): void {
    this.unanswered.set(key, sentAt);
    // Kept while the job may try again (its waits and retries), and no more than a few hundred.
    for (const [k, at] of this.unanswered) {
      if (Date.now() - at > UNANSWERED_KEPT_MS || this.unanswered.size > 500) this.unanswered.delete(k);
    }
  }

  /**
   * The DM `args` (one with a {@link postKey}) would post, if the bot posted it since `sentAt`: read back
   * from the conversation, in turn like any bulk call (the bot may read its DMs, not channels). When it was,
   * it is forgotten as unanswered and the caller gets it as if just posted. Throws when Slack is busy.
   */
  private async foundPosted(
    key: string,
    args: Record<string, unknown>,
    sentAt: number,
  ): Promise<WebAPICallResult | undefined> {
    const to = String(args.channel);
    const channel = to.startsWith('D')
      ? to
      : ((await this.apiCall('conversations.open', { users: to })) as { channel?: { id?: string } }).channel
          ?.id;
    if (!channel) return undefined;
    const { messages = [] } = (await this.apiCall('conversations.history', {
      channel,
      // A second of leeway for the clocks of Roster and Slack.
      oldest: ((sentAt - 1000) / 1000).toFixed(6),
      // At most 15: what Slack gives a non-Marketplace app distributed to other workspaces.
      limit: 15,
    })) as { messages?: { bot_id?: string; text?: string; ts?: string; blocks?: unknown }[] };
    const wanted = carried(args.blocks);
    const mine = messages.find((m) => m.bot_id && m.text === args.text && carried(m.blocks) === wanted);
    if (!mine) return undefined;
    this.unanswered.delete(key);
    this.pacing.logger.warn(
      { method: 'chat.postMessage' },
      'Slack did not answer a DM in time, but it was posted: not posting it again',
    );
    return { ok: true, channel, ts: mine.ts, message: mine } as WebAPICallResult;
  }

  /** Ends every wait for a turn now and refuses new ones: called first when Roster stops. */
  close(): void {
    this.closed = true;
    for (const wake of this.sleepers) wake();
    this.sleepers.clear();
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((done) => {
      const wake = () => {
        clearTimeout(timer);
        this.sleepers.delete(wake);
        done();
      };
      const timer = setTimeout(wake, ms);
      this.sleepers.add(wake);
    });
  }

  override async apiCall(method: string, options: Record<string, unknown> = {}): Promise<WebAPICallResult> {
    const { pacer, maxWaitMs, scale, logger, watch } = this.pacing;
    if (this.closed) throw new SlackBusy(method, 1000, 'Roster is stopping');
    const refused = watch?.refused;
    if (refused) throw new TokenRefused(method, refused.code, watch.recheckMs);
    const buckets = bucketsFor(method, options, scale);
    let budget = maxWaitMs;
    for (;;) {
      for (let taken = 0; taken < buckets.length; ) {
        const bucket = buckets[taken]!;
        const waitMs = await pacer.take(bucket);
        if (waitMs === 0) {
          taken += 1;
          continue;
        }
        // Tokens already taken are given back: a caller that waits or gives up must not spend them.
        for (const got of buckets.slice(0, taken)) await pacer.giveBack(got);
        taken = 0;
        if (waitMs > budget) throw new SlackBusy(method, waitMs, `its turn is ${waitMs} ms away`);
        pacer.stats.waits += 1;
        pacer.stats.waitedMs += waitMs;
        budget -= waitMs;
        await this.sleep(waitMs);
        if (this.closed) throw new SlackBusy(method, waitMs, 'Roster is stopping');
      }
      // A DM whose post went unanswered before (its job waited and tries again) may have been posted since.
      const unanswered = method === 'chat.postMessage' ? postKey(options) : undefined;
      const before = unanswered ? this.unanswered.get(unanswered) : undefined;
      if (unanswered && before !== undefined) {
        // Not knowing whether it was posted, the job waits (Slack busy) rather than posting it blindly.
        const posted = await this.foundPosted(unanswered, options, before).catch((err) => {
          if (isSlackBusy(err)) throw err;
          return undefined;
        });
        if (posted) return posted;
      }
      const sentAt = before ?? Date.now();
      try {
        const result = await super.apiCall(method, options);
        if (unanswered) this.unanswered.delete(unanswered);
        return result;
      } catch (err) {
        const e = err as WebAPIRateLimitedError;
        if (watch?.noteError(err)) throw new TokenRefused(method, watch.refused!.code, watch.recheckMs);
        // A DM Slack took and answered late was posted: it is not posted again, in the job's next try either.
        if (noAnswer(err) && unanswered) {
          const posted = await this.foundPosted(unanswered, options, sentAt).catch(() => undefined);
          if (posted) return posted;
          this.remember(unanswered, sentAt);
        }
        // Slack took the request and did not answer in time, on every try: a wait, as for a 429, not a "no"
        // (an invitation's DM is not turned into an email because Slack was slow).
        if (noAnswer(err)) {
          logger.warn({ method }, 'Slack did not answer in time: the job waits and tries again');
          throw new SlackBusy(method, NO_ANSWER_RETRY_MS, 'Slack did not answer in time');
        }
        if (e.code !== ErrorCode.RateLimitedError) throw err;
        const retryMs = Math.max(1, e.retryAfter) * 1000;
        logger.warn({ method, retryAfter: e.retryAfter }, 'Slack answered 429: holding the method back');
        await pacer.hold(buckets[0]!.key, retryMs);
        // Calls that answer people share Slack's limits unpaced, so a short 429 can come even in turn: one
        // within what this call may still wait is waited out and the call made again.
        if (retryMs > budget) throw new SlackBusy(method, retryMs, `Slack asked to wait ${e.retryAfter} s`);
        budget -= retryMs;
      }
    }
  }
}

/**
 * Whether an error from a Slack call means "not now" rather than "no": such work is retried, not given up.
 * A bot token Slack refuses is a "no" for as long as it lasts: work with another way (an invitation by
 * email rather than by DM) takes it, as it would Slack's own refusal.
 */
export function isSlackBusy(err: unknown): boolean {
  if (err instanceof TokenRefused) return false;
  return err instanceof TryLater || (err as { code?: string })?.code === ErrorCode.RateLimitedError;
}
