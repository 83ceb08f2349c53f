import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { blockKitProblems, type Surface } from './block-kit.ts';
import { RateLimits, type TierOptions } from './slack-tiers.ts';

/**
 * A JSON object as it travels to or from Slack: blocks, views, payloads, API arguments. Its values are `any`
 * on purpose: tests read arbitrary nested fields of what went over the wire.
 */
export type SlackObject = Record<string, any>;

export type Member = {
  id: string;
  name: string;
  realName?: string;
  email?: string;
  isAdmin?: boolean;
  isOwner?: boolean;
  deleted?: boolean;
  isBot?: boolean;
  title?: string;
  phone?: string;
  tz?: string;
  /** Another workspace's member seen through a shared channel (Slack Connect). */
  teamId?: string;
  /**
   * On an Enterprise Grid: every workspace of the organisation the member is in (`enterprise_user.teams`),
   * their own `teamId` among them.
   */
  enterpriseTeams?: string[];
  /**
   * A guest of the workspace: a multi-channel guest (`is_restricted`), or a single-channel guest, which
   * Slack marks with both `is_restricted` and `is_ultra_restricted`.
   */
  guest?: 'multi_channel' | 'single_channel';
};

/** One Web API call as the app made it: the method, its arguments (nested JSON parsed) and the bearer token. */
export type Call = { method: string; args: SlackObject; token?: string; at: number };

/** A message the app posted, updated or posted ephemerally, as Slack would hold it. */
export type PostedMessage = SlackObject & {
  method: 'chat.postMessage' | 'chat.postEphemeral' | 'chat.update';
  channel: string;
  ts: string;
  text?: string;
  blocks?: SlackObject[];
  /** For ephemeral messages: the one person who sees it. */
  user?: string;
};

/** A JSON body the app posted to a response_url (what `respond()` sends). */
export type Response = { url: string; body: SlackObject; at: number };

export type SlackFile = {
  id: string;
  name: string;
  title: string;
  filetype: string;
  mimetype: string;
  size: number;
  url_private: string;
  url_private_download?: string;
  user: string;
  created: number;
  /** A remote file (files.remote.add): kept by another service, whose address Slack gives as its URLs. */
  mode?: 'external';
  is_external?: boolean;
  external_url?: string;
  /** Where the file is shared, as files.info lists it: by conversation, the messages that share it. */
  shares?: { public?: Record<string, { ts: string }[]>; private?: Record<string, { ts: string }[]> };
};

export type UploadedFile = {
  id: string;
  filename: string;
  title?: string;
  content: Buffer;
  channelId?: string;
  initialComment?: string;
  threadTs?: string;
};

export type StandinOptions = {
  members?: Member[];
  teamId?: string;
  /** The workspace's name, as auth.test and team.info give it: Acme unless set. */
  teamName?: string;
  botToken?: string;
  /** Slack's rate-limit tiers, on by default; `{ scale: 10 }` shortens every window tenfold (benches). */
  tiers?: TierOptions;
};

type Failure = { error?: string; status?: number; times: number; when?: (args: SlackObject) => boolean };

/** Fields the Web API client sends as JSON strings inside form bodies. */
const JSON_FIELDS = ['blocks', 'attachments', 'view', 'files', 'metadata', 'unfurls', 'user_auth_blocks'];

const MIME_TYPES: Record<string, string> = {
  csv: 'text/csv',
  txt: 'text/plain',
  text: 'text/plain',
  json: 'application/json',
  pdf: 'application/pdf',
  png: 'image/png',
  jpg: 'image/jpeg',
  xlsx: 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet',
};

/** Methods that need a trigger_id from an interaction, used once. */
const TRIGGERED = new Set(['views.open', 'views.push']);
/** The methods whose blocks Slack checks against its limits, and which limits apply. */
const BLOCK_SURFACES: Record<string, Surface> = {
  'chat.postMessage': 'message',
  'chat.postEphemeral': 'message',
  'chat.update': 'message',
  'views.open': 'modal',
  'views.push': 'modal',
  'views.update': 'modal',
  'views.publish': 'home',
};

function parseArgs(raw: string, contentType: string | undefined): SlackObject {
  const args: SlackObject = {};
  if (contentType?.includes('application/json')) {
    Object.assign(args, raw ? JSON.parse(raw) : {});
  } else {
    for (const [k, v] of new URLSearchParams(raw)) args[k] = v;
  }
  for (const field of JSON_FIELDS) {
    const v = args[field];
    if (typeof v !== 'string') continue;
    try {
      args[field] = JSON.parse(v);
    } catch {
      // not JSON: leave it as sent, as Slack would then reject it
    }
  }
  return args;
}

function readRaw(req: IncomingMessage): Promise<Buffer> {
  return new Promise((ok, fail) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => ok(Buffer.concat(chunks)));
    req.on('error', fail);
  });
}

/** The bytes of an upload: the file part of a multipart form (as the Web API client sends it), else the raw body. */
async function uploadedBytes(raw: Buffer, contentType: string | undefined): Promise<Buffer> {
  if (!contentType?.startsWith('multipart/form-data')) return raw;
  const form = await new Request('http://upload/', {
    method: 'POST',
    headers: { 'content-type': contentType },
    body: new Uint8Array(raw),
  }).formData();
  for (const [, value] of form) {
    if (typeof value !== 'string') return Buffer.from(await value.arrayBuffer());
  }
  const text = form.get('body') ?? form.get('file') ?? form.get('content');
  return Buffer.from(typeof text === 'string' ? text : '');
}

const randomId = (length: number) =>
  randomBytes(length)
    .toString('base64')
    .replace(/[^A-Za-z0-9]/g, '')
    .slice(0, length)
    .padEnd(length, 'x');

/** Slack gives blocks without a block_id, and interactive elements without an action_id, random ones. */
function withIds(blocks: unknown): SlackObject[] | undefined {
  if (!Array.isArray(blocks)) return undefined;
  return (structuredClone(blocks) as SlackObject[]).map((block) => {
    block.block_id ??= randomId(5);
    const elements: SlackObject[] = [
      ...(block.type === 'actions' && Array.isArray(block.elements) ? block.elements : []),
      ...(block.accessory ? [block.accessory] : []),
      ...(block.type === 'input' && block.element ? [block.element] : []),
    ];
    for (const el of elements) if (el.type !== 'image') el.action_id ??= randomId(5);
    return block;
  });
}

/**
 * A stand-in for Slack's Web API on 127.0.0.1: it answers the methods Roster uses with Slack's shapes,
 * keeps a directory of workspace members, the views and messages the app made, serves files and takes
 * uploads, and records every call so tests can assert on them and wait for them.
 */
export class SlackStandin {
  readonly calls: Call[] = [];
  /** Every message or view refused for breaking a Block Kit limit, with what Slack would say. */
  readonly refusedBlocks: { method: string; problems: string[] }[] = [];
  /** Channels Roster can ask about; any other C… id answers as a public channel Roster is in. */
  readonly channels = new Map<
    string,
    {
      name: string;
      is_private: boolean;
      is_member: boolean;
      is_archived?: boolean;
      /** Shared with another organisation through Slack Connect (or invited to be, while pending). */
      is_ext_shared?: boolean;
      is_pending_ext_shared?: boolean;
    }
  >([['C0GENERAL', { name: 'general', is_private: false, is_member: true }]]);
  readonly messages: PostedMessage[] = [];
  readonly responses: Response[] = [];
  /** Every view the app opened, pushed, updated or published, by view id, as last set. */
  readonly views = new Map<string, SlackObject>();
  readonly members = new Map<string, Member>();
  readonly files = new Map<string, SlackFile & { content: Buffer }>();
  readonly uploadedFiles: UploadedFile[] = [];
  readonly teamId: string;
  /** The workspace's name now; a test sets it as an admin renaming the workspace would. */
  teamName: string;
  readonly botToken: string;
  /** Roster's bot user, as auth.test names it: a member Slack links in escaped text like anyone else. */
  readonly bot = { id: 'UBOT', name: 'roster' } as const;
  port = 0;
  private readonly server: Server;
  private readonly failures = new Map<string, Failure[]>();
  private readonly delays = new Map<string, number[]>();
  private readonly lateAnswers = new Map<string, number[]>();
  private readonly rateLimits: RateLimits;
  /**
   * Methods whose 429s come without a Retry-After header ({@link limitRate}'s `withoutRetryAfter`): Slack's
   * answer usually has one, but nothing guarantees it (a proxy or Slack's edge may leave it out).
   */
  private readonly withoutRetryAfter = new Set<string>();
  /** Calls answered 429 because they went over a rate limit (Slack's tiers, or one set by {@link limitRate}). */
  readonly rateLimited: Call[] = [];
  private readonly pendingUploads = new Map<string, { filename: string; length: number; content?: Buffer }>();
  private readonly triggers = new Map<string, { used: boolean; at: number }>();
  private readonly homeViewIds = new Map<string, string>();
  private readonly externalIds = new Map<string, string>();
  private readonly waiters = new Set<() => void>();
  private readonly ownAnswers = new Map<string, (args: SlackObject, token?: string) => SlackObject>();
  private readonly hooks = new Map<string, (args: SlackObject) => Promise<void>>();
  private lastViewId?: string;
  private lastTs = 0n;
  private idCounter = 0;

  constructor(opts: StandinOptions = {}) {
    this.teamId = opts.teamId ?? 'T0001';
    this.teamName = opts.teamName ?? 'Acme';
    this.botToken = opts.botToken ?? 'xoxb-test-bot-token';
    this.rateLimits = new RateLimits(opts.tiers);
    for (const m of opts.members ?? []) this.addMember(m);
    this.server = createServer((req, res) => {
      this.handle(req, res).catch((err: unknown) => {
        res.writeHead(500, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ ok: false, error: 'standin_error', detail: String(err) }));
      });
    });
  }

  get baseUrl(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** The base URL to give the Web API client (`slackApiUrl`). */
  get apiUrl(): string {
    return `${this.baseUrl}/api/`;
  }

  async listen(): Promise<void> {
    await new Promise<void>((ok, fail) => {
      this.server.once('error', fail);
      this.server.listen(0, '127.0.0.1', () => ok());
    });
    this.port = (this.server.address() as AddressInfo).port;
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((ok) => this.server.close(() => ok()));
  }

  addMember(m: Member): void {
    this.members.set(m.id, m);
  }

  /**
   * A member's user object exactly as Slack puts it in users.info, users.list and the team_join and
   * user_change events, for a test to send in an event.
   */
  userOf(id: string): SlackObject {
    const m = this.members.get(id);
    if (!m) throw new Error(`no member ${id} in the Slack stand-in`);
    return this.userObject(m);
  }

  /** The next `times` calls of `method` (those matching `when`, if given) answer `{ ok: false, error }`. */
  failNext(method: string, error: string, times = 1, when?: (args: SlackObject) => boolean): void {
    this.failures.set(method, [...(this.failures.get(method) ?? []), { error, times, when }]);
  }

  /**
   * The next `times` calls of `method` take effect at once (a message appears) but are answered only `ms`
   * later, as when Slack is slow to answer what it did.
   */
  answerLate(method: string, ms: number, times = 1): void {
    this.lateAnswers.set(method, [...(this.lateAnswers.get(method) ?? []), ...Array<number>(times).fill(ms)]);
  }

  /**
   * The next `times` calls of `method` are answered `ms` later, as when Slack is slow; the call takes effect
   * (a message appears) only then.
   */
  delayNext(method: string, ms: number, times = 1): void {
    this.delays.set(method, [...(this.delays.get(method) ?? []), ...Array<number>(times).fill(ms)]);
  }

  /** The next `times` calls of `method` answer with this HTTP status (a 429 comes with `retry-after: 1`). */
  failWithStatus(method: string, status: number, times = 1): void {
    this.failures.set(method, [...(this.failures.get(method) ?? []), { status, times }]);
  }

  /**
   * Replaces Slack's rate limit for a method: at most `max` calls in any `windowMs`; past it, HTTP 429 with
   * `Retry-After: retryAfter` seconds (by default, until the oldest call leaves the window), or with no
   * Retry-After at all when `withoutRetryAfter`. Every method is limited by its documented tier unless the
   * stand-in was started with `tiers: false`.
   */
  limitRate(
    method: string,
    limit: { max: number; windowMs: number; retryAfter?: number; withoutRetryAfter?: boolean },
  ): void {
    const { withoutRetryAfter, ...rest } = limit;
    this.rateLimits.set(method, rest);
    if (withoutRetryAfter) this.withoutRetryAfter.add(method);
    else this.withoutRetryAfter.delete(method);
  }

  /** Shortens Slack's windows `scale` times from now on (1: Slack's own); benches use it. */
  set tierScale(scale: number) {
    this.rateLimits.scale = scale;
  }

  /** Undoes {@link limitRate}: the method is limited by its tier again. */
  clearRateLimit(method: string): void {
    this.rateLimits.clear(method);
    this.withoutRetryAfter.delete(method);
  }

  /**
   * `method` is answered by `answer`, which checks the token itself: Socket Mode's apps.connections.open
   * takes the app-level token, not the bot token (see socket-standin.ts).
   */
  answerWith(method: string, answer: (args: SlackObject, token?: string) => SlackObject): void {
    this.ownAnswers.set(method, answer);
  }

  /**
   * Runs `hook` on every call of `method` before it is answered (the call waits for it), to look at the
   * world while Roster waits on Slack; `null` removes it.
   */
  whileAnswering(method: string, hook: ((args: SlackObject) => Promise<void>) | null): void {
    if (hook) this.hooks.set(method, hook);
    else this.hooks.delete(method);
  }

  /** A file in the workspace, downloadable from the stand-in with the bot token, and known to files.info. */
  addFile(f: {
    id: string;
    name: string;
    content: Buffer | string;
    filetype?: string;
    mimetype?: string;
    size?: number;
    user?: string;
    title?: string;
    /** A remote file kept at this address by another service, as files.remote.add makes them. */
    external?: string;
  }): SlackFile {
    const content = Buffer.isBuffer(f.content) ? f.content : Buffer.from(f.content);
    const extension = f.name.includes('.') ? (f.name.split('.').pop() ?? '').toLowerCase() : '';
    const file = {
      id: f.id,
      name: f.name,
      title: f.title ?? f.name,
      filetype: f.filetype ?? (extension || 'text'),
      mimetype: f.mimetype ?? MIME_TYPES[extension] ?? 'application/octet-stream',
      size: f.size ?? content.length,
      ...(f.external
        ? { url_private: f.external, mode: 'external' as const, is_external: true, external_url: f.external }
        : {
            url_private: `${this.baseUrl}/files/${f.id}/${encodeURIComponent(f.name)}`,
            url_private_download: `${this.baseUrl}/files/${f.id}/download/${encodeURIComponent(f.name)}`,
          }),
      user: f.user ?? 'UADMIN',
      created: Math.floor(Date.now() / 1000),
      content,
    };
    this.files.set(f.id, file);
    return this.publicFile(file);
  }

  /** A fresh response_url on this stand-in, as Slack puts in commands and interactions. */
  responseUrl(): string {
    return `${this.baseUrl}/response/${randomBytes(6).toString('hex')}`;
  }

  /**
   * A trigger id as Slack puts in an interaction (`given`, or a new one). views.open and views.push accept
   * only trigger ids issued here, each once, as Slack does.
   */
  issueTriggerId(given?: string): string {
    const id =
      given ??
      `${Math.floor(Date.now() / 1000)}.${randomBytes(4).readUInt32BE()}.${randomBytes(16).toString('hex')}`;
    this.triggers.set(id, { used: false, at: Date.now() });
    return id;
  }

  callsTo(method: string): Call[] {
    return this.calls.filter((c) => c.method === method);
  }

  lastCall(method: string): Call | undefined {
    return this.callsTo(method).at(-1);
  }

  /** Messages in a channel, or to a person: in their DM (D + user id) or shown only to them (ephemeral). */
  messagesTo(channelOrUser: string): PostedMessage[] {
    return this.messages.filter(
      (m) => m.channel === channelOrUser || m.channel === `D${channelOrUser}` || m.user === channelOrUser,
    );
  }

  /** The last view opened (views.open) or pushed (views.push), as it now stands after any views.update. */
  lastOpenedView(): SlackObject {
    const view = this.lastViewId ? this.views.get(this.lastViewId) : undefined;
    if (!view) {
      throw new Error(
        `the app opened no view; calls: ${this.calls.map((c) => c.method).join(', ') || 'none'}`,
      );
    }
    return view;
  }

  /** The Home tab last published for a user. */
  homeView(userId: string): SlackObject | undefined {
    const id = this.homeViewIds.get(userId);
    return id ? this.views.get(id) : undefined;
  }

  waitForCall(method: string, predicate: (c: Call) => boolean = () => true, timeoutMs = 5000): Promise<Call> {
    return this.waitFor(
      () => this.calls.find((c) => c.method === method && predicate(c)),
      timeoutMs,
      () => `no matching ${method} call; recorded: ${this.calls.map((c) => c.method).join(', ') || 'none'}`,
    );
  }

  /** The latest response_url post matching `predicate`, waiting for one if there is none yet. */
  waitForResponse(predicate: (r: Response) => boolean = () => true, timeoutMs = 5000): Promise<Response> {
    return this.waitFor(
      () => this.responses.findLast(predicate),
      timeoutMs,
      () =>
        `no matching response; received ${this.responses.length}: ${JSON.stringify(this.responses.map((r) => r.body.text ?? r.body)).slice(0, 2000)}`,
    );
  }

  /** The first posted message matching `predicate`, waiting for one if there is none yet. */
  waitForMessage(
    predicate: (m: PostedMessage) => boolean = () => true,
    timeoutMs = 5000,
  ): Promise<PostedMessage> {
    return this.waitFor(
      () => this.messages.find(predicate),
      timeoutMs,
      () =>
        `no matching message; posted ${this.messages.length}: ${JSON.stringify(this.messages.map((m) => `${m.method} ${m.channel}: ${m.text ?? ''}`)).slice(0, 2000)}`,
    );
  }

  /** Forgets what the app did (calls, messages, responses, uploads); members, files, views and failures stay. */
  reset(): void {
    this.calls.length = 0;
    this.messages.length = 0;
    this.responses.length = 0;
    this.uploadedFiles.length = 0;
  }

  private waitFor<T>(find: () => T | undefined, timeoutMs: number, explain: () => string): Promise<T> {
    const found = find();
    if (found) return Promise.resolve(found);
    return new Promise((ok, fail) => {
      const check = () => {
        const hit = find();
        if (hit) {
          cleanup();
          ok(hit);
        }
      };
      const timer = setTimeout(() => {
        cleanup();
        fail(new Error(`timed out after ${timeoutMs} ms: ${explain()}`));
      }, timeoutMs);
      const cleanup = () => {
        clearTimeout(timer);
        this.waiters.delete(check);
      };
      this.waiters.add(check);
    });
  }

  private notify(): void {
    for (const w of [...this.waiters]) w();
  }

  /** Message timestamps: unique and increasing, shaped like Slack's (`1700000000.000100`). */
  private nextTs(): string {
    // Slack's ts is the time the message was posted, in microseconds, and unique within a channel.
    const micros = BigInt(Date.now()) * 1000n > this.lastTs ? BigInt(Date.now()) * 1000n : this.lastTs + 100n;
    this.lastTs = micros;
    const s = micros.toString();
    return `${s.slice(0, -6)}.${s.slice(-6)}`;
  }

  private nextId(prefix: string): string {
    this.idCounter += 1;
    return `${prefix}${String(this.idCounter).padStart(8, '0')}`;
  }

  private publicFile(file: SlackFile & { content: Buffer }): SlackFile {
    const { content: _, ...rest } = file;
    return rest;
  }

  private userObject(m: Member): SlackObject {
    const realName = m.realName ?? m.name;
    const [first = '', ...rest] = realName.split(' ');
    return {
      id: m.id,
      team_id: m.teamId ?? this.teamId,
      name: m.name,
      real_name: realName,
      deleted: Boolean(m.deleted),
      is_admin: Boolean(m.isAdmin),
      is_owner: Boolean(m.isOwner),
      is_primary_owner: false,
      is_restricted: Boolean(m.guest),
      is_ultra_restricted: m.guest === 'single_channel',
      is_bot: Boolean(m.isBot),
      is_app_user: false,
      tz: m.tz ?? 'Europe/London',
      profile: {
        email: m.email,
        real_name: realName,
        real_name_normalized: realName,
        display_name: m.name,
        display_name_normalized: m.name,
        first_name: first,
        last_name: rest.join(' '),
        title: m.title ?? '',
        phone: m.phone ?? '',
        team: m.teamId ?? this.teamId,
      },
      ...(m.enterpriseTeams
        ? {
            enterprise_user: {
              id: m.id,
              enterprise_id: 'E0001',
              enterprise_name: 'Acme Group',
              is_admin: Boolean(m.isAdmin),
              is_owner: Boolean(m.isOwner),
              teams: m.enterpriseTeams,
            },
          }
        : {}),
    };
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', this.baseUrl);
    const raw = await readRaw(req);
    const json = (status: number, body: unknown, headers: Record<string, string> = {}) => {
      res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', ...headers });
      res.end(JSON.stringify(body));
    };
    const [, area, id] = url.pathname.split('/');

    if (area === 'response' && req.method === 'POST') {
      const body = raw.length ? JSON.parse(raw.toString('utf8')) : {};
      const problems = blockKitProblems('message', body);
      if (problems.length) {
        this.refusedBlocks.push({ method: 'response_url', problems });
        this.notify();
        json(400, { ok: false, error: 'invalid_blocks', errors: problems });
        return;
      }
      this.responses.push({ url: url.toString(), body, at: Date.now() });
      this.notify();
      json(200, { ok: true });
      return;
    }

    if (area === 'files' && (req.method === 'GET' || req.method === 'HEAD')) {
      if (req.headers.authorization !== `Bearer ${this.botToken}`) {
        // Slack answers a download without a valid token with its sign-in page, not an error status.
        res.writeHead(403, { 'content-type': 'text/html; charset=utf-8' });
        res.end('<!DOCTYPE html><html><head><title>Slack</title></head><body>Sign in to Slack</body></html>');
        return;
      }
      const file = this.files.get(id ?? '');
      if (!file) {
        res.writeHead(404, { 'content-type': 'text/plain' });
        res.end('not found');
        return;
      }
      res.writeHead(200, { 'content-type': file.mimetype, 'content-length': String(file.content.length) });
      res.end(req.method === 'HEAD' ? undefined : file.content);
      return;
    }

    if (area === 'upload' && req.method === 'POST') {
      const pending = this.pendingUploads.get(id ?? '');
      if (!pending) {
        res.writeHead(404, { 'content-type': 'text/plain' });
        res.end('upload url not found');
        return;
      }
      pending.content = await uploadedBytes(raw, req.headers['content-type']);
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end(`OK - ${pending.content.length}`);
      return;
    }

    if (area !== 'api' || req.method !== 'POST') {
      json(404, { ok: false, error: 'not_found' });
      return;
    }
    const method = url.pathname.slice('/api/'.length);
    const args = parseArgs(raw.toString('utf8'), req.headers['content-type']);
    const bearer = req.headers.authorization?.match(/^Bearer\s+(.+)$/i)?.[1];
    const token = bearer ?? (typeof args.token === 'string' ? args.token : undefined);
    this.calls.push({ method, args, token, at: Date.now() });
    const delay = this.delays.get(method)?.shift();
    if (delay) await new Promise((r) => setTimeout(r, delay));
    await this.hooks.get(method)?.(args);

    const retryAfter = this.rateLimits.check(method, args);
    if (retryAfter !== null) {
      this.rateLimited.push(this.calls.at(-1)!);
      this.notify();
      json(
        429,
        { ok: false, error: 'ratelimited' },
        this.withoutRetryAfter.has(method) ? {} : { 'retry-after': String(retryAfter) },
      );
      return;
    }
    const queue = this.failures.get(method) ?? [];
    const failure = queue.find((f) => !f.when || f.when(args));
    let status = 200;
    let body: SlackObject;
    if (failure) {
      failure.times -= 1;
      if (failure.times <= 0) queue.splice(queue.indexOf(failure), 1);
      status = failure.status ?? 200;
      body = { ok: false, error: failure.error ?? 'fatal_error' };
    } else if (this.ownAnswers.has(method)) {
      body = this.ownAnswers.get(method)!(args, token);
    } else if (!token) {
      body = { ok: false, error: 'not_authed' };
    } else if (token !== this.botToken) {
      body = { ok: false, error: 'invalid_auth' };
    } else {
      body = this.answer(method, args);
    }
    this.notify();
    const late = this.lateAnswers.get(method)?.shift();
    if (late) await new Promise((r) => setTimeout(r, late));
    json(status, body, status === 429 ? { 'retry-after': '1' } : {});
  }

  private answer(method: string, args: SlackObject): SlackObject {
    const surface = BLOCK_SURFACES[method];
    if (surface) {
      const target = surface === 'message' ? args : (args.view as SlackObject | undefined);
      const problems = target ? blockKitProblems(surface, target) : [];
      if (problems.length) {
        this.refusedBlocks.push({ method, problems });
        return {
          ok: false,
          error: 'invalid_blocks',
          errors: problems,
          response_metadata: { messages: problems },
        };
      }
    }
    if (TRIGGERED.has(method)) {
      const trigger = this.triggers.get(String(args.trigger_id ?? args.interactivity_pointer ?? ''));
      if (!trigger) {
        return {
          ok: false,
          error: 'invalid_arguments',
          response_metadata: { messages: ['invalid `trigger_id`'] },
        };
      }
      if (trigger.used) return { ok: false, error: 'exchanged_trigger_id' };
      // Slack takes a trigger for 3 seconds after the person's action.
      if (Date.now() - trigger.at > 3000) return { ok: false, error: 'expired_trigger_id' };
      trigger.used = true;
    }
    switch (method) {
      case 'auth.test':
        return {
          ok: true,
          url: 'https://acme.slack.com/',
          team: this.teamName,
          team_id: this.teamId,
          user: this.bot.name,
          user_id: this.bot.id,
          bot_id: 'BBOT',
          app_id: 'AROSTER',
          is_enterprise_install: false,
        };
      case 'team.info':
        // A bot token reads its own workspace; another one's id is not found.
        if (args.team !== undefined && args.team !== this.teamId)
          return { ok: false, error: 'team_not_found' };
        return {
          ok: true,
          team: {
            id: this.teamId,
            name: this.teamName,
            url: 'https://acme.slack.com/',
            domain: 'acme',
            email_domain: 'acme.test',
            icon: { image_default: true },
            avatar_base_url: 'https://ca.slack-edge.com/',
            is_verified: false,
          },
        };
      case 'users.info': {
        const m = this.members.get(String(args.user));
        return m ? { ok: true, user: this.userObject(m) } : { ok: false, error: 'user_not_found' };
      }
      case 'users.lookupByEmail': {
        const email = String(args.email ?? '').toLowerCase();
        const m = [...this.members.values()].find((x) => x.email?.toLowerCase() === email && !x.deleted);
        return m ? { ok: true, user: this.userObject(m) } : { ok: false, error: 'users_not_found' };
      }
      case 'users.list': {
        // Pages as Slack serves them: `limit` (at most 1,000) from an opaque cursor.
        const all = [...this.members.values()];
        const limit = Math.min(Math.max(Number(args.limit ?? 100) || 100, 1), 1000);
        const start = args.cursor ? Number(Buffer.from(String(args.cursor), 'base64').toString()) : 0;
        if (!Number.isInteger(start) || start < 0) return { ok: false, error: 'invalid_cursor' };
        const next = start + limit < all.length ? Buffer.from(String(start + limit)).toString('base64') : '';
        return {
          ok: true,
          members: all.slice(start, start + limit).map((m) => this.userObject(m)),
          cache_ts: Math.floor(Date.now() / 1000),
          response_metadata: { next_cursor: next },
        };
      }
      case 'conversations.open': {
        const users = String(args.users ?? '').split(',')[0];
        if (!users) return { ok: false, error: 'users_list_not_supplied' };
        return { ok: true, channel: { id: `D${users}` } };
      }
      case 'conversations.history': {
        // Only the bot's DMs can be read (im:history): a channel's needs channels:history, which Roster lacks.
        const channel = String(args.channel ?? '');
        if (!channel.startsWith('D'))
          return { ok: false, error: 'missing_scope', needed: 'channels:history' };
        const oldest = Number(args.oldest ?? 0);
        const limit = Math.min(Number(args.limit ?? 100), 999);
        const found = this.messages
          .filter((m) => m.channel === channel && m.method !== 'chat.postEphemeral' && Number(m.ts) > oldest)
          .reverse()
          .slice(0, limit)
          .map((m) => ({
            type: 'message',
            user: 'UBOT',
            bot_id: 'BBOT',
            text: m.text,
            blocks: m.blocks,
            ts: m.ts,
          }));
        return { ok: true, messages: found, has_more: false };
      }
      case 'conversations.info': {
        const channel = String(args.channel ?? '');
        if (!channel) return { ok: false, error: 'channel_not_found' };
        const isIm = channel.startsWith('D');
        const known = this.channels.get(channel);
        if (known) return { ok: true, channel: { id: channel, is_channel: true, ...known } };
        return {
          ok: true,
          channel: isIm
            ? { id: channel, is_im: true, user: channel.slice(1) }
            : { id: channel, name: 'general', is_channel: true, is_member: true, is_private: false },
        };
      }
      case 'conversations.list': {
        const all = [...this.channels.entries()]
          .filter(([, c]) => !(args.exclude_archived && c.is_archived))
          .filter(([, c]) => !c.is_private || c.is_member)
          .map(([id, c]) => ({ id, is_channel: true, ...c }));
        const limit = Math.min(Number(args.limit ?? 100), 1000);
        const start = Number(args.cursor ?? 0);
        const next = start + limit < all.length ? String(start + limit) : '';
        return {
          ok: true,
          channels: all.slice(start, start + limit),
          response_metadata: { next_cursor: next },
        };
      }
      case 'chat.postMessage': {
        if (!args.channel) return { ok: false, error: 'channel_not_found' };
        if (!args.text && !args.blocks && !args.attachments) return { ok: false, error: 'no_text' };
        const channel = this.dmChannel(String(args.channel));
        const ts = this.nextTs();
        const blocks = withIds(args.blocks);
        this.messages.push({
          ...args,
          ...(blocks ? { blocks } : {}),
          method: 'chat.postMessage',
          channel,
          ts,
        });
        return {
          ok: true,
          channel,
          ts,
          message: {
            type: 'message',
            user: 'UBOT',
            bot_id: 'BBOT',
            app_id: 'AROSTER',
            text: args.text,
            blocks,
            ts,
          },
        };
      }
      case 'chat.postEphemeral': {
        if (!args.channel) return { ok: false, error: 'channel_not_found' };
        if (!args.user) return { ok: false, error: 'user_not_in_channel' };
        if (!args.text && !args.blocks && !args.attachments) return { ok: false, error: 'no_text' };
        const ts = this.nextTs();
        const blocks = withIds(args.blocks);
        this.messages.push({
          ...args,
          ...(blocks ? { blocks } : {}),
          method: 'chat.postEphemeral',
          channel: String(args.channel),
          ts,
        });
        return { ok: true, message_ts: ts };
      }
      case 'chat.update': {
        if (!args.channel) return { ok: false, error: 'channel_not_found' };
        if (!args.ts) return { ok: false, error: 'message_not_found' };
        const channel = String(args.channel);
        const blocks = withIds(args.blocks);
        this.messages.push({
          ...args,
          ...(blocks ? { blocks } : {}),
          method: 'chat.update',
          channel,
          ts: String(args.ts),
        });
        return {
          ok: true,
          channel,
          ts: args.ts,
          text: args.text,
          message: { type: 'message', user: 'UBOT', bot_id: 'BBOT', text: args.text, blocks },
        };
      }
      case 'chat.delete':
        return { ok: true, channel: args.channel, ts: args.ts };
      case 'chat.getPermalink':
        return {
          ok: true,
          channel: args.channel,
          permalink: `https://acme.slack.com/archives/${args.channel}/p${String(args.message_ts).replace('.', '')}`,
        };
      case 'views.open':
      case 'views.push':
        return this.openView(method, args);
      case 'views.update':
        return this.updateView(args);
      case 'views.publish':
        return this.publishView(args);
      case 'files.info': {
        const file = this.files.get(String(args.file));
        return file ? { ok: true, file: this.publicFile(file) } : { ok: false, error: 'file_not_found' };
      }
      case 'files.getUploadURLExternal': {
        const length = Number(args.length);
        if (!args.filename || !Number.isInteger(length) || length < 0) {
          return { ok: false, error: 'invalid_arguments' };
        }
        const id = this.nextId('F');
        this.pendingUploads.set(id, { filename: String(args.filename), length });
        return { ok: true, upload_url: `${this.baseUrl}/upload/${id}`, file_id: id };
      }
      case 'files.completeUploadExternal':
        return this.completeUploads(args);
      default:
        return { ok: false, error: 'unknown_method' };
    }
  }

  private viewFrom(spec: unknown, id: string, extra: SlackObject = {}): SlackObject | null {
    if (!spec || typeof spec !== 'object' || !('type' in spec)) return null;
    const view = spec as SlackObject;
    return {
      private_metadata: '',
      callback_id: '',
      external_id: '',
      clear_on_close: false,
      notify_on_close: false,
      ...view,
      blocks: withIds(view.blocks) ?? [],
      id,
      team_id: this.teamId,
      state: { values: {} },
      hash: `${Math.floor(Date.now() / 1000)}.${randomId(8)}`,
      app_id: 'AROSTER',
      bot_id: 'BBOT',
      ...extra,
    };
  }

  private openView(method: string, args: SlackObject): SlackObject {
    const id = this.nextId('V');
    const previous = method === 'views.push' && this.lastViewId ? this.views.get(this.lastViewId) : undefined;
    const view = this.viewFrom(args.view, id, {
      root_view_id: previous?.root_view_id ?? id,
      previous_view_id: previous?.id ?? null,
    });
    if (!view) return { ok: false, error: 'invalid_arguments' };
    if (view.external_id) {
      if (this.externalIds.has(view.external_id)) return { ok: false, error: 'duplicate_external_id' };
      this.externalIds.set(view.external_id, id);
    }
    this.views.set(id, view);
    this.lastViewId = id;
    return { ok: true, view };
  }

  private updateView(args: SlackObject): SlackObject {
    const id = args.view_id ? String(args.view_id) : this.externalIds.get(String(args.external_id ?? ''));
    const existing = id ? this.views.get(id) : undefined;
    if (!id || !existing) return { ok: false, error: 'not_found' };
    if (args.hash && args.hash !== existing.hash) return { ok: false, error: 'hash_conflict' };
    const view = this.viewFrom(args.view, id, {
      root_view_id: existing.root_view_id ?? id,
      previous_view_id: existing.previous_view_id ?? null,
    });
    if (!view) return { ok: false, error: 'invalid_arguments' };
    this.views.set(id, view);
    return { ok: true, view };
  }

  private publishView(args: SlackObject): SlackObject {
    const userId = String(args.user_id ?? '');
    if (!userId) return { ok: false, error: 'invalid_arguments' };
    // A person's Home tab keeps its view id across publishes.
    const id = this.homeViewIds.get(userId) ?? this.nextId('VH');
    const existing = this.views.get(id);
    if (existing && args.hash && args.hash !== existing.hash) return { ok: false, error: 'hash_conflict' };
    const view = this.viewFrom(args.view, id, { user_id: userId, root_view_id: id, previous_view_id: null });
    if (!view) return { ok: false, error: 'invalid_arguments' };
    if (view.type !== 'home') return { ok: false, error: 'invalid_arguments' };
    this.homeViewIds.set(userId, id);
    this.views.set(id, view);
    return { ok: true, view };
  }

  private completeUploads(args: SlackObject): SlackObject {
    const files = (Array.isArray(args.files) ? args.files : []) as { id: string; title?: string }[];
    if (!files.length) return { ok: false, error: 'invalid_arguments' };
    const done: SlackFile[] = [];
    for (const f of files) {
      const pending = this.pendingUploads.get(f.id);
      if (!pending?.content) return { ok: false, error: 'file_not_found' };
      this.pendingUploads.delete(f.id);
      const title = f.title ?? pending.filename;
      this.uploadedFiles.push({
        id: f.id,
        filename: pending.filename,
        title,
        content: pending.content,
        channelId: args.channel_id,
        initialComment: args.initial_comment,
        threadTs: args.thread_ts,
      });
      this.addFile({ id: f.id, name: pending.filename, title, content: pending.content, user: 'UBOT' });
      const stored = this.files.get(f.id)!;
      if (typeof args.channel_id === 'string') {
        const channel = this.dmChannel(args.channel_id);
        const share = { [channel]: [{ ts: this.nextTs() }] };
        stored.shares = /^C/.test(channel) ? { public: share } : { private: share };
      }
      done.push(this.publicFile(stored));
    }
    return { ok: true, files: done };
  }

  /** Slack answers a post to a user id in the bot's DM with that user, whose id starts with D. */
  private dmChannel(channel: string): string {
    return /^[UW][A-Z0-9]+$/.test(channel) ? `D${channel}` : channel;
  }
}

export async function startSlackStandin(opts: StandinOptions = {}): Promise<SlackStandin> {
  const standin = new SlackStandin(opts);
  await standin.listen();
  return standin;
}
