import { AuditEvent } from '../src/features/audit/audit-event.entity.ts';
import { User } from '../src/features/people/user.entity.ts';
import { SeatRequest } from '../src/features/seats/seat-request.entity.ts';
import { APP_TOKEN, eventually, startTestApp, submitWhileWorked, type TestApp } from './support/app.ts';
import type { SocketStandin } from './support/socket-standin.ts';
import { textOf } from './support/views.ts';

// Roster in Socket Mode, end to end: everything Slack sends arrives as envelopes on a WebSocket that
// Roster opened itself, and every answer Slack reads is an ack on that socket.
let t: TestApp;
let socket: SocketStandin;

beforeAll(async () => {
  t = await startTestApp({ socketMode: true, seatLimit: 10 });
  socket = t.socket!;
});
afterAll(() => t.stop());

async function readyz(): Promise<{ status: number; body: Record<string, any> }> {
  const res = await fetch(`${t.url}/readyz`);
  return { status: res.status, body: (await res.json()) as Record<string, any> };
}

const audits = (action: string) => t.em().count(AuditEvent, { action });

/** The seat request for `email` as posted in an admin's DM, with its Approve and Reject buttons. */
const requestMessage = (email: string, admin = 'UADMIN') =>
  eventually(() =>
    t.standin.messages.find(
      (m) => m.method === 'chat.postMessage' && m.channel === `D${admin}` && textOf(m).includes(email),
    ),
  );

describe('Roster in Socket Mode', () => {
  it('opens its socket with the app-level token and says so in /readyz', async () => {
    const open = t.standin.callsTo('apps.connections.open');
    expect(open).toHaveLength(1);
    expect(open[0]?.token).toBe(APP_TOKEN);
    expect(socket.open()).toHaveLength(1);
    const ready = await readyz();
    expect(ready.status).toBe(200);
    expect(ready.body.checks.socketMode).toMatch(/^connected since \d{4}-\d\d-\d\dT/);
  });

  it('answers a command with a modal, a form error in the ack, and a valid submission once', async () => {
    const command = await t.slack.command('/invite', 'ana@example.com', { user: 'UMANAGER' });
    expect(command.status).toBe(200);
    const opened = await t.standin.waitForCall('views.open');
    expect(opened.args.trigger_id).toBe(t.slack.triggerIds.at(-1));
    const view = t.standin.lastOpenedView();
    expect(view.callback_id).toBe('invite_modal');
    expect(view.blocks.find((b: any) => b.block_id === 'emails').element.initial_value).toBe(
      'ana@example.com',
    );

    // The field error travels back in the ack, where Slack reads it, and nothing is written.
    const users = await t.em().count(User, {});
    const refused = await t.slack.submitView(
      view,
      { emails: 'ana@example.com, not-an-email' },
      { user: 'UMANAGER' },
    );
    expect(refused.status).toBe(200);
    expect(refused.json).toEqual({
      response_action: 'errors',
      errors: {
        emails:
          'Not valid email addresses: not-an-email. Fix or remove them; a name goes with its address as Ana Lopez <ana@example.com>.',
      },
    });
    expect(socket.delivered.at(-1)?.accepts_response_payload).toBe(true);
    expect(await t.em().count(User, {})).toBe(users);

    // A manager's paid invitation becomes a seat request to the admins.
    const accepted = await t.slack.submitView(view, { emails: 'ana@example.com' }, { user: 'UMANAGER' });
    expect(accepted).toMatchObject({ status: 200, json: undefined });
    const message = await requestMessage('ana@example.com');
    expect(textOf(message)).toContain('<@UMANAGER>');

    // Slack delivering the same submission again (a new envelope, retry_attempt 1) changes nothing.
    const again = await accepted.resend();
    expect(again.status).toBe(200);
    expect(socket.delivered.at(-1)?.retry_attempt).toBe(1);
    await eventually(async () => (await audits('slack.replay_refused')) >= 1);
    expect(await t.em().count(SeatRequest, { email: 'ana@example.com' })).toBe(1);
  });

  it('takes a button click once, however often Slack delivers it', async () => {
    const message = await requestMessage('ana@example.com');
    const click = await t.slack.clickButton(message, { actionId: 'seat_approve' }, { user: 'UADMIN' });
    expect(click.status).toBe(200);
    const request = await eventually(async () => {
      const r = await t.em().findOneOrFail(SeatRequest, { status: { $ne: 'pending' } });
      return r.status === 'approved' ? r : undefined;
    });
    expect(request.decidedBy).toBe('UADMIN');
    await eventually(() =>
      t.standin.messages.find(
        (m) =>
          m.method === 'chat.update' && m.ts === message.ts && textOf(m).includes('Approved by <@UADMIN>'),
      ),
    );
    const refusedBefore = await audits('slack.replay_refused');
    await click.resend();
    await eventually(async () => (await audits('slack.replay_refused')) > refusedBefore);
    expect(await audits('seat_request.approved')).toBe(1);
    expect(await t.em().count(User, { email: 'ana@example.com' })).toBe(1);
  });

  it('handles an event, and a redelivered event only once', async () => {
    const publishes = () => t.standin.callsTo('views.publish').filter((c) => c.args.user_id === 'UMEMBER');
    const opened = await t.slack.event({ type: 'app_home_opened', user: 'UMEMBER', tab: 'home' });
    expect(opened.status).toBe(200);
    expect(socket.delivered.at(-1)).toMatchObject({ type: 'events_api', retry_attempt: 0 });
    await eventually(() => publishes().length === 1);
    expect(t.standin.homeView('UMEMBER')?.type).toBe('home');

    const refusedBefore = await audits('slack.replay_refused');
    const retried = await opened.resend();
    expect(retried.status).toBe(200);
    expect(socket.delivered.at(-1)).toMatchObject({ retry_attempt: 1, retry_reason: 'timeout' });
    await eventually(async () => (await audits('slack.replay_refused')) > refusedBefore);
    expect(publishes()).toHaveLength(1);

    // A member who joins the workspace is known from the event alone.
    const lookups = t.standin.callsTo('users.info').length;
    await t.slack.event({
      type: 'team_join',
      user: {
        id: 'UJOINER',
        team_id: 'T0001',
        name: 'jo',
        is_admin: true,
        profile: { email: 'jo@acme.test' },
      },
    });
    // The event's jobs are done before Slack hears back, or soon after on a busy machine.
    await eventually(async () =>
      Boolean(await t.roster.deps.directory.byId(t.em(), await t.account(), 'UJOINER')),
    );
    await t.slack.command('/seats', '11', { user: 'UJOINER' });
    await t.standin.waitForResponse((r) => textOf(r.body).includes('The seat limit is now 11'));
    expect(t.standin.callsTo('users.info')).toHaveLength(lookups);
  });

  it('reconnects when Slack asks it to, says so in /readyz meanwhile, and takes commands again', async () => {
    const opened = socket.connections.length;
    await socket.disconnect('refresh_requested');
    const down = await readyz();
    expect(down.status).toBe(503);
    expect(down.body.checks.socketMode).toMatch(
      /^reconnecting since \S+ \(Slack asked Roster to reconnect \(refresh_requested\)/,
    );
    expect(down.body.reasons).toContainEqual(
      expect.stringMatching(/^the Socket Mode connection to Slack is down since .*; Roster is reconnecting$/),
    );

    await socket.waitForConnections(opened + 1);
    await eventually(async () => (await readyz()).status === 200);
    expect((await readyz()).body.checks.socketMode).toMatch(/^connected since /);
    expect(t.standin.callsTo('apps.connections.open')).toHaveLength(opened + 1);

    const res = await t.slack.command('/seats', '', { user: 'UMEMBER' });
    expect(res.status).toBe(200);
    await t.standin.waitForResponse((r) => /Paid seats:\* \d+ of 11 used/.test(textOf(r.body)));
  });

  it('acknowledges a form still being worked when Slack asks it to reconnect, field errors and all', async () => {
    const opened = socket.connections.length;
    const { answer } = await submitWhileWorked(t, () => socket.disconnect('refresh_requested'));
    expect(answer.status).toBe(200);
    expect(answer.json?.response_action).toBe('errors');
    await socket.waitForConnections(opened + 1);
    await eventually(async () => (await readyz()).status === 200);
  });

  it('goes to reconnecting when the connection drops without a word, and back to connected', async () => {
    const opened = socket.connections.length;
    const before = await readyz();
    socket.drop();
    const down = await eventually(async () => {
      const r = await readyz();
      return r.body.checks.socketMode.startsWith('reconnecting') ? r : undefined;
    });
    expect(down.status).toBe(503);
    expect(down.body.checks.socketMode).toContain('the connection to Slack was lost');
    const since = Date.parse(down.body.checks.socketMode.split(' ')[2]);
    expect(since).toBeGreaterThan(Date.parse(before.body.checks.socketMode.split(' ')[2]));

    await socket.waitForConnections(opened + 1);
    const up = await eventually(async () => {
      const r = await readyz();
      return r.status === 200 ? r : undefined;
    });
    expect(up.body.checks.socketMode).toMatch(/^connected since /);
    expect(Date.parse(up.body.checks.socketMode.split(' ')[2])).toBeGreaterThanOrEqual(since);
  });

  it('names the fix when Slack turns Socket Mode off for the app', async () => {
    const opened = socket.connections.length;
    await socket.disconnect('link_disabled');
    const down = await readyz();
    expect(down.status).toBe(503);
    expect(down.body.checks.socketMode).toContain('turn it on again under Settings → Socket Mode');
    // Once it is on again, Roster is back without a restart.
    await socket.waitForConnections(opened + 1);
    await eventually(async () => (await readyz()).status === 200);
  });

  it('keeps trying when Slack refuses a reconnect, says what to fix meanwhile, and is back once Slack accepts', async () => {
    const opened = socket.connections.length;
    const asked = t.standin.callsTo('apps.connections.open').length;
    t.standin.failNext('apps.connections.open', 'invalid_auth');
    socket.drop();
    const refused = await eventually(async () => {
      const r = await readyz();
      return r.body.checks.socketMode.startsWith('disconnected') ? r : undefined;
    }, 15_000);
    expect(refused.status).toBe(503);
    expect(refused.body.checks.socketMode).toContain(
      'Slack refused SLACK_APP_TOKEN (invalid_auth) when reconnecting: generate a new app-level token',
    );
    expect(refused.body.reasons).toContainEqual(
      expect.stringMatching(/^the Socket Mode connection to Slack is closed since /),
    );
    // Tried again after a pause, without a restart.
    await socket.waitForConnections(opened + 1);
    await eventually(async () => (await readyz()).status === 200);
    expect(t.standin.callsTo('apps.connections.open')).toHaveLength(asked + 2);
    const res = await t.slack.command('/seats', '', { user: 'UMEMBER' });
    expect(res.status).toBe(200);
  });
});
