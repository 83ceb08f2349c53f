import WebSocket from 'ws';
import { type SlackStandin, startSlackStandin } from './support/slack-standin.ts';
import { type SocketStandin, startSocketStandin } from './support/socket-standin.ts';

// The Socket Mode stand-in holds the app to what Slack holds it to; these check the stand-in itself.
let standin: SlackStandin;
let socket: SocketStandin;
const APP_TOKEN = 'xapp-1-AROSTER-standin';

beforeAll(async () => {
  standin = await startSlackStandin({ botToken: 'xoxb-standin' });
  socket = await startSocketStandin({ standin, appToken: APP_TOKEN });
});
afterAll(async () => {
  await socket.close();
  await standin.close();
});

async function open(token: string): Promise<Record<string, any>> {
  const res = await fetch(`${standin.apiUrl}apps.connections.open`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}` },
  });
  return (await res.json()) as Record<string, any>;
}

/** Connects to `url` and resolves with the socket and the first message it received. */
function connect(url: string): Promise<{ ws: WebSocket; first: Record<string, any> }> {
  return new Promise((ok, fail) => {
    const ws = new WebSocket(url);
    ws.once('message', (data) => ok({ ws, first: JSON.parse(String(data)) }));
    ws.once('unexpected-response', (_req, res) => fail(new Error(`refused with HTTP ${res.statusCode}`)));
    ws.once('error', fail);
  });
}

describe('the Socket Mode stand-in', () => {
  it('hands a connection URL only for the app-level token, each usable once', async () => {
    expect(await open('xoxb-standin')).toEqual({ ok: false, error: 'invalid_auth' });
    const answer = await open(APP_TOKEN);
    expect(answer).toMatchObject({
      ok: true,
      url: expect.stringMatching(/^ws:\/\/127\.0\.0\.1:\d+\/link\/\?ticket=/),
    });
    const { ws, first } = await connect(answer.url);
    expect(first).toMatchObject({ type: 'hello', connection_info: { app_id: 'AROSTER' } });
    await expect(connect(answer.url)).rejects.toThrow('refused with HTTP 401');
    ws.close();
  });

  it('waits 3 s for an ack by envelope id, and keeps what acked nothing', async () => {
    const { ws } = await connect((await open(APP_TOKEN)).url);
    const seen: Record<string, any>[] = [];
    ws.on('message', (data) => {
      const envelope = JSON.parse(String(data));
      seen.push(envelope);
      if (envelope.payload.command === '/ack-me') {
        ws.send(JSON.stringify({ envelope_id: envelope.envelope_id, payload: { text: 'done' } }));
      }
      if (envelope.payload.command === '/wrong-id') ws.send(JSON.stringify({ envelope_id: 'not-one-sent' }));
    });
    const acked = await socket.deliver('slash_commands', { command: '/ack-me' });
    expect(acked.ack?.payload).toEqual({ text: 'done' });
    expect(acked.envelope.accepts_response_payload).toBe(true);

    const ignored = await socket.deliver('slash_commands', { command: '/wrong-id' });
    expect(ignored.ack).toBeUndefined();
    expect(socket.unacked.map((e) => e.payload.command)).toEqual(['/wrong-id']);
    expect(socket.strays).toEqual([{ envelope_id: 'not-one-sent' }]);
    expect(seen.map((e) => e.type)).toEqual(['slash_commands', 'slash_commands']);
    ws.close();
  });

  it("holds a message in a command's ack to Slack's Block Kit limits", async () => {
    const { ws } = await connect((await open(APP_TOKEN)).url);
    ws.on('message', (data) => {
      const envelope = JSON.parse(String(data));
      const blocks = Array.from({ length: 51 }, () => ({ type: 'divider' }));
      ws.send(JSON.stringify({ envelope_id: envelope.envelope_id, payload: { text: 'too long', blocks } }));
    });
    await socket.deliver('slash_commands', { command: '/too-many-blocks' });
    expect(standin.refusedBlocks).toEqual([
      { method: 'socket ack (slash_commands)', problems: [expect.stringContaining('51 blocks')] },
    ]);
    ws.close();
  });
});
