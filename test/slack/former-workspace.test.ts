/**
 * A database that served another workspace before (SLACK_BOT_TOKEN moved from a trial workspace to the real
 * one): Roster answers and reads the directory of the bot token's workspace only.
 */
import { randomUUID } from 'node:crypto';
import type { Roster } from '../../src/app.ts';
import { query, sql } from '../../src/db/sql.ts';
import { DIRECTORY_JOBS } from '../../src/features/directory/index.ts';
import { NOT_INSTALLED } from '../../src/slack/app.ts';
import {
  eventually,
  jobsDrained,
  SIGNING_SECRET,
  startSecondInstance,
  startTestApp,
  type TestApp,
} from '../support/app.ts';
import { SlackDriver } from '../support/slack-driver.ts';
import { textOf } from '../support/views.ts';

const FORMER_TEAM = 'T0FORMER';
let t: TestApp;
let restarted: Roster;
let formerAccountId: string;

beforeAll(async () => {
  t = await startTestApp();
  await eventually(async () => (await t.roster.deps.directory.syncedAt(t.em(), await t.account())) !== null);
  // What a deployment that served the former workspace with its own bot token left in the database.
  formerAccountId = randomUUID();
  await query(
    t.em(),
    sql`insert into account (id, team_id, name) values (${formerAccountId}, ${FORMER_TEAM}, 'Trial')`,
  );
  await query(
    t.em(),
    sql`insert into slack_installation (id, team_id, team_name, bot_user_id, created_at, updated_at)
        values (${randomUUID()}, ${FORMER_TEAM}, 'Trial', 'UOLDBOT', now(), now())`,
  );
  // Roster started again, with the database as it is now.
  restarted = await startSecondInstance(t);
});
afterAll(async () => {
  await restarted?.stop();
  await t.stop();
});

describe('a workspace the database knows but the bot token does not belong to', () => {
  it('is refused like any workspace that has not installed Roster', async () => {
    const former = new SlackDriver({
      appUrl: restarted.url,
      signingSecret: SIGNING_SECRET,
      standin: t.standin,
      teamId: FORMER_TEAM,
    });
    const opened = t.standin.callsTo('views.open').length;
    const res = await former.command('/invite', '', { user: 'UFORMERADMIN' });
    expect(textOf(res.json)).toBe(NOT_INSTALLED);
    expect(t.standin.callsTo('views.open').length).toBe(opened);
  });

  it("does not get the bot token's workspace written into its directory by the sync", async () => {
    await t.roster.jobs.send(DIRECTORY_JOBS.sync, { force: true });
    await jobsDrained(t.em());
    const [row] = await query<{ n: number }>(
      t.em(),
      sql`select count(*)::int as n from slack_member where account_id = ${formerAccountId}`,
    );
    expect(row!.n).toBe(0);
  });
});
