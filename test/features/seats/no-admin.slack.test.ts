import { SeatRequest } from '../../../src/features/seats/seat-request.entity.ts';
import { eventually, startTestApp, type TestApp } from '../../support/app.ts';

let t: TestApp;

// A workspace whose only owner has left Slack: nobody can approve a seat.
beforeAll(async () => {
  t = await startTestApp({
    seatLimit: 5,
    members: [
      {
        id: 'UGONE',
        name: 'gone',
        realName: 'Gone Owner',
        email: 'gone@acme.test',
        isOwner: true,
        deleted: true,
      },
      { id: 'UMANAGER', name: 'mia', realName: 'Mia Manager', email: 'mia@acme.test' },
    ],
  });
});
afterAll(() => t.stop());

describe('a seat request with no admin to ask', () => {
  it('tells the requester that nobody can approve it and how to fix that', async () => {
    await t.slack.command('/invite', 'hire@example.com', { user: 'UMANAGER' });
    await t.slack.submitView(t.standin.lastOpenedView(), {}, { user: 'UMANAGER' });
    const request = await t.em().findOneOrFail(SeatRequest, { email: 'hire@example.com' });
    expect(request.status).toBe('pending');
    const warning = await eventually(() =>
      t.standin.messagesTo('UMANAGER').find((m) => String(m.text).includes('found no admin')),
    );
    expect(warning.text).toBe(
      ':warning: Roster found no admin to approve the seat for hire@example.com. Ask a workspace admin to set an approval channel with `/seats channel #channel`.',
    );
    // Nobody else was sent the request.
    expect(t.standin.messages.some((m) => JSON.stringify(m.blocks ?? []).includes(request.id))).toBe(false);
  });
});
