import { createLogger } from '../src/shared/logger.ts';
import { startTestApp, type TestApp } from './support/app.ts';

// At debug level the Socket Mode client writes out every envelope it receives and every answer it sends:
// what people typed, and answers that show something once. Roster keeps only their kind and size.
const lines: string[] = [];
const logger = createLogger('debug', {
  write(line: string) {
    lines.push(line);
  },
});

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp({ socketMode: true, seatLimit: 10, logger });
});
afterAll(() => t.stop());

it("never writes a Socket Mode envelope's payload or an ack's answer to the log, even at debug level", async () => {
  await t.slack.command('/invite', 'quiet.person@example.com', { user: 'UMANAGER' });
  await t.standin.waitForCall('views.open');
  const view = t.standin.lastOpenedView();
  const refused = await t.slack.submitView(
    view,
    { emails: 'quiet.person@example.com, not-an-email' },
    { user: 'UMANAGER' },
  );
  expect(refused.json?.response_action).toBe('errors');
  const out = lines.join('');
  expect(out).toContain('Received a message on the WebSocket (body not logged)');
  expect(out).not.toContain('quiet.person');
  expect(out).not.toContain('not-an-email');
});
