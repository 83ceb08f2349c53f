import { WebClient } from '@slack/web-api';
import pg from 'pg';
import { initORM, type ORM } from '../../../src/db/orm.ts';
import { type IAccount, PermissionSet } from '../../../src/features/accounts/account.entity.ts';
import { ensureAccount } from '../../../src/features/accounts/account.service.ts';
import type { Services } from '../../../src/features/feature.ts';
import { JoinConfirmation, JoinLink } from '../../../src/features/join-links/join-link.entity.ts';
import { JOIN_JOBS, type JoinResult } from '../../../src/features/join-links/join-link.service.ts';
import { createUser } from '../../../src/features/people/people.service.ts';
import { User } from '../../../src/features/people/user.entity.ts';
import { SEAT_JOBS } from '../../../src/features/seats/seat.service.ts';
import { SeatRequest } from '../../../src/features/seats/seat-request.entity.ts';
import { buildServices } from '../../../src/services.ts';
import { JobQueue } from '../../../src/shared/jobs.ts';
import { createLogger } from '../../../src/shared/logger.ts';
import { BOT_TOKEN, eventually, TEAM_ID } from '../../support/app.ts';
import { createTestDatabase, type TestDatabase } from '../../support/database.ts';
import { mirroredMember } from '../../support/directory.ts';
import { type SlackStandin, startSlackStandin } from '../../support/slack-standin.ts';

/**
 * A small pool, and more joins at once than it has connections: a join that held its connection while
 * Slack answered would leave the rest of Roster none.
 */
const POOL = 3;
const JOINS = 6;

let db: TestDatabase;
let orm: ORM;
let jobs: JobQueue;
let standin: SlackStandin;
let services: Services;
let account: IAccount;
/** A connection of the test's own, outside Roster's pool, to look at Roster's sessions. */
let observer: pg.Client;

beforeAll(async () => {
  db = await createTestDatabase();
  orm = await initORM(db.url, { pool: { min: 0, max: POOL } });
  jobs = await JobQueue.start(db.url, createLogger('silent'));
  for (const name of [
    SEAT_JOBS.postRequest,
    SEAT_JOBS.requestDecided,
    JOIN_JOBS.sendConfirmation,
    JOIN_JOBS.refreshMessage,
  ]) {
    await jobs.define(name, async () => {});
  }
  standin = await startSlackStandin({ teamId: TEAM_ID, botToken: BOT_TOKEN });
  const slack = new WebClient(BOT_TOKEN, { slackApiUrl: standin.apiUrl, retryConfig: { retries: 0 } });
  services = buildServices({ orm, jobs, slack });
  account = await ensureAccount(orm.em.fork(), TEAM_ID);
  await orm.em
    .fork()
    .getConnection()
    .execute('update account set seat_limit = 1000 where id = ?', [account.id]);
  observer = new pg.Client({ connectionString: db.url });
  await observer.connect();
});
afterAll(async () => {
  await standin.close();
  await observer.end();
  await jobs.stop();
  await orm.close(true);
  await db.drop();
});

let n = 0;
/** A member of the workspace in Slack, and whether the directory mirror knows them and their guest flags. */
async function member(opts: {
  guest?: 'multi_channel' | 'single_channel';
  isAdmin?: boolean;
  mirror: 'no' | 'flags unknown' | 'yes';
}) {
  const i = ++n;
  const id = `UWAIT${i}`;
  const email = `wait${i}@acme.test`;
  standin.addMember({
    id,
    name: `wait${i}`,
    email,
    ...(opts.guest ? { guest: opts.guest } : {}),
    ...(opts.isAdmin ? { isAdmin: true } : {}),
  });
  if (opts.mirror !== 'no') {
    const known = opts.mirror === 'yes';
    await services.directory.upsert(orm.em.fork(), account, [
      {
        ...mirroredMember(id, email, [TEAM_ID]),
        isAdmin: opts.isAdmin ?? false,
        isRestricted: known ? !!opts.guest : null,
        isUltraRestricted: known ? opts.guest === 'single_channel' : null,
      },
    ]);
  }
  return { id, email };
}

/** A join link posted by `poster`, its message posting nowhere. */
function postLink(poster: string) {
  return services.joinLinks.create(
    orm.em.fork(),
    account,
    { slackUserId: poster, isAdmin: true, surface: 'slack' },
    { role: 'employee', expiryDays: 30, maxUses: null, allowedDomains: [], channelId: 'C0GENERAL' },
    async () => ({ channel: 'C0GENERAL', ts: `${Date.now()}.000${++n}` }),
  );
}

/** The raw token of a web join's emailed confirmation, as the email would carry it. */
async function confirmationToken(link: Awaited<ReturnType<typeof postLink>>, email: string) {
  await services.joinLinks.requestConfirmation(orm.em.fork(), link, { email, name: 'Wendy Waiter' });
  const row = await orm.em.fork().findOneOrFail(JoinConfirmation, { email });
  return (await services.joinLinks.prepareConfirmation(orm.em.fork(), row.id))!.token;
}

/** Slack answers no users.info until `release` is called, as when it is slow or makes Roster wait. */
function holdUsersInfo() {
  let release!: () => void;
  const answered = new Promise<void>((done) => {
    release = done;
  });
  standin.whileAnswering('users.info', () => answered);
  return {
    release: () => {
      standin.whileAnswering('users.info', null);
      release();
    },
  };
}

const usersInfo = (ids: string[]) =>
  standin.callsTo('users.info').filter((c) => ids.includes(String(c.args.user))).length;

/** Roster's sessions inside a transaction that read a join link and now wait, idle, for the app. */
async function joinTransactionsWaiting(): Promise<number> {
  const { rows } = await observer.query<{ n: number }>(
    `select count(distinct a.pid)::int as n
       from pg_stat_activity a
       join pg_locks l on l.pid = a.pid
       join pg_class c on c.oid = l.relation
      where a.datname = current_database() and a.pid <> pg_backend_pid()
        and a.state like 'idle in transaction%' and c.relname = 'join_link'`,
  );
  return rows[0]!.n;
}

/** Whether Roster's pool still gives a connection to other work, within a few seconds (a busy machine). */
async function poolAnswers(): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<false>((done) => {
    timer = setTimeout(() => done(false), 5000);
  });
  const answered = orm.em
    .fork()
    .count(User, { account })
    .then(() => true);
  return Promise.race([answered, late]).finally(() => clearTimeout(timer));
}

describe('a join whose checks wait on Slack', () => {
  it('on the web, with addresses whose guest flags the mirror lacks: no connection is held while Slack answers', async () => {
    const poster = await member({ isAdmin: true, mirror: 'yes' });
    const link = await postLink(poster.id);
    const joiners: { id: string; email: string; guest?: 'multi_channel' | 'single_channel' }[] = [];
    for (let i = 0; i < JOINS; i++) {
      const guest = i % 3 === 0 ? 'multi_channel' : i % 3 === 1 ? 'single_channel' : undefined;
      joiners.push({ ...(await member({ guest, mirror: 'flags unknown' })), guest });
    }
    // About the last one, Slack will not say: the address counts as a guest's.
    const unanswered = joiners.at(-1)!;
    standin.failNext('users.info', 'internal_error', 1, (args) => args.user === unanswered.id);
    const tokens: string[] = [];
    for (const j of joiners) tokens.push(await confirmationToken(link, j.email));

    const slack = holdUsersInfo();
    let results: JoinResult[];
    try {
      const confirms = tokens.map((token) => services.joinLinks.confirm(orm.em.fork(), token));
      await eventually(() => usersInfo(joiners.map((j) => j.id)) >= POOL);
      expect(await joinTransactionsWaiting()).toBe(0);
      expect(await poolAnswers()).toBe(true);
      // Every join asks Slack at once: none waits for another's connection.
      await eventually(() => usersInfo(joiners.map((j) => j.id)) === JOINS);
      slack.release();
      results = await Promise.all(confirms);
    } finally {
      slack.release();
    }

    joiners.forEach((j, i) => {
      if (j === unanswered) {
        expect(results[i]).toMatchObject({ status: 'requested', reason: 'guest', guest: 'multi_channel' });
      } else if (j.guest) {
        expect(results[i]).toMatchObject({ status: 'requested', reason: 'guest', guest: j.guest });
      } else {
        expect(results[i]).toMatchObject({ status: 'joined' });
      }
    });
    const guests = joiners.filter((j) => j.guest || j === unanswered).map((j) => j.email);
    expect(await orm.em.fork().count(User, { email: { $in: guests } })).toBe(0);
    expect(await orm.em.fork().count(SeatRequest, { email: { $in: guests }, status: 'pending' })).toBe(
      guests.length,
    );
    expect((await orm.em.fork().findOneOrFail(JoinLink, link.id)).uses).toBe(JOINS);
    // What Slack said is kept: the mirror knows their flags now.
    const learnt = await services.directory.byId(orm.em.fork(), account, joiners[1]!.id);
    expect(learnt).toMatchObject({ isRestricted: true, isUltraRestricted: true });
  });

  it('by the Join button, on a link whose poster the mirror never saw: no connection is held while Slack answers', async () => {
    const poster = await member({ isAdmin: true, mirror: 'no' });
    const link = await postLink(poster.id);
    const joiners: { id: string; email: string }[] = [];
    for (let i = 0; i < JOINS; i++) joiners.push(await member({ mirror: 'yes' }));

    const slack = holdUsersInfo();
    let results: JoinResult[];
    try {
      const joins = joiners.map((j) =>
        services.joinLinks.join(
          orm.em.fork(),
          link.id,
          { email: j.email, name: 'Jo Joiner', slackUserId: j.id, guest: null },
          'slack',
          account,
        ),
      );
      await eventually(() => usersInfo([poster.id]) >= POOL);
      expect(await joinTransactionsWaiting()).toBe(0);
      expect(await poolAnswers()).toBe(true);
      await eventually(() => usersInfo([poster.id]) === JOINS);
      slack.release();
      results = await Promise.all(joins);
    } finally {
      slack.release();
    }

    // The poster is an admin in Slack: everyone joined on their authority.
    expect(results.map((r) => r.status)).toEqual(Array(JOINS).fill('joined'));
    expect(await services.directory.byId(orm.em.fork(), account, poster.id)).toMatchObject({
      isAdmin: true,
    });
  });

  it('on a link whose poster the mirror never saw, with Slack failing, waits for an admin instead of failing', async () => {
    const poster = await member({ isAdmin: true, mirror: 'no' });
    const link = await postLink(poster.id);
    const joiner = await member({ mirror: 'yes' });
    const token = await confirmationToken(link, joiner.email);
    standin.failNext('users.info', 'internal_error', 1, (args) => args.user === poster.id);

    const result = await services.joinLinks.confirm(orm.em.fork(), token);
    expect(result).toMatchObject({ status: 'requested', reason: 'needs_approval' });
    expect(await orm.em.fork().findOneOrFail(SeatRequest, { email: joiner.email })).toMatchObject({
      status: 'pending',
    });
  });

  it('reads the poster’s rights again once Slack has answered: lost meanwhile, a paid join waits for an admin', async () => {
    const poster = await member({ isAdmin: true, mirror: 'yes' });
    const link = await postLink(poster.id);
    const joiner = await member({ mirror: 'flags unknown' });
    const token = await confirmationToken(link, joiner.email);

    const slack = holdUsersInfo();
    let result: JoinResult;
    try {
      const confirmed = services.joinLinks.confirm(orm.em.fork(), token);
      await eventually(() => usersInfo([joiner.id]) === 1);
      // While Slack is answering about the joiner, the poster loses their admin rights.
      await services.directory.upsert(orm.em.fork(), account, [
        { ...mirroredMember(poster.id, poster.email, [TEAM_ID]), isAdmin: false },
      ]);
      slack.release();
      result = await confirmed;
    } finally {
      slack.release();
    }

    expect(result).toMatchObject({ status: 'requested', reason: 'needs_approval' });
    expect(await orm.em.fork().findOne(User, { email: joiner.email })).toBeNull();
    expect(await orm.em.fork().findOneOrFail(SeatRequest, { email: joiner.email })).toMatchObject({
      status: 'pending',
      payload: expect.objectContaining({ posterNoLongerAdmin: poster.id }),
    });
  });

  it('learns the guest flags of a poster who holds Roster’s Admin set before the join, so a full member’s link admits and a guest’s does not', async () => {
    const results: Record<string, JoinResult> = {};
    for (const guest of [undefined, 'multi_channel'] as const) {
      // A Roster admin by permission set, not in Slack, whom the mirror knew before it kept guest flags.
      const poster = await member({ guest, mirror: 'flags unknown' });
      const em = orm.em.fork();
      await createUser(em, account, {
        email: poster.email,
        role: 'employee',
        status: 'active',
        slackUserId: poster.id,
        permissionSet: await em.findOneOrFail(PermissionSet, { account, isAdmin: true }),
      });
      await em.flush();
      const link = await postLink(poster.id);
      const joiner = await member({ mirror: 'yes' });
      results[guest ?? 'member'] = await services.joinLinks.join(
        orm.em.fork(),
        link.id,
        { email: joiner.email, name: 'Jo Joiner', slackUserId: joiner.id, guest: null },
        'slack',
        account,
      );
    }
    expect(results.member).toMatchObject({ status: 'joined' });
    expect(results.multi_channel).toMatchObject({ status: 'requested', reason: 'needs_approval' });
  });
});
