import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type WebSocket, WebSocketServer } from 'ws';
import { blockKitProblems } from './block-kit.ts';
import { type RawResult, type SendOptions, SlackDriver, type SlackResult } from './slack-driver.ts';
import type { SlackObject, SlackStandin } from './slack-standin.ts';

export type EnvelopeType = 'slash_commands' | 'interactive' | 'events_api';

/** What Slack sends down the socket for one request, as documented for Socket Mode. */
export type Envelope = {
  envelope_id: string;
  type: EnvelopeType;
  payload: SlackObject;
  accepts_response_payload: boolean;
  retry_attempt?: number;
  retry_reason?: string;
};

/** The app's acknowledgement of an envelope: its payload (empty for a plain ack) and how long it took. */
export type Ack = { envelopeId: string; payload: SlackObject; afterMs: number };

/** Why Slack asks an app to reconnect: a routine refresh, or Socket Mode turned off in the app's settings. */
export type DisconnectReason = 'refresh_requested' | 'link_disabled' | 'warning';

/** Slack waits this long for an ack before it tells the person something went wrong (or retries an event). */
const ACK_WITHIN_MS = 3000;
const OPEN = 1;

type Pending = { envelope: Envelope; sentAt: number; resolve: (ack: Ack | undefined) => void };

/**
 * A stand-in for Slack's Socket Mode on 127.0.0.1: apps.connections.open on the Web API stand-in (with the
 * app-level token) hands out a one-time ws:// URL to it; each connection is greeted with `hello`, gets
 * envelopes (slash commands, interactivity, events), and must ack each one by envelope id, with a response
 * payload where Slack takes one. It can ask the app to reconnect (`disconnect`) or drop the connection.
 */
export class SocketStandin {
  readonly appToken: string;
  readonly appId: string;
  /** Every envelope sent, in order; a redelivery is a new envelope with a higher retry_attempt. */
  readonly delivered: Envelope[] = [];
  readonly acks: Ack[] = [];
  /** Envelopes Slack would have given up on: not acked within 3 s. */
  readonly unacked: Envelope[] = [];
  /** Messages from the app that acked nothing delivered, or an envelope already acked. */
  readonly strays: unknown[] = [];
  /** Connections that said hello, in order of opening. */
  readonly connections: WebSocket[] = [];
  port = 0;
  private readonly server: WebSocketServer;
  private readonly standin: SlackStandin;
  private readonly tickets = new Set<string>();
  private readonly pending = new Map<string, Pending>();
  private readonly waiters = new Set<() => void>();

  constructor(opts: { standin: SlackStandin; appToken: string; appId?: string }) {
    this.standin = opts.standin;
    this.appToken = opts.appToken;
    this.appId = opts.appId ?? 'AROSTER';
    this.server = new WebSocketServer({
      host: '127.0.0.1',
      port: 0,
      // A URL is good for one connection, as Slack's tickets are.
      verifyClient: ({ req }: { req: IncomingMessage }) => {
        const ticket = new URL(req.url ?? '/', 'ws://x').searchParams.get('ticket') ?? '';
        return this.tickets.delete(ticket);
      },
    });
    this.server.on('connection', (ws) => this.greet(ws));
    opts.standin.answerWith('apps.connections.open', (_args, token) => {
      if (!token) return { ok: false, error: 'not_authed' };
      if (token !== this.appToken) return { ok: false, error: 'invalid_auth' };
      const ticket = randomUUID();
      this.tickets.add(ticket);
      return { ok: true, url: `${this.url}/link/?ticket=${ticket}&app_id=${this.appId}` };
    });
  }

  get url(): string {
    return `ws://127.0.0.1:${this.port}`;
  }

  async listen(): Promise<void> {
    if (!this.server.address()) await new Promise<void>((ok) => this.server.once('listening', () => ok()));
    this.port = (this.server.address() as AddressInfo).port;
  }

  /** Connections open now. */
  open(): WebSocket[] {
    return this.connections.filter((ws) => ws.readyState === OPEN);
  }

  /** Resolves once `count` connections in all have said hello (counting closed ones). */
  waitForConnections(count: number, timeoutMs = 15_000): Promise<void> {
    return this.waitFor(
      () => this.connections.length >= count && this.open().length > 0,
      timeoutMs,
      () => {
        return `${this.connections.length} connection(s) opened, ${this.open().length} open; waited for ${count}`;
      },
    );
  }

  /**
   * Sends one envelope on the newest open connection and waits up to 3 s for its ack; resolves with the
   * ack, or undefined (and records the envelope as unacked) when none came in time.
   */
  async deliver(
    type: EnvelopeType,
    payload: SlackObject,
    opts: { retryAttempt?: number; retryReason?: string } = {},
  ): Promise<{ envelope: Envelope; ack?: Ack }> {
    const ws = this.open().at(-1);
    if (!ws)
      throw new Error('no Socket Mode connection is open: Slack would have nothing to deliver this on');
    const envelope: Envelope = {
      envelope_id: randomUUID(),
      type,
      payload,
      accepts_response_payload: acceptsResponse(type, payload),
      ...(type === 'events_api' || opts.retryAttempt
        ? { retry_attempt: opts.retryAttempt ?? 0, retry_reason: opts.retryReason ?? '' }
        : {}),
    };
    this.delivered.push(envelope);
    const ack = await new Promise<Ack | undefined>((resolve) => {
      const timer = setTimeout(() => {
        this.pending.delete(envelope.envelope_id);
        this.unacked.push(envelope);
        resolve(undefined);
      }, ACK_WITHIN_MS);
      this.pending.set(envelope.envelope_id, {
        envelope,
        sentAt: Date.now(),
        resolve: (a) => {
          clearTimeout(timer);
          resolve(a);
        },
      });
      ws.send(JSON.stringify(envelope));
    });
    return { envelope, ack };
  }

  /**
   * Asks the app to reconnect, as Slack does before recycling a server (`refresh_requested`) or when
   * Socket Mode is turned off (`link_disabled`), and resolves once the app has closed the connection.
   */
  async disconnect(reason: DisconnectReason): Promise<void> {
    const open = this.open();
    await Promise.all(
      open.map(
        (ws) =>
          new Promise<void>((ok) => {
            ws.once('close', () => ok());
            ws.send(JSON.stringify({ type: 'disconnect', reason, debug_info: { host: 'applink-standin' } }));
          }),
      ),
    );
  }

  /** Drops every connection without a word, as a network failure does. */
  drop(): void {
    for (const ws of this.open()) ws.terminate();
  }

  async close(): Promise<void> {
    for (const p of this.pending.values()) p.resolve(undefined);
    this.pending.clear();
    for (const ws of this.server.clients) ws.terminate();
    await new Promise<void>((ok) => this.server.close(() => ok()));
  }

  private greet(ws: WebSocket): void {
    this.connections.push(ws);
    ws.on('message', (data) => this.received(String(data)));
    ws.on('close', () => this.notify());
    ws.send(
      JSON.stringify({
        type: 'hello',
        num_connections: this.open().length,
        debug_info: { host: 'applink-standin', build_number: 1, approximate_connection_time: 18060 },
        connection_info: { app_id: this.appId },
      }),
    );
    this.notify();
  }

  private received(text: string): void {
    let message: SlackObject;
    try {
      message = JSON.parse(text);
    } catch {
      this.strays.push(text);
      return;
    }
    const pending = this.pending.get(String(message.envelope_id));
    if (!pending) {
      this.strays.push(message);
      return;
    }
    this.pending.delete(pending.envelope.envelope_id);
    const ack = {
      envelopeId: pending.envelope.envelope_id,
      payload: (message.payload ?? {}) as SlackObject,
      afterMs: Date.now() - pending.sentAt,
    };
    this.acks.push(ack);
    this.checkBlocks(pending.envelope, ack.payload);
    pending.resolve(ack);
  }

  /** A message or view in an ack is held to Slack's Block Kit limits like any other. */
  private checkBlocks(envelope: Envelope, payload: SlackObject): void {
    const action = payload.response_action;
    const [surface, target] =
      envelope.type === 'slash_commands' && (payload.text || payload.blocks)
        ? (['message', payload] as const)
        : (action === 'update' || action === 'push') && payload.view
          ? (['modal', payload.view as SlackObject] as const)
          : [];
    const problems = surface && target ? blockKitProblems(surface, target) : [];
    if (problems.length)
      this.standin.refusedBlocks.push({ method: `socket ack (${envelope.type})`, problems });
  }

  private waitFor(check: () => boolean, timeoutMs: number, explain: () => string): Promise<void> {
    if (check()) return Promise.resolve();
    return new Promise((ok, fail) => {
      const waiter = () => {
        if (!check()) return;
        cleanup();
        ok();
      };
      const timer = setTimeout(() => {
        cleanup();
        fail(new Error(`timed out after ${timeoutMs} ms: ${explain()}`));
      }, timeoutMs);
      const cleanup = () => {
        clearTimeout(timer);
        this.waiters.delete(waiter);
      };
      this.waiters.add(waiter);
    });
  }

  private notify(): void {
    for (const w of [...this.waiters]) w();
  }
}

/** Slack reads a response from the ack of a command, a view submission and an options request. */
function acceptsResponse(type: EnvelopeType, payload: SlackObject): boolean {
  if (type === 'slash_commands') return true;
  return type === 'interactive' && ['view_submission', 'block_suggestion'].includes(String(payload.type));
}

export async function startSocketStandin(opts: {
  standin: SlackStandin;
  appToken: string;
  appId?: string;
}): Promise<SocketStandin> {
  const socket = new SocketStandin(opts);
  await socket.listen();
  return socket;
}

/** What Slack would put in an envelope for a request the HTTP driver built. */
function envelopeOf(rawBody: string, contentType: string): { type: EnvelopeType; payload: SlackObject } {
  if (contentType.startsWith('application/json')) {
    const body = JSON.parse(rawBody) as SlackObject;
    if (body.type !== 'event_callback') throw new Error(`Socket Mode does not deliver ${body.type} requests`);
    return { type: 'events_api', payload: body };
  }
  const form = new URLSearchParams(rawBody);
  const interactive = form.get('payload');
  if (interactive !== null) return { type: 'interactive', payload: JSON.parse(interactive) };
  if (form.has('command')) return { type: 'slash_commands', payload: Object.fromEntries(form) };
  throw new Error(`not a request Slack sends: ${rawBody.slice(0, 200)}`);
}

/**
 * The Slack driver, delivering over Socket Mode instead of HTTP: every command, click, submission and event
 * goes down the socket as an envelope, and the answer is the app's ack (status 200 with the ack's payload as
 * `json`, or 504 when no ack came within 3 s). `resend()` delivers the same request again with
 * retry_attempt one higher.
 */
export class SocketDriver extends SlackDriver {
  private readonly socket: SocketStandin;

  constructor(opts: { socket: SocketStandin; standin: SlackStandin; teamId?: string }) {
    super({
      appUrl: 'http://socket-mode.invalid',
      signingSecret: 'unused-in-socket-mode',
      standin: opts.standin,
      teamId: opts.teamId,
    });
    this.socket = opts.socket;
  }

  override raw(): Promise<RawResult> {
    throw new Error('Socket Mode has no HTTP endpoint: send requests through the socket');
  }

  override async sendSigned(
    rawBody: string,
    contentType: string,
    opts: SendOptions = {},
  ): Promise<SlackResult> {
    const { type, payload } = envelopeOf(rawBody, contentType);
    const retryAttempt = opts.retryNum ?? 0;
    const { ack } = await this.socket.deliver(type, payload, {
      retryAttempt,
      retryReason: retryAttempt ? (opts.retryReason ?? 'timeout') : '',
    });
    const json = ack && Object.keys(ack.payload).length ? ack.payload : undefined;
    return {
      status: ack ? 200 : 504,
      body: json ? JSON.stringify(json) : '',
      json,
      resend: () => this.sendSigned(rawBody, contentType, { ...opts, retryNum: retryAttempt + 1 }),
    };
  }
}
