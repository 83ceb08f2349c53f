import { query, sql } from '../../../src/db/sql.ts';
import { eventually, jobsDrained, startTestApp, type TestApp } from '../../support/app.ts';
import { textOf } from '../../support/views.ts';
import { addEndpoint, featuresWith, openWebhooks, type Receiver, startReceiver } from './support.ts';

let t: TestApp;
let hooks: Receiver;

beforeAll(async () => {
  hooks = await startReceiver();
  t = await startTestApp({ seatLimit: 10, features: featuresWith() });
});
afterAll(async () => {
  await t.stop();
  await hooks.close();
});

describe('a Webhooks modal redraw postponed because Slack asked Roster to slow down', () => {
  it('is dropped when a newer redraw of the modal landed first; its notice still reaches the admin', async () => {
    const { id } = await addEndpoint(t, hooks.url);
    const list = await openWebhooks(t);
    const shown = () => t.standin.views.get(list.id)!;

    // Slack answers the first redraw with a 429 (retry after 4 s): it is postponed, the endpoint already
    // disabled.
    t.standin.limitRate('views.update', { max: 0, windowMs: 60_000, retryAfter: 4 });
    await t.slack.clickButton(list, { actionId: 'webhooks_disable', value: id }, { user: 'UADMIN' });
    t.standin.clearRateLimit('views.update');
    const [row] = await query<{ enabled: boolean }>(
      t.em(),
      sql`select enabled from webhook_endpoint where id = ${id}`,
    );
    expect(row?.enabled).toBe(false);
    expect(textOf(shown())).not.toContain('is disabled');

    // Before the postponed redraw is made, the admin enables it again from the same modal: redrawn at once.
    await t.slack.blockAction({
      user: 'UADMIN',
      view: shown(),
      actions: [{ type: 'button', action_id: 'webhooks_enable', value: id }],
    });
    expect(textOf(shown())).toContain('is enabled; what was waiting goes out now.');

    // The postponed redraw comes due: the modal keeps the newer one, and the admin gets its notice by DM.
    await jobsDrained(t.em());
    expect(textOf(shown())).toContain('is enabled; what was waiting goes out now.');
    expect(textOf(shown())).toContain(':large_green_circle: On');
    expect(textOf(shown())).not.toContain('is disabled');
    await eventually(() =>
      t.standin
        .messagesTo('UADMIN')
        .find((m) => String(m.text).includes('is disabled: no events are queued')),
    );
  });
});
