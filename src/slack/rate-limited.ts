import type { ReceiverEvent } from '@slack/bolt';
import { z } from 'zod';
import type { AccountDirectory } from '../features/accounts/account.directory.ts';
import type { Logger } from '../shared/logger.ts';

/**
 * What Slack sends instead of a workspace's events once it has sent the app 30,000 of them within the hour:
 * no envelope and no inner event, so Bolt cannot tell what it is and no listener would ever ack it.
 */
const AppRateLimited = z.object({
  type: z.literal('app_rate_limited'),
  team_id: z.string().min(1),
  /** The minute Slack started holding the workspace's events back, in epoch seconds (a whole minute). */
  minute_rate_limited: z.number().positive().finite(),
});

/** Slack's limit on one workspace's events, per hour. */
export const EVENTS_PER_HOUR = 30_000;

/**
 * When the events Slack dropped are surely done with: Slack counts a workspace's events over an hour and does
 * not say when it sends them again, so an hour after it began, whether it counts by the clock's hour or the
 * last sixty minutes.
 */
export function limitEndsAt(minuteRateLimited: number): Date {
  return new Date(minuteRateLimited * 1000 + 3_600_000);
}

/** The clock hour a notice belongs to: notices of the same hour are one episode, caught up on once. */
export function windowOf(minuteRateLimited: number): Date {
  return new Date(Math.floor(minuteRateLimited / 3600) * 3_600_000);
}

/** A workspace whose events Slack stopped sending, and until when. */
export type EventsHeldBack = {
  accountId: string;
  teamId: string;
  /** When Slack started dropping the workspace's events. */
  since: Date;
  /** When they are surely sent again: every event in between may have been dropped, not delayed. */
  until: Date;
  /** The clock hour of the notice: the first notice of an hour arranges the catching up for all of them. */
  window: Date;
  log: Logger;
};

/**
 * What a handler did about events Slack dropped, said in the warning; `again` when an earlier notice of
 * the same window had it done already (the warning is not repeated then).
 */
export type CatchUp = { action: string; again: boolean };

const hhmm = (d: Date) => `${d.toISOString().slice(11, 16)} UTC`;

/**
 * Slack's notice that it stopped delivering a workspace's events (`app_rate_limited`): answered at once
 * with a 200, as Slack counts an app that fails 5% of its deliveries within the hour toward turning its
 * events off, then handed to what catches up on the dropped events. A notice for a workspace Roster does
 * not serve does nothing but get its answer.
 */
export class EventRateLimits {
  readonly #handlers: ((held: EventsHeldBack) => Promise<CatchUp>)[] = [];

  /** Adds what catches up on a workspace's dropped events once Slack sends them again. */
  on(handler: (held: EventsHeldBack) => Promise<CatchUp>): void {
    this.#handlers.push(handler);
  }

  /** Whether this request is Slack's notice (whatever else its body holds). */
  static isNotice(body: unknown): boolean {
    return (body as { type?: unknown } | undefined)?.type === 'app_rate_limited';
  }

  /** Acks the notice, then has its workspace's dropped events caught up on. */
  async answer(event: ReceiverEvent, accounts: AccountDirectory, logger: Logger): Promise<void> {
    await event.ack();
    const parsed = AppRateLimited.safeParse(event.body);
    if (!parsed.success) {
      logger.warn(
        { surface: 'app_rate_limited', issues: parsed.error.issues.map((i) => i.path.join('.')) },
        "Slack's app_rate_limited notice names no workspace or minute: nothing done",
      );
      return;
    }
    const { team_id: teamId, minute_rate_limited: minute } = parsed.data;
    const identity = accounts.find(teamId);
    if (!identity) {
      logger.warn(
        { team: teamId, surface: 'app_rate_limited' },
        'request from a workspace where Roster is not installed refused',
      );
      return;
    }
    const log = logger.child({ team: teamId, surface: 'app_rate_limited' });
    const since = new Date(minute * 1000);
    const until = limitEndsAt(minute);
    const held: EventsHeldBack = {
      accountId: identity.id,
      teamId,
      since,
      until,
      window: windowOf(minute),
      log,
    };
    const done: CatchUp[] = [];
    for (const handler of this.#handlers) {
      try {
        done.push(await handler(held));
      } catch (err) {
        log.error(
          { err },
          'could not arrange to catch up on the events Slack dropped: the nightly directory sync will',
        );
      }
    }
    const fields = { since: since.toISOString(), until: until.toISOString() };
    if (done.length && done.every((d) => d.again)) {
      log.info(
        fields,
        `Slack again says it holds back this workspace's events (since ${hhmm(since)}): already arranged`,
      );
      return;
    }
    const then = done.length ? done.map((d) => d.action).join('; ') : 'nothing catches up on them';
    log.warn(
      fields,
      `Slack stopped sending this workspace's events at ${hhmm(since)} (over its limit of ${EVENTS_PER_HOUR.toLocaleString('en')} an hour) and drops them, for up to an hour: people's joins and changes in Slack meanwhile reach Roster through no event; ${then}`,
    );
  }
}
