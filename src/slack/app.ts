import type { EntityManager } from '@mikro-orm/postgresql';
import { App, type CodedError, HTTPReceiver, type ReceiverEvent, SocketModeReceiver } from '@slack/bolt';
import type { ExtendedErrorHandlerArgs } from '@slack/bolt/dist/App.js';
import { WebClient } from '@slack/web-api';
import type { Config } from '../config.ts';
import type { AccountDirectory } from '../features/accounts/account.directory.ts';
import { Account } from '../features/accounts/account.entity.ts';
import { asDomainError } from '../shared/errors.ts';
import { referenceId } from '../shared/ids.ts';
import type { JobQueue } from '../shared/jobs.ts';
import type { Logger } from '../shared/logger.ts';
import { withoutAddresses } from '../shared/mailer.ts';
import { esc } from './blocks.ts';
import type { RosterContext } from './context.ts';
import { surfaceOf, teamIdOf, userIdOf } from './context.ts';
import { DurableEvents } from './durable-events.ts';
import { slackRefusal } from './errors.ts';
import { boltLogger } from './logger.ts';
import { tellPerson } from './notify.ts';
import { EventRateLimits } from './rate-limited.ts';
import { ReplayedRequest, refuseReplays } from './replay.ts';
import { refuseForeignResponseUrls } from './response-url.ts';
import { withRetryAfter } from './retry-after.ts';
import type { TokenWatch } from './token-watch.ts';

/** The longest Retry-After a call that answers a person waits out; never for a call that spends a trigger. */
const SHORT_RETRY_AFTER_S = 1;

/** Slack's Web API, with a 429 that gave no Retry-After read as a rate limit all the same. */
const slackFetch = withRetryAfter((input, init) => fetch(input, init));

/**
 * One short wait, at most: a message answering a person that meets Slack's per-channel limit (Retry-After
 * of a second) goes out a second later. views.open and views.push never wait, since their trigger lasts
 * only 3 s; any longer Retry-After is not waited out either: the 429 reaches the caller.
 */
const patientOnce: typeof fetch = async (input, init) => {
  const res = await slackFetch(input, init);
  if (res.status !== 429) return res;
  const seconds = Number(res.headers.get('retry-after'));
  const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
  if (!(seconds > 0 && seconds <= SHORT_RETRY_AFTER_S) || /\/views\.(open|push)$/.test(url)) return res;
  await res.body?.cancel();
  await new Promise((r) => setTimeout(r, seconds * 1000));
  return slackFetch(input, init);
};

/**
 * The Web API client that answers people (listeners' `client`): it shares no queue with bulk work, and it
 * never sleeps on a Retry-After longer than a second (none at all for a call spending a trigger). A
 * trigger_id lasts 3 s, so waiting out a longer one would lose the form anyway: the call fails at once and
 * the person is told to try again (see src/slack/errors.ts). A network blip is retried twice, quickly.
 */
export const INTERACTIVE_CLIENT = {
  rejectRateLimitedCalls: true,
  retryConfig: { retries: 2, factor: 1, minTimeout: 100, maxTimeout: 300 },
  timeout: 10_000,
  fetch: patientOnce,
} as const;

export type SlackAppOptions = {
  config: Config;
  logger: Logger;
  em: EntityManager;
  /** The installed workspaces' accounts; requests from any other team are refused. */
  accounts: AccountDirectory;
  /**
   * Where a message to a person goes when Slack asks Roster to slow down (see nowOrLater), and where events'
   * durable work is queued (see DurableEvents).
   */
  jobs: JobQueue;
  /** Wait for the handler before answering Slack's HTTP request; tests use it for determinism. */
  processBeforeResponse?: boolean;
  /** Told of every listener's failure, so a refusal of the bot token is noticed (and said on /readyz). */
  tokenWatch?: TokenWatch;
};

function unwrap(error: CodedError): unknown {
  const e = error as CodedError & { original?: unknown; originals?: unknown[] };
  return e.original ?? e.originals?.[0] ?? e;
}

export const NOT_INSTALLED = 'Roster is not installed in this workspace.';

/** Work to do right after a request's ack() has answered Slack; set by the middleware, run once. */
type AfterAck = { run?: () => Promise<void> };

/** A request's ack() as Bolt gave it, and whether a listener called it: the error handler answers one that did not. */
type Unacked = { acked: boolean; ack: (response?: unknown) => Promise<void> };

/**
 * Bolt's App, with every request's ack() followed by the work the middleware deferred past it (loading the
 * account), so a listener that acks first answers Slack at once and still finds its account loaded.
 * It keeps count of the requests still being worked: their listeners go on after the ack has answered
 * Slack (over HTTP and in Socket Mode alike), so a stop waits for them before it closes the database.
 */
export class RosterApp extends App {
  /** Handlers of events whose effect must survive a failure after Slack's ack; done by jobs. */
  readonly durableEvents = new DurableEvents();
  /** What catches up on a workspace's events Slack dropped over its hourly limit (see EventRateLimits). */
  readonly rateLimits = new EventRateLimits();
  /** Whom Slack's notices are checked against and told in; set by createSlackApp. */
  notices?: { accounts: AccountDirectory; logger: Logger };
  readonly #inFlight = new Set<Promise<unknown>>();
  /** Requests not yet acked, each settled by its ack, or by the end of its work when none came. */
  readonly #unacked = new Set<Promise<void>>();

  /**
   * Every request Slack sends, from either receiver: counted until its work ends, and until it is acked,
   * whatever stage (a replay refused, the listener) acks it.
   */
  override processEvent(event: ReceiverEvent): Promise<void> {
    let answered = () => {};
    const answer = new Promise<void>((r) => {
      answered = r;
    });
    this.#unacked.add(answer);
    void answer.then(() => this.#unacked.delete(answer));
    const work = this.handle({
      ...event,
      ack: (response?: unknown) => event.ack(response).finally(answered),
    });
    const tracked = work.catch(() => {});
    void tracked.finally(answered);
    this.#inFlight.add(tracked);
    void tracked.finally(() => this.#inFlight.delete(tracked));
    return work;
  }

  /** A request's work, inside what processEvent counts; refuseReplays puts its check in front of it. */
  handle(event: ReceiverEvent): Promise<void> {
    const afterAck: AfterAck = {};
    const unacked: Unacked = { acked: false, ack: event.ack };
    // Bolt finds no type in Slack's app_rate_limited notice and would leave it unanswered (a 404 after 3 s).
    if (this.notices && EventRateLimits.isNotice(event.body)) {
      return this.rateLimits.answer(event, this.notices.accounts, this.notices.logger);
    }
    return super.processEvent({
      ...event,
      ack: async (response?: unknown) => {
        unacked.acked = true;
        await event.ack(response);
        const run = afterAck.run;
        afterAck.run = undefined;
        await run?.();
      },
      customProperties: { ...event.customProperties, rosterAfterAck: afterAck, rosterUnacked: unacked },
    });
  }

  /** Requests whose listeners are still at work. */
  get inFlight(): number {
    return this.#inFlight.size;
  }

  /**
   * Resolves once every request being worked has finished (including any that started meanwhile), or
   * after `timeoutMs`; true when none was left.
   */
  settle(timeoutMs: number): Promise<boolean> {
    return until(this.#inFlight, timeoutMs);
  }

  /**
   * Resolves once every request being worked has been acked (or has ended without an ack), or after
   * `timeoutMs`; true when none was left. In Socket Mode the ack travels on the socket, which a stop may
   * close only then.
   */
  acked(timeoutMs: number): Promise<boolean> {
    return until(this.#unacked, timeoutMs);
  }
}

/** Waits until `pending` is empty (what joins it meanwhile too), or `timeoutMs`; true when it emptied. */
async function until(pending: Set<Promise<unknown>>, timeoutMs: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((r) => {
    timer = setTimeout(() => r(false), timeoutMs);
  });
  try {
    while (pending.size > 0) {
      const done = await Promise.race([Promise.all([...pending]).then(() => true), timeout]);
      if (!done) return false;
    }
    return true;
  } finally {
    clearTimeout(timer);
  }
}

/** The Bolt app: HTTP receiver at /slack/events (or Socket Mode), request middleware and one error handler. */
export function createSlackApp(opts: SlackAppOptions): { app: RosterApp; receiver?: HTTPReceiver } {
  const { config, logger } = opts;
  const log = boltLogger(logger);
  const socketMode = Boolean(config.slack.appToken);
  const receiver = socketMode
    ? undefined
    : new HTTPReceiver({
        signingSecret: config.slack.signingSecret,
        endpoints: '/slack/events',
        processBeforeResponse: opts.processBeforeResponse ?? false,
        logger: log,
      });
  const socketReceiver = socketMode ? socketModeReceiver(config, log) : undefined;
  const app = new RosterApp({
    token: config.slack.botToken,
    signingSecret: config.slack.signingSecret,
    receiver: receiver ?? socketReceiver,
    logger: log,
    clientOptions: { slackApiUrl: config.slack.apiUrl, logger: log, ...INTERACTIVE_CLIENT },
    deferInitialization: true,
    extendedErrorHandler: true,
    // Nothing reads context.conversation; Bolt's default store would run on every request.
    convoStore: false,
  });

  app.notices = { accounts: opts.accounts, logger };
  refuseReplays(app, {
    em: opts.em,
    logger,
    accounts: opts.accounts,
    jobs: opts.jobs,
    durable: app.durableEvents,
    // Waiting for the handler, before the answer, means the event's jobs when they do its work.
    awaitDurable: Boolean(receiver && opts.processBeforeResponse),
  });
  refuseForeignResponseUrls(app, config.slack.apiUrl, logger);
  if (opts.tokenWatch) watchUninstalls(app, opts.tokenWatch);

  app.use(async (args) => {
    const { body, context, next } = args;
    const payload = body as Record<string, any>;
    const teamId = context.teamId ?? teamIdOf(payload);
    const identity = teamId ? opts.accounts.find(teamId) : undefined;
    const surface = surfaceOf(payload);
    if (!identity) {
      // Nothing is looked up or written for a workspace that has not installed Roster; Slack gets a plain ack.
      logger.warn(
        { team: teamId ?? null, surface },
        'request from a workspace where Roster is not installed refused',
      );
      const ack = (args as { ack?: (response?: unknown) => Promise<void> }).ack;
      await ack?.(payload.command ? { response_type: 'ephemeral', text: NOT_INSTALLED } : undefined);
      return;
    }
    const userId = context.userId ?? userIdOf(payload);
    const em = opts.em.fork();
    // The account's identity is known without the database; its settings are read once Slack has its ack,
    // except where the ack waits for the handler anyway: events are acked before any middleware, and a view
    // submission's ack carries the handler's validation errors.
    const account = em.getReference(Account, identity.id);
    const load = async () => {
      await em.findOneOrFail(Account, identity.id);
    };
    if (payload.type === 'event_callback' || payload.type?.startsWith('view_')) await load();
    else (context.rosterAfterAck as AfterAck).run = load;
    const requestLog = logger.child({ team: teamId, user: userId, surface });
    const rc: RosterContext = { em, log: requestLog, account, teamId: identity.teamId, userId, surface };
    context.roster = rc;
    await next();
  });

  app.error((async ({ error, body, context }: ExtendedErrorHandlerArgs) => {
    const original = unwrap(error);
    const rc = context.roster as RosterContext | undefined;
    const requestLog = rc?.log ?? logger;
    const payload = (body ?? {}) as Record<string, any>;
    if (original instanceof ReplayedRequest) return;
    opts.tokenWatch?.noteError(original);
    // `text` for a message (mrkdwn), `plain` for a form's field, which Slack shows as typed.
    const answer = async (text: string, plain: string) => {
      // A listener that failed before its ack leaves Slack waiting: a form would show Slack's own error after
      // 3 s, and keep no word of Roster's. A form is answered under its first field instead, open, with what
      // the person typed; any other request is acknowledged, and the person told as usual.
      const unacked = context.rosterUnacked as Unacked | undefined;
      if (unacked && !unacked.acked) {
        unacked.acked = true;
        const field = payload.type === 'view_submission' ? firstInputBlock(payload.view) : undefined;
        if (field) {
          await unacked.ack({ response_action: 'errors', errors: { [field]: plain } });
          return;
        }
        try {
          await unacked.ack();
        } catch (err) {
          // The request was handled before (see refuseReplays): the person was answered then.
          if (err instanceof ReplayedRequest) return;
          throw err;
        }
      }
      await tellPerson(opts.jobs, app.client, payload, text).catch((err) =>
        requestLog.warn({ err }, 'could not tell the person about an error'),
      );
    };
    const domain = asDomainError(original);
    if (domain) {
      // The person is told the whole message; the log keeps it without the addresses it may name.
      requestLog.info({ code: domain.code }, withoutAddresses(domain.message));
      // Its words are plain text, and may hold names as people typed them: escaped for mrkdwn.
      await answer(esc(domain.message), domain.message);
      return;
    }
    const refused = slackRefusal(original);
    if (refused) {
      requestLog.warn({ slackError: refused.code }, 'Slack refused a call made for a request');
      await answer(refused.text, refused.text.replace(/^:[a-z_]+: /, '').replaceAll('`', ''));
      return;
    }
    const ref = referenceId();
    requestLog.error({ err: original, ref }, 'Slack request failed');
    const again = `Please try again; if it keeps happening, give your admin this reference: \`${ref}\`.`;
    await answer(
      `:warning: Something went wrong on our side. ${again}`,
      `Something went wrong on our side. ${again.replaceAll('`', '')}`,
    );
  }) as Parameters<typeof app.error>[0]);

  return { app, receiver };
}

/** The block id of a submitted form's first input, where Slack can show an error; undefined if it has none. */
function firstInputBlock(view: unknown): string | undefined {
  const blocks = (view as { blocks?: { type?: string; block_id?: string }[] } | undefined)?.blocks;
  return Array.isArray(blocks) ? blocks.find((b) => b?.type === 'input' && b.block_id)?.block_id : undefined;
}

/**
 * Slack says the app was uninstalled from the workspace, or its bot token revoked: every call with the token
 * will be refused, so Roster says so and holds bulk work back at once, rather than at the next call.
 */
function watchUninstalls(app: App, watch: TokenWatch): void {
  app.event('app_uninstalled', async () => {
    watch.noteRefused('app_uninstalled');
  });
  app.event('tokens_revoked', async ({ event }) => {
    // A user's token (none of Roster's) is left alone; a bot's is Roster's own, its only bot.
    if (event.tokens.bot?.length) watch.noteRefused('tokens_revoked');
  });
}

/**
 * Socket Mode's receiver opens its connection with apps.connections.open through a Web API client of its
 * own, which Bolt builds on slack.com whatever the app's options say; it gets SLACK_API_URL like every
 * other call.
 */
function socketModeReceiver(config: Config, log: ReturnType<typeof boltLogger>): SocketModeReceiver {
  const appToken = config.slack.appToken ?? '';
  const receiver = new SocketModeReceiver({ appToken, logger: log });
  (receiver.client as unknown as { webClient: WebClient }).webClient = new WebClient(undefined, {
    slackApiUrl: config.slack.apiUrl,
    logger: log,
    headers: { Authorization: `Bearer ${appToken}` },
    retryConfig: { retries: 10, factor: 1.3 },
  });
  return receiver;
}
