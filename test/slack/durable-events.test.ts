import { jest } from '@jest/globals';
import type { Roster } from '../../src/app.ts';
import { AuditEvent } from '../../src/features/audit/audit-event.entity.ts';
import { User } from '../../src/features/people/user.entity.ts';
import type { RosterApp } from '../../src/slack/app.ts';
import { SLACK_EVENT_JOB } from '../../src/slack/durable-events.ts';
import {
  eventually,
  jobsDrained,
  SIGNING_SECRET,
  startSecondInstance,
  startTestApp,
  TEAM_ID,
  type TestApp,
} from '../support/app.ts';
import { mirroredMember } from '../support/directory.ts';
import { SlackDriver } from '../support/slack-driver.ts';

// Slack has its 200 as soon as an event is recorded; what the event asks of Roster must then happen once,
// even when the first try at it fails, and whichever of two instances gets Slack's deliveries.

let t: TestApp;
let second: Roster;
let secondSlack: SlackDriver;

beforeAll(async () => {
  t = await startTestApp({ seatLimit: 20 });
  second = await startSecondInstance(t);
  secondSlack = new SlackDriver({
    appUrl: second.url,
    signingSecret: SIGNING_SECRET,
    standin: t.standin,
    teamId: TEAM_ID,
  });
});
afterAll(async () => {
  await second?.stop();
  await t.stop();
});

const exec = (q: string) => t.em().getConnection().execute(q);

/**
 * The database refuses, with an error of its own, what `table`'s trigger `name` is given (`when`, a
 * condition on `new`), until the returned function lifts it.
 */
async function refuse(table: string, name: string, op: string, when: string) {
  await exec(`create or replace function ${name}() returns trigger language plpgsql as $$
    begin raise exception 'refused while the test says so'; end $$`);
  await exec(
    `create trigger ${name} before ${op} on ${table} for each row when (${when}) execute function ${name}()`,
  );
  return async () => {
    await exec(`drop trigger ${name} on ${table}`);
    await exec(`drop function ${name}()`);
  };
}

/** An active employee holding a seat, known to Slack as `slackUserId`. */
async function seated(email: string, slackUserId: string) {
  const em = t.em();
  const account = await t.account();
  const user = em.create(User, { account, email, role: 'employee', status: 'active', slackUserId });
  await em.flush();
  return user;
}

const deleted = (id: string, email: string) => ({
  type: 'user_change',
  user: { id, team_id: TEAM_ID, name: id.toLowerCase(), deleted: true, profile: { email } },
});

const audits = (action: string, where: Record<string, unknown> = {}) =>
  t.em().count(AuditEvent, { action, ...where });

/**
 * Sets this process's clock (`Date`) `ms` behind the real time, still running: timers, ticks and
 * microtasks are left as they are. `jest.useRealTimers()` puts it right.
 */
function clockBehind(ms: number) {
  jest.useFakeTimers({
    now: Date.now() - ms,
    advanceTimers: true,
    doNotFake: [
      'hrtime',
      'nextTick',
      'performance',
      'queueMicrotask',
      'setImmediate',
      'clearImmediate',
      'setInterval',
      'clearInterval',
      'setTimeout',
      'clearTimeout',
    ],
  });
}

const statusOf = async (id: string) => (await t.em().findOneOrFail(User, id)).status;

describe('a person deleted in Slack', () => {
  it('is deactivated once, when the first try fails and Slack sends the event again meanwhile', async () => {
    const user = await seated('dora@acme.test', 'UDORA');
    const freedBefore = await audits('seat.freed');
    const lift = await refuse('app_user', 'refuse_dora', 'update', `new.slack_user_id = 'UDORA'`);
    let first: Awaited<ReturnType<SlackDriver['event']>>;
    try {
      first = await t.slack.event(deleted('UDORA', 'dora@acme.test'), { eventId: 'EvDurableDora' });
      expect(first.status).toBe(200);
      // The first try has run, and failed: Dora is still active.
      expect(await statusOf(user.id)).toBe('active');
      // Slack sends the event again, to the other instance: it is the same event, recorded already.
      const again = await secondSlack.event(deleted('UDORA', 'dora@acme.test'), {
        eventId: 'EvDurableDora',
        retryNum: 1,
      });
      expect(again.status).toBe(200);
      expect(await audits('slack.replay_refused', { data: { key: 'event:EvDurableDora' } })).toBe(1);
      expect(await statusOf(user.id)).toBe('active');
    } finally {
      await lift();
    }
    // The database takes it again: the try after that deactivates her.
    await eventually(async () => (await statusOf(user.id)) === 'deactivated', 30_000);
    await jobsDrained(t.em());
    expect(await audits('user.deactivated', { subjectId: user.id })).toBe(1);
    expect(await audits('seat.freed')).toBe(freedBefore + 1);
  }, 60_000);

  it('is deactivated once when the same event reaches both instances at once', async () => {
    const user = await seated('ella@acme.test', 'UELLA');
    const freedBefore = await audits('seat.freed');
    const event = deleted('UELLA', 'ella@acme.test');
    const answers = await Promise.all([
      t.slack.event(event, { eventId: 'EvDurableElla' }),
      secondSlack.event(event, { eventId: 'EvDurableElla', retryNum: 1 }),
    ]);
    expect(answers.map((a) => a.status)).toEqual([200, 200]);
    await eventually(async () => (await statusOf(user.id)) === 'deactivated');
    await jobsDrained(t.em());
    expect(await audits('user.deactivated', { subjectId: user.id })).toBe(1);
    expect(await audits('seat.freed')).toBe(freedBefore + 1);
    expect(await audits('slack.replay_refused', { data: { key: 'event:EvDurableElla' } })).toBe(1);
  });

  /** Refuses Slack's deactivation of `userId` (its audit entry, so its whole transaction) until lifted. */
  const refuseSlackDeactivation = (name: string, userId: string) =>
    refuse(
      'audit_event',
      name,
      'insert',
      `new.actor = 'slack' and new.action = 'user.deactivated' and new.subject_id = '${userId}'`,
    );

  it('stays as an admin reactivated them after the deactivation was recorded, when it is tried again', async () => {
    const user = await seated('jon@acme.test', 'UJON');
    const account = await t.account();
    const admin = { slackUserId: 'UADMIN', isAdmin: true, surface: 'slack' as const };
    const lift = await refuseSlackDeactivation('refuse_jon', user.id);
    try {
      expect((await t.slack.event(deleted('UJON', 'jon@acme.test'))).status).toBe(200);
      expect(await statusOf(user.id)).toBe('active');
      // Meanwhile an admin deactivates Jon in Roster, then takes him back.
      await t.roster.deps.person.deactivate(t.em(), account, admin, user.id);
      await t.roster.deps.people.reactivate(t.em(), account, admin, user.id);
      expect(await statusOf(user.id)).toBe('not_invited');
    } finally {
      await lift();
    }
    await jobsDrained(t.em(), { timeoutMs: 40_000 });
    expect(await statusOf(user.id)).toBe('not_invited');
  }, 60_000);

  it("stays as an admin reactivated them after the deactivation was recorded, whatever Roster's own clock says", async () => {
    const user = await seated('joy@acme.test', 'UJOY');
    const account = await t.account();
    const admin = { slackUserId: 'UADMIN', isAdmin: true, surface: 'slack' as const };
    const lift = await refuseSlackDeactivation('refuse_joy', user.id);
    try {
      expect((await t.slack.event(deleted('UJOY', 'joy@acme.test'))).status).toBe(200);
      expect(await statusOf(user.id)).toBe('active');
      // This machine's clock runs a minute behind the database's while an admin takes Joy back.
      clockBehind(60_000);
      await t.roster.deps.person.deactivate(t.em(), account, admin, user.id);
      await t.roster.deps.people.reactivate(t.em(), account, admin, user.id);
      jest.useRealTimers();
      expect(await statusOf(user.id)).toBe('not_invited');
    } finally {
      jest.useRealTimers();
      await lift();
    }
    await jobsDrained(t.em(), { timeoutMs: 40_000 });
    expect(await statusOf(user.id)).toBe('not_invited');
  }, 60_000);

  it('stays active when Slack reactivated them after the deactivation was recorded', async () => {
    const user = await seated('kai@acme.test', 'UKAI');
    const lift = await refuseSlackDeactivation('refuse_kai', user.id);
    try {
      expect((await t.slack.event(deleted('UKAI', 'kai@acme.test'))).status).toBe(200);
      const back = { ...deleted('UKAI', 'kai@acme.test').user, deleted: false };
      expect((await t.slack.event({ type: 'user_change', user: back })).status).toBe(200);
      await eventually(async () => {
        const [row] = await exec(`select deleted from slack_member where slack_user_id = 'UKAI'`);
        return row?.deleted === false;
      });
    } finally {
      await lift();
    }
    await jobsDrained(t.em(), { timeoutMs: 40_000 });
    expect(await statusOf(user.id)).toBe('active');
  }, 60_000);
});

describe('Slack telling of a deletion Roster already acted on', () => {
  const admin = { slackUserId: 'UADMIN', isAdmin: true, surface: 'slack' as const };
  const mirroredDeleted = async (id: string) => {
    const [row] = await exec(`select deleted from slack_member where slack_user_id = '${id}'`);
    return row?.deleted === true;
  };

  it('leaves someone an admin reactivated after the first word of it as they are', async () => {
    const user = await seated('pia@acme.test', 'UPIA');
    const account = await t.account();
    expect((await t.slack.event(deleted('UPIA', 'pia@acme.test'))).status).toBe(200);
    await eventually(
      async () => (await statusOf(user.id)) === 'deactivated' && (await mirroredDeleted('UPIA')),
    );
    await t.roster.deps.people.reactivate(t.em(), account, admin, user.id);
    expect(await statusOf(user.id)).toBe('not_invited');
    // The same deletion again, as a new event (a profile edit of the deleted account, say).
    expect((await t.slack.event(deleted('UPIA', 'pia@acme.test'))).status).toBe(200);
    await jobsDrained(t.em());
    expect(await statusOf(user.id)).toBe('not_invited');
    expect(await audits('user.deactivated', { subjectId: user.id })).toBe(1);
  });

  it('leaves someone added with the same address after the deletion as they are', async () => {
    expect((await t.slack.event(deleted('UQUIN', 'quin@acme.test'))).status).toBe(200);
    await eventually(() => mirroredDeleted('UQUIN'));
    await jobsDrained(t.em());
    // An admin adds Quin again by email, as someone Slack does not know yet.
    const em = t.em();
    const user = em.create(User, {
      account: await t.account(),
      email: 'quin@acme.test',
      role: 'employee',
      status: 'active',
    });
    await em.flush();
    expect((await t.slack.event(deleted('UQUIN', 'quin@acme.test'))).status).toBe(200);
    await jobsDrained(t.em());
    expect(await statusOf(user.id)).toBe('active');
  });

  it('deactivates by email nobody Slack knows by another id, nor anyone whose address a member still holds', async () => {
    const em = t.em();
    const account = await t.account();
    // Rae is someone else in Slack (URAE), who took over the address the deleted account had.
    const rae = await seated('rae@acme.test', 'URAE');
    // Sam has no Slack id in Roster; his address belongs to a member still in Slack.
    t.standin.addMember({ id: 'USAM', name: 'sam', email: 'sam@acme.test' });
    await t.roster.deps.directory.upsert(em, account, [mirroredMember('USAM', 'sam@acme.test', [TEAM_ID])]);
    const sam = em.create(User, { account, email: 'sam@acme.test', role: 'employee', status: 'active' });
    // Tia has no Slack id in Roster, and nobody else holds her address: the deleted account was hers.
    const tia = em.create(User, { account, email: 'tia@acme.test', role: 'employee', status: 'active' });
    await em.flush();
    for (const [id, email] of [
      ['URAEOLD', 'rae@acme.test'],
      ['USAMOLD', 'sam@acme.test'],
      ['UTIA', 'tia@acme.test'],
    ] as const) {
      expect((await t.slack.event(deleted(id, email))).status).toBe(200);
    }
    await eventually(async () => (await statusOf(tia.id)) === 'deactivated');
    await jobsDrained(t.em());
    expect(await statusOf(rae.id)).toBe('active');
    expect(await statusOf(sam.id)).toBe('active');
  });
});

describe("a Slack user's event, while its jobs are kept", () => {
  it('keeps of their profile only what the mirror keeps, and a deactivation only who they are', async () => {
    const res = await t.slack.event(
      {
        type: 'user_change',
        user: {
          id: 'UIDA',
          team_id: TEAM_ID,
          name: 'ida',
          real_name: 'Ida Lind',
          deleted: true,
          tz: 'Europe/Stockholm',
          profile: {
            email: 'ida@acme.test',
            real_name: 'Ida Lind',
            first_name: 'Ida',
            display_name: 'ida.l',
            title: 'Nurse',
            phone: '+46 70 000 00 00',
            status_text: 'At the clinic',
            image_72: 'https://avatars.slack-edge.com/ida_72.png',
            fields: { Xf01: { value: 'Ward 4' } },
          },
        },
      },
      { eventId: 'EvDurableIda' },
    );
    expect(res.status).toBe(200);
    await jobsDrained(t.em());
    const rows = await exec(
      `select data->>'handler' as handler, data->'event' as event from pgboss.job
       where name = '${SLACK_EVENT_JOB}' and data->>'eventId' = 'EvDurableIda' order by 1`,
    );
    const kept = Object.fromEntries(rows.map((r) => [r.handler, JSON.stringify(r.event)]));
    expect(Object.keys(kept)).toEqual(['directory.user_change', 'seats.deactivated-in-slack']);
    for (const text of Object.values(kept)) {
      for (const other of ['Europe/Stockholm', 'ida.l', 'At the clinic', 'ida_72', 'Ward 4', 'first_name']) {
        expect(text).not.toContain(other);
      }
    }
    // The mirror keeps email, name, title and phone; a deactivation needs only the email.
    expect(kept['directory.user_change']).toContain('+46 70 000 00 00');
    expect(kept['seats.deactivated-in-slack']).toContain('ida@acme.test');
    for (const other of ['Nurse', '+46 70', 'Ida Lind']) {
      expect(kept['seats.deactivated-in-slack']).not.toContain(other);
    }
  });
});

describe('someone joining the workspace', () => {
  it('is in the directory mirror once the database takes it again, after a first try that failed', async () => {
    const lift = await refuse('slack_member', 'refuse_fay', 'insert', `new.slack_user_id = 'UFAY'`);
    const inMirror = async () => {
      const [row] = await exec(`select count(*)::int as n from slack_member where slack_user_id = 'UFAY'`);
      return Number(row?.n);
    };
    try {
      const joined = await t.slack.event({
        type: 'team_join',
        user: { id: 'UFAY', team_id: TEAM_ID, name: 'fay', profile: { email: 'fay@acme.test' } },
      });
      expect(joined.status).toBe(200);
      expect(await inMirror()).toBe(0);
    } finally {
      await lift();
    }
    await eventually(async () => (await inMirror()) === 1, 30_000);
  }, 60_000);
  it('keeps a newer change of the same person when the try that failed comes back', async () => {
    const lift = await refuse('slack_member', 'refuse_gil', 'insert', `new.email = 'gil.old@acme.test'`);
    const user = (email: string) => ({ id: 'UGIL', team_id: TEAM_ID, name: 'gil', profile: { email } });
    const emailInMirror = async () => {
      const [row] = await exec(`select email from slack_member where slack_user_id = 'UGIL'`);
      return row?.email as string | undefined;
    };
    try {
      await t.slack.event({ type: 'team_join', user: user('gil.old@acme.test') });
      expect(await emailInMirror()).toBeUndefined();
      // Gil changes his email while the join waits for its retry.
      await t.slack.event({ type: 'user_change', user: user('gil.new@acme.test') });
      expect(await emailInMirror()).toBe('gil.new@acme.test');
    } finally {
      await lift();
    }
    await jobsDrained(t.em(), { timeoutMs: 30_000 });
    expect(await emailInMirror()).toBe('gil.new@acme.test');
  }, 60_000);

  it('takes a newer change of the same person when the older one is written after it was recorded', async () => {
    // Hal is made an admin, then demoted; the promotion is written late, after the demotion was recorded.
    const user = (isAdmin: boolean) => ({
      id: 'UHAL',
      team_id: TEAM_ID,
      name: 'hal',
      is_admin: isAdmin,
      profile: { email: 'hal.dir@acme.test' },
    });
    const adminInMirror = async () => {
      const [row] = await exec(`select is_admin from slack_member where slack_user_id = 'UHAL'`);
      return row?.is_admin as boolean | undefined;
    };
    const liftPromotion = await refuse(
      'slack_member',
      'refuse_hal_up',
      'insert',
      `new.slack_user_id = 'UHAL' and new.is_admin`,
    );
    let liftDemotion: (() => Promise<void>) | undefined;
    try {
      await t.slack.event({ type: 'user_change', user: user(true) });
      liftDemotion = await refuse(
        'slack_member',
        'refuse_hal_down',
        'insert',
        `new.slack_user_id = 'UHAL' and not new.is_admin`,
      );
      await t.slack.event({ type: 'user_change', user: user(false) });
      expect(await adminInMirror()).toBeUndefined();
      // The promotion's retry is written first...
      await liftPromotion();
      await eventually(async () => (await adminInMirror()) === true, 30_000);
    } finally {
      await liftPromotion().catch(() => {});
      await liftDemotion?.();
    }
    // ...and the demotion's retry, newer news, still is.
    await jobsDrained(t.em(), { timeoutMs: 40_000 });
    expect(await adminInMirror()).toBe(false);
  }, 90_000);
});

describe('an older event Slack delivers after a newer one about the same person', () => {
  const mirrored = async (id: string) => {
    const [row] = await exec(`select is_admin, deleted from slack_member where slack_user_id = '${id}'`);
    return row as { is_admin: boolean; deleted: boolean } | undefined;
  };
  const minuteAgo = () => Date.now() - 60_000;

  it('leaves the newer change in the mirror', async () => {
    // Ned was made an admin a minute ago and demoted now; Slack delivers the promotion after the demotion.
    const ned = (isAdmin: boolean) => ({
      id: 'UNED',
      team_id: TEAM_ID,
      name: 'ned',
      is_admin: isAdmin,
      profile: { email: 'ned@acme.test' },
    });
    expect((await t.slack.event({ type: 'user_change', user: ned(false) })).status).toBe(200);
    await eventually(async () => (await mirrored('UNED'))?.is_admin === false);
    const late = await t.slack.event({ type: 'user_change', user: ned(true) }, { eventTime: minuteAgo() });
    expect(late.status).toBe(200);
    await jobsDrained(t.em());
    expect(await mirrored('UNED')).toEqual({ is_admin: false, deleted: false });
  });

  it('leaves someone Slack reactivated after deleting them active, in Roster and in the mirror', async () => {
    const user = await seated('ora@acme.test', 'UORA');
    const back = { ...deleted('UORA', 'ora@acme.test').user, deleted: false };
    expect((await t.slack.event({ type: 'user_change', user: back })).status).toBe(200);
    await eventually(async () => (await mirrored('UORA'))?.deleted === false);
    // The deletion, a minute older than the reactivation, reaches Roster after it.
    const late = await t.slack.event(deleted('UORA', 'ora@acme.test'), { eventTime: minuteAgo() });
    expect(late.status).toBe(200);
    await jobsDrained(t.em());
    expect(await statusOf(user.id)).toBe('active');
    expect((await mirrored('UORA'))?.deleted).toBe(false);
  });
});

describe('a directory sync and the events about the same person', () => {
  const adminInMirror = async (id: string) => {
    const [row] = await exec(`select is_admin from slack_member where slack_user_id = '${id}'`);
    return row?.is_admin as boolean | undefined;
  };

  it('leaves a change Slack reported after the sync asked for the page', async () => {
    // Slack's page says Leo is an admin; he is demoted while the page is on its way.
    t.standin.addMember({ id: 'ULEO', name: 'leo', email: 'leo@acme.test', isAdmin: true });
    const account = await t.account();
    t.standin.delayNext('users.list', 3_000);
    const sync = t.roster.deps.directory.sync(t.em(), account, t.roster.slack);
    await new Promise((ok) => setTimeout(ok, 500));
    const demoted = { ...t.standin.userOf('ULEO'), is_admin: false };
    expect((await t.slack.event({ type: 'user_change', user: demoted })).status).toBe(200);
    await eventually(async () => (await adminInMirror('ULEO')) === false);
    await sync;
    expect(await adminInMirror('ULEO')).toBe(false);
  }, 30_000);

  it('is not undone by an older event whose job is written after it', async () => {
    t.standin.addMember({ id: 'UMIA', name: 'mia', email: 'mia@acme.test', isAdmin: false });
    const account = await t.account();
    const lift = await refuse(
      'slack_member',
      'refuse_mia',
      'insert',
      `new.slack_user_id = 'UMIA' and new.is_admin`,
    );
    try {
      // Mia was an admin a moment ago: the event of that waits for its retry while a sync reads her demoted.
      const promoted = { ...t.standin.userOf('UMIA'), is_admin: true };
      expect((await t.slack.event({ type: 'user_change', user: promoted })).status).toBe(200);
      await t.roster.deps.directory.sync(t.em(), account, t.roster.slack);
      expect(await adminInMirror('UMIA')).toBe(false);
    } finally {
      await lift();
    }
    await jobsDrained(t.em(), { timeoutMs: 30_000 });
    expect(await adminInMirror('UMIA')).toBe(false);
  }, 60_000);
});

describe('an event job of a handler this version does not have', () => {
  it('is left for an instance that has the handler, not lost', async () => {
    // Queued by a newer version during a deploy: the handler is not here yet.
    const id = await t.roster.jobs.send(SLACK_EVENT_JOB, {
      handler: 'test.added-later',
      teamId: TEAM_ID,
      eventId: 'EvDurableLater',
      event: { type: 'test_later' },
    });
    const stateOf = async () => {
      const [row] = await exec(`select state, retry_count from pgboss.job where id = '${id}'`);
      return row as { state: string; retry_count: number };
    };
    await eventually(async () => (await stateOf()).retry_count >= 1, 30_000);
    expect((await stateOf()).state).not.toBe('completed');
    // The new version is rolled out: its instances do the event.
    const done: string[] = [];
    for (const app of [t.roster.app, second.app] as RosterApp[]) {
      app.durableEvents.on({
        name: 'test.added-later',
        type: 'test_later',
        keep: (event) => event,
        async handle(_event, { eventId }) {
          done.push(eventId);
        },
      });
    }
    await eventually(async () => (await stateOf()).state === 'completed', 40_000);
    expect(done).toEqual(['EvDurableLater']);
  }, 90_000);
});

describe("a CSV shared in the bot's DM", () => {
  it('is answered once, to a member, when Slack refuses the first answer', async () => {
    t.standin.failNext('chat.postMessage', 'internal_error', 1, (args) => args.channel === 'DUMEMBER');
    const told = () =>
      t.standin.messages.filter(
        (m) =>
          m.method === 'chat.postMessage' &&
          m.channel === 'DUMEMBER' &&
          JSON.stringify(m).includes('Only admins can import'),
      ).length;
    const file = t.standin.addFile({
      id: 'FDURABLE01',
      name: 'people.csv',
      filetype: 'csv',
      content: 'email\nx@acme.test\n',
      user: 'UMEMBER',
    });
    const shared = await t.slack.fileShare('UMEMBER', file);
    expect(shared.status).toBe(200);
    expect(told()).toBe(0);
    await eventually(() => told() === 1, 30_000);
    await jobsDrained(t.em());
    expect(told()).toBe(1);
  }, 60_000);

  it('is previewed once, by an admin, when the first try failed after recording it', async () => {
    const file = t.standin.addFile({
      id: 'FDURABLE02',
      name: 'durable.csv',
      content: 'type,first_name,last_name,email,role\nuser,Hal,Lee,hal@acme.test,employee\n',
      user: 'UADMIN',
    });
    // The upload is recorded and its "Reading…" message posted; noting that message's id then fails.
    const lift = await refuse(
      'csv_import',
      'refuse_reading',
      'update',
      `new.file_id = 'FDURABLE02' and new.message_ts is not null and old.message_ts is null`,
    );
    const posted = (text: string) =>
      t.standin.messages.filter(
        (m) => m.method === 'chat.postMessage' && m.channel === 'DUADMIN' && m.text?.includes(text),
      );
    try {
      expect((await t.slack.fileShare('UADMIN', file)).status).toBe(200);
      expect(posted('Reading durable.csv')).toHaveLength(1);
    } finally {
      await lift();
    }
    await eventually(
      () =>
        t.standin.messages.some(
          (m) => m.channel === 'DUADMIN' && m.text?.startsWith('Preview of durable.csv'),
        ),
      30_000,
    );
    await jobsDrained(t.em());
    expect(posted('durable.csv was already uploaded')).toHaveLength(0);
    const [row] = await exec(
      `select count(*)::int as n, min(status) as status from csv_import where file_id = 'FDURABLE02'`,
    );
    expect(row).toMatchObject({ n: 1, status: 'previewed' });
  }, 60_000);
});
