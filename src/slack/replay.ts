import type { EntityManager } from '@mikro-orm/postgresql';
import type { AckFn, ReceiverEvent } from '@slack/bolt';
import type { AccountDirectory } from '../features/accounts/account.directory.ts';
import { Account } from '../features/accounts/account.entity.ts';
import { auditRefusal } from '../features/audit/audit.service.ts';
import type { JobQueue } from '../shared/jobs.ts';
import type { Logger } from '../shared/logger.ts';
import { surfaceOf, teamIdOf, userIdOf } from './context.ts';
import { type DurableEvents, SLACK_EVENT_JOB } from './durable-events.ts';
import { firstTime } from './once.ts';

/** Thrown inside a listener whose request was already handled; the error handler drops it quietly. */
export class ReplayedRequest extends Error {
  readonly key: string;
  constructor(key: string) {
    super('request already handled');
    this.key = key;
    this.name = 'ReplayedRequest';
  }
}

/**
 * The one key Slack gives each act of a person: every command, click, shortcut and form submission
 * carries a trigger id of its own, every event an event id. A request sent again with the same key (a
 * replay of a signed request within Slack's five-minute window, or Slack retrying an event) is the same
 * act, so it must not act twice.
 */
export function replayKey(body: Record<string, any>): string | undefined {
  if (typeof body.event_id === 'string') return `event:${body.event_id}`;
  if (typeof body.trigger_id === 'string') return `trigger:${body.trigger_id}`;
  return undefined;
}

export type ReplayOptions = {
  em: EntityManager;
  logger: Logger;
  accounts: AccountDirectory;
  jobs: JobQueue;
  /** Events whose effect is done by jobs queued with their receipt (see DurableEvents). */
  durable: DurableEvents;
  /** Answer an event only once its jobs have had their first try (processBeforeResponse). */
  awaitDurable?: boolean;
};

/** How long an answer waits for an event's jobs when asked to (awaitDurable); under Slack's 3 s. */
const AWAIT_DURABLE_MS = 2_000;

/**
 * Makes every Slack request act at most once, whatever its listener does. Commands, clicks and shortcuts are
 * recorded just after `ack()` (so the acknowledgement never waits for the database) and the listener
 * stops there when the key was seen before; form submissions, whose listeners may save before they answer,
 * and events, which Bolt acknowledges itself, are checked first.
 * An event a durable handler wants is recorded together with its handlers' jobs, in one transaction, before
 * the ack: what Slack was told it got is done even if the work fails at first, and a delivery that could not
 * be recorded is answered with an error, so Slack sends it again.
 */
export function refuseReplays(
  app: { handle: (event: ReceiverEvent) => Promise<void> },
  opts: ReplayOptions,
): void {
  const { em, logger, accounts, jobs, durable } = opts;
  const process = app.handle.bind(app);
  const refused = async (body: Record<string, any>, key: string) => {
    const teamId = teamIdOf(body) ?? body.team_id;
    const log = logger.child({ team: teamId, user: userIdOf(body), surface: surfaceOf(body) });
    log.warn({ key }, 'a Slack request arrived again and was not acted on');
    const fork = em.fork();
    const account = teamId ? await fork.findOne(Account, { teamId }) : null;
    if (account) {
      await auditRefusal(fork, {
        account,
        actor: userIdOf(body) ?? 'slack',
        action: 'slack.replay_refused',
        subjectType: 'request',
        surface: 'slack',
        data: { key, surface: surfaceOf(body) },
      });
    }
  };

  app.handle = async (event: ReceiverEvent) => {
    const body = event.body as Record<string, any>;
    const key = replayKey(body);
    // A workspace that has not installed Roster is refused by the middleware, with nothing written.
    const teamId = teamIdOf(body) ?? body.team_id;
    if (!key || !teamId || !accounts.find(teamId)) return process(event);
    if (key.startsWith('event:')) {
      const handlers = durable.matching(body);
      if (handlers.length) {
        const queued = await em.fork().transactional(async (tx) => {
          if (!(await firstTime(tx, key))) return undefined;
          return durable.queue(jobs, tx, body, teamId, handlers);
        });
        if (queued) {
          await process(event);
          if (opts.awaitDurable) await jobs.settled(SLACK_EVENT_JOB, queued, AWAIT_DURABLE_MS);
          return;
        }
        await event.ack();
        await refused(body, key);
        return;
      }
      if (await firstTime(em.fork(), key)) return process(event);
      await event.ack();
      await refused(body, key);
      return;
    }
    // A form submission's listener may save before it answers (the answer can carry what was saved, such as
    // a new secret), so its key is recorded first: a replay is turned away before anything is made or shown.
    if (body.type === 'view_submission') {
      if (await firstTime(em.fork(), key)) return process(event);
      await event.ack();
      await refused(body, key);
      return;
    }
    const ack = event.ack;
    const once: AckFn<any> = async (response) => {
      await ack(response);
      if (!(await firstTime(em.fork(), key))) {
        await refused(body, key);
        throw new ReplayedRequest(key);
      }
    };
    return process({ ...event, ack: once });
  };
}
