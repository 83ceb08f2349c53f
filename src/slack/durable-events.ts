import type { EntityManager } from '@mikro-orm/postgresql';
import { Account, type IAccount } from '../features/accounts/account.entity.ts';
import type { JobQueue } from '../shared/jobs.ts';
import type { Logger } from '../shared/logger.ts';

/** The job that does what a Slack event asks of one handler, retried with backoff when a try fails. */
export const SLACK_EVENT_JOB = 'slack.event';

/** A Slack event's `event` object, as delivered. */
export type SlackEventObject = Record<string, any>;

/** What a durable handler is given in its job. */
export type EventWork = {
  em: EntityManager;
  account: IAccount;
  log: Logger;
  /** Slack's id of the event; the same on every delivery of it. */
  eventId: string;
  /**
   * When the event was recorded, on the database's clock: a later try (after a failure, minutes on) may find
   * newer news written since, which it must not undo. (A handler that asks to wait with TryLater is queued
   * again, and counts from then.)
   */
  recordedAt: Date;
  /**
   * When the event happened, as Slack says (the envelope's `event_time`: whole seconds): the order of two
   * events about the same thing, whichever reached Roster first. Null when the delivery gave none.
   */
  eventTime: Date | null;
};

export type DurableEventHandler = {
  /** Unique, and kept in queued jobs: a renamed handler leaves the jobs queued under its old name undone. */
  name: string;
  /** The event type, e.g. `user_change`. */
  type: string;
  /**
   * Whether this delivery is one to act on, decided from the request alone before Slack's ack (no I/O):
   * anything it turns down is neither recorded nor queued.
   */
  wants?(event: SlackEventObject, body: Record<string, any>): boolean;
  /**
   * What of the event its job keeps, in the event's own shape: only what `handle` reads. The job's data
   * stays in the database for days, so a person's profile beyond what Roster keeps of it must not be here.
   */
  keep(event: SlackEventObject): SlackEventObject;
  /** The event's effect, run by a job; it is run again when it throws, so a repeat must change nothing more. */
  handle(event: SlackEventObject, work: EventWork): Promise<void>;
};

type EventJob = {
  handler: string;
  teamId: string;
  eventId: string;
  /** The envelope's `event_time`, in seconds; absent from jobs queued before Roster kept it. */
  eventTime?: number;
  event: SlackEventObject;
};

/**
 * Slack events whose effect must not be lost once Slack has its ack (a deactivation, a directory change, an
 * upload). The event's receipt and one job per handler that wants it are written in one transaction before
 * the ack: a delivery that cannot be recorded gets an error, and Slack sends it again; one that was recorded
 * is done by its jobs, retried with backoff when a handler fails (the database, a refusal from Slack, a stop
 * mid-way), whichever instance works them. A redelivery finds the receipt and queues nothing.
 */
export class DurableEvents {
  readonly #handlers = new Map<string, DurableEventHandler>();

  /**
   * Adds a handler: an event it wants is recorded with a job for it before the ack. Bolt's own listeners of
   * the event type, if any, still run after the ack, without that promise.
   */
  on(handler: DurableEventHandler): void {
    if (this.#handlers.has(handler.name)) throw new Error(`A durable event handler ${handler.name} exists`);
    this.#handlers.set(handler.name, handler);
  }

  /** The handlers that want this request: none unless it is an event callback of a type they handle. */
  matching(body: Record<string, any>): DurableEventHandler[] {
    const event = body.event as SlackEventObject | undefined;
    if (body.type !== 'event_callback' || typeof event?.type !== 'string') return [];
    return [...this.#handlers.values()].filter(
      (h) => h.type === event.type && (h.wants?.(event, body) ?? true),
    );
  }

  /** Queues a job for each handler, inside `tx` (with the event's receipt); returns the jobs' ids. */
  async queue(
    jobs: JobQueue,
    tx: EntityManager,
    body: Record<string, any>,
    teamId: string,
    handlers: DurableEventHandler[],
  ): Promise<string[]> {
    const ids: string[] = [];
    for (const handler of handlers) {
      const event = { ...handler.keep(body.event), type: body.event.type };
      const eventTime = Number.isFinite(body.event_time) ? (body.event_time as number) : undefined;
      const job: EventJob = { handler: handler.name, teamId, eventId: body.event_id, eventTime, event };
      const id = await jobs.send(SLACK_EVENT_JOB, job, { em: tx });
      if (id) ids.push(id);
    }
    return ids;
  }

  /** Defines the job that runs the handlers. */
  async define(jobs: JobQueue, em: EntityManager, logger: Logger): Promise<void> {
    await jobs.define<EventJob>(
      SLACK_EVENT_JOB,
      async ({ handler: name, teamId, eventId, eventTime, event }, { retryCount, createdOn }) => {
        const log = logger.child({ team: teamId, event: event.type, eventId, handler: name });
        const handler = this.#handlers.get(name);
        if (!handler) {
          // Another version of Roster queued it (a deploy under way): failing leaves it, with its retries,
          // to an instance that has the handler, rather than losing it here.
          log.warn(
            { retryCount },
            'no handler of this name in this version of Roster: the event is left for an instance that has it',
          );
          throw new Error(`no durable event handler ${name} in this version of Roster`);
        }
        const fork = em.fork();
        const account = await fork.findOne(Account, { teamId });
        if (!account) {
          log.info('the workspace no longer has Roster installed: the event is left undone');
          return;
        }
        if (retryCount) log.info({ retryCount }, 'acting on a Slack event again after a failed try');
        await handler.handle(event, {
          em: fork,
          account,
          log,
          eventId,
          recordedAt: createdOn,
          eventTime: eventTime === undefined ? null : new Date(eventTime * 1000),
        });
      },
      // Backoff from 2 s to 5 minutes: a database or Slack outage of about half an hour is outlasted.
      { retryLimit: 12, retryDelay: 2, retryBackoff: true, retryDelayMax: 300, localConcurrency: 4 },
    );
  }
}
