import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

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
};

export type Call = { method: string; args: Record<string, any>; token?: string; at: number };
/** A message the app posted, updated or posted ephemerally, as Slack would hold it. */
export type PostedMessage = {
  method: string;
  channel: string;
  ts: string;
  text?: string;
  blocks?: any[];
  user?: string;
  [key: string]: any;
};
export type Response = { url: string; body: Record<string, any>; at: number };
export type SlackFile = {
  id: string;
  name: string;
  title: string;
  filetype: string;
  mimetype: string;
  size: number;
  url_private: string;
  url_private_download: string;
  user: string;
};
export type UploadedFile = {
  id: string;
  filename: string;
  title?: string;
  content: Buffer;
  channelId?: string;
  initialComment?: string;
};

function parseArgs(raw: string, contentType: string | undefined): Record<string, any> {
  let args: Record<string, any> = {};
  if (contentType?.includes('application/json')) {
    args = raw ? JSON.parse(raw) : {};
  } else {
    for (const [k, v] of new URLSearchParams(raw)) args[k] = v;
  }
  // The Web API client sends nested values (blocks, view, attachments) as JSON strings in form bodies.
  for (const [k, v] of Object.entries(args)) {
    if (typeof v === 'string' && /^[[{]/.test(v.trim())) {
      try {
        args[k] = JSON.parse(v);
      } catch {
        // a plain string that happens to start with a bracket
      }
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

/**
 * A stand-in for Slack's Web API on 127.0.0.1: it answers the methods Roster uses with Slack's shapes,
 * keeps a directory of workspace members, and records every call so tests can assert on them.
 */
export class SlackStandin {
  readonly calls: Call[] = [];
  readonly messages: PostedMessage[] = [];
  readonly responses: Response[] = [];
  readonly views = new Map<string, any>();
  readonly members = new Map<string, Member>();
  readonly files = new Map<string, SlackFile & { content: Buffer }>();
  readonly uploadedFiles: UploadedFile[] = [];
  readonly teamId: string;
  readonly botToken: string;
  private readonly server: Server;
  private readonly failures = new Map<
    string,
    { error?: string; status?: number; times: number; when?: (args: Record<string, any>) => boolean }[]
  >();
  private readonly pendingUploads = new Map<string, { filename: string; content?: Buffer }>();
  private readonly waiters = new Set<() => void>();
  private lastViewId?: string;
  private tsCounter = 0;
  private idCounter = 0;
  port = 0;

  constructor(opts: { members?: Member[]; teamId?: string; botToken?: string } = {}) {
    this.teamId = opts.teamId ?? 'T0001';
    this.botToken = opts.botToken ?? 'xoxb-test-bot-token';
    for (const m of opts.members ?? []) this.addMember(m);
    this.server = createServer((req, res) => {
      this.handle(req, res).catch((err) => {
        res.writeHead(500, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ ok: false, error: 'standin_error', detail: String(err) }));
      });
    });
  }

  get baseUrl(): string {
    return `http://127.0.0.1:${this.port}`;
  }
  get apiUrl(): string {
    return `${this.baseUrl}/api/`;
  }

  async listen(): Promise<void> {
    await new Promise<void>((ok) => this.server.listen(0, '127.0.0.1', ok));
    this.port = (this.server.address() as AddressInfo).port;
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((ok) => this.server.close(() => ok()));
  }

  addMember(m: Member): void {
    this.members.set(m.id, m);
  }

  /** The next `times` calls of `method` (those matching `when`, if given) answer `{ ok: false, error }`. */
  failNext(method: string, error: string, times = 1, when?: (args: Record<string, any>) => boolean): void {
    this.failures.set(method, [...(this.failures.get(method) ?? []), { error, times, when }]);
  }

  /** The next `times` calls of `method` answer with this HTTP status. */
  failWithStatus(method: string, status: number, times = 1): void {
    this.failures.set(method, [...(this.failures.get(method) ?? []), { status, times }]);
  }

  addFile(f: {
    id: string;
    name: string;
    content: Buffer | string;
    filetype?: string;
    mimetype?: string;
    size?: number;
    user?: string;
  }): SlackFile {
    const content = Buffer.isBuffer(f.content) ? f.content : Buffer.from(f.content);
    const file = {
      id: f.id,
      name: f.name,
      title: f.name,
      filetype: f.filetype ?? f.name.split('.').pop() ?? 'text',
      mimetype: f.mimetype ?? 'text/csv',
      size: f.size ?? content.length,
      url_private: `${this.baseUrl}/files/${f.id}/${encodeURIComponent(f.name)}`,
      url_private_download: `${this.baseUrl}/files/${f.id}/download/${encodeURIComponent(f.name)}`,
      user: f.user ?? 'UADMIN',
      content,
    };
    this.files.set(f.id, file);
    const { content: _, ...publicFile } = file;
    return publicFile;
  }

  /** A fresh response_url on this stand-in, as Slack puts in commands and interactions. */
  responseUrl(): string {
    return `${this.baseUrl}/response/${randomBytes(6).toString('hex')}`;
  }

  callsTo(method: string): Call[] {
    return this.calls.filter((c) => c.method === method);
  }
  lastCall(method: string): Call | undefined {
    return this.callsTo(method).at(-1);
  }
  messagesTo(channel: string): PostedMessage[] {
    return this.messages.filter(
      (m) => m.channel === channel || m.channel === `D${channel}` || m.user === channel,
    );
  }
  lastOpenedView(): any {
    if (!this.lastViewId) throw new Error('the app opened no view');
    return this.views.get(this.lastViewId);
  }

  waitForCall(method: string, predicate: (c: Call) => boolean = () => true, timeoutMs = 5000): Promise<Call> {
    return this.waitFor(
      () => this.calls.find((c) => c.method === method && predicate(c)),
      timeoutMs,
      () => `no matching ${method} call; recorded: ${this.calls.map((c) => c.method).join(', ') || 'none'}`,
    );
  }

  waitForResponse(predicate: (r: Response) => boolean = () => true, timeoutMs = 5000): Promise<Response> {
    return this.waitFor(
      () => [...this.responses].reverse().find(predicate),
      timeoutMs,
      () =>
        `no matching response; received: ${JSON.stringify(this.responses.map((r) => r.body.text ?? r.body)).slice(0, 2000)}`,
    );
  }

  reset(): void {
    this.calls.length = 0;
    this.messages.length = 0;
    this.responses.length = 0;
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

  private nextTs(): string {
    this.tsCounter += 1;
    return `1700000000.${String(this.tsCounter).padStart(6, '0')}`;
  }

  private nextId(prefix: string): string {
    this.idCounter += 1;
    return `${prefix}${String(this.idCounter).padStart(8, '0')}`;
  }

  private userObject(m: Member) {
    const [first, ...rest] = (m.realName ?? m.name).split(' ');
    return {
      id: m.id,
      team_id: this.teamId,
      name: m.name,
      real_name: m.realName ?? m.name,
      deleted: Boolean(m.deleted),
      is_admin: Boolean(m.isAdmin),
      is_owner: Boolean(m.isOwner),
      is_primary_owner: false,
      is_bot: Boolean(m.isBot),
      tz: m.tz ?? 'Europe/London',
      profile: {
        email: m.email,
        real_name: m.realName ?? m.name,
        display_name: m.name,
        first_name: first,
        last_name: rest.join(' '),
        title: m.title ?? '',
        phone: m.phone ?? '',
      },
    };
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', this.baseUrl);
    const raw = await readRaw(req);
    const json = (status: number, body: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };

    if (url.pathname.startsWith('/response/')) {
      this.responses.push({
        url: url.toString(),
        body: raw.length ? JSON.parse(raw.toString('utf8')) : {},
        at: Date.now(),
      });
      this.notify();
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end('ok');
      return;
    }

    if (url.pathname.startsWith('/files/')) {
      const id = url.pathname.split('/')[2] ?? '';
      const file = this.files.get(id);
      if (req.headers.authorization !== `Bearer ${this.botToken}`) {
        res.writeHead(403, { 'content-type': 'text/html' });
        res.end('<html><body>Sign in to Slack</body></html>');
        return;
      }
      if (!file) {
        res.writeHead(404, { 'content-type': 'text/plain' });
        res.end('not found');
        return;
      }
      res.writeHead(200, { 'content-type': file.mimetype, 'content-length': String(file.content.length) });
      res.end(file.content);
      return;
    }

    if (url.pathname.startsWith('/upload/')) {
      const id = url.pathname.split('/')[2] ?? '';
      const pending = this.pendingUploads.get(id);
      if (!pending) {
        res.writeHead(404);
        res.end();
        return;
      }
      pending.content = raw;
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end(`OK - ${raw.length}`);
      return;
    }

    if (!url.pathname.startsWith('/api/')) {
      json(404, { ok: false, error: 'not_found' });
      return;
    }
    const method = url.pathname.slice('/api/'.length);
    const args = parseArgs(raw.toString('utf8'), req.headers['content-type']);
    const token = req.headers.authorization?.replace(/^Bearer\s+/i, '') ?? (args.token as string | undefined);
    this.calls.push({ method, args, token, at: Date.now() });

    const queue = this.failures.get(method) ?? [];
    const failure = queue.find((f) => !f.when || f.when(args));
    if (failure) {
      failure.times -= 1;
      if (failure.times <= 0) queue.splice(queue.indexOf(failure), 1);
      this.notify();
      if (failure.status) {
        json(failure.status, { ok: false, error: 'fatal_error' });
      } else {
        json(200, { ok: false, error: failure.error });
      }
      return;
    }
    if (token !== this.botToken) {
      this.notify();
      json(200, { ok: false, error: 'invalid_auth' });
      return;
    }
    const body = this.answer(method, args);
    this.notify();
    json(200, body);
  }

  private answer(method: string, args: Record<string, any>): Record<string, unknown> {
    switch (method) {
      case 'auth.test':
        return {
          ok: true,
          url: 'https://acme.slack.com/',
          team: 'Acme',
          team_id: this.teamId,
          user: 'roster',
          user_id: 'UBOT',
          bot_id: 'BBOT',
          app_id: 'AROSTER',
        };
      case 'team.info':
        return { ok: true, team: { id: this.teamId, name: 'Acme', domain: 'acme' } };
      case 'users.info': {
        const m = this.members.get(String(args.user));
        return m ? { ok: true, user: this.userObject(m) } : { ok: false, error: 'user_not_found' };
      }
      case 'users.lookupByEmail': {
        const email = String(args.email ?? '').toLowerCase();
        const m = [...this.members.values()].find((x) => x.email?.toLowerCase() === email && !x.deleted);
        return m ? { ok: true, user: this.userObject(m) } : { ok: false, error: 'users_not_found' };
      }
      case 'users.list':
        return {
          ok: true,
          members: [...this.members.values()].map((m) => this.userObject(m)),
          response_metadata: { next_cursor: '' },
        };
      case 'conversations.open': {
        const users = String(args.users ?? '');
        return { ok: true, channel: { id: `D${users.split(',')[0]}` } };
      }
      case 'conversations.info':
        return { ok: true, channel: { id: args.channel, name: 'general', is_member: true } };
      case 'chat.postMessage': {
        const channel = this.dmChannel(String(args.channel));
        const ts = this.nextTs();
        const message = { ...args, method, channel, ts };
        this.messages.push(message);
        return { ok: true, channel, ts, message: { text: args.text, blocks: args.blocks, ts } };
      }
      case 'chat.postEphemeral': {
        const ts = this.nextTs();
        this.messages.push({ ...args, method, channel: String(args.channel), ts });
        return { ok: true, message_ts: ts };
      }
      case 'chat.update': {
        const channel = String(args.channel);
        this.messages.push({ ...args, method, channel, ts: String(args.ts) });
        return { ok: true, channel, ts: args.ts, text: args.text };
      }
      case 'chat.delete':
        return { ok: true, channel: args.channel, ts: args.ts };
      case 'chat.getPermalink':
        return {
          ok: true,
          permalink: `https://acme.slack.com/archives/${args.channel}/p${String(args.message_ts).replace('.', '')}`,
        };
      case 'views.open':
      case 'views.push': {
        const id = this.nextId('V');
        const view = {
          ...args.view,
          id,
          hash: `${Date.now()}.${id}`,
          team_id: this.teamId,
          state: { values: {} },
        };
        this.views.set(id, view);
        this.lastViewId = id;
        return { ok: true, view };
      }
      case 'views.update': {
        const id = String(args.view_id ?? '');
        const existing = this.views.get(id);
        if (!existing) return { ok: false, error: 'not_found' };
        const view = {
          ...args.view,
          id,
          hash: `${Date.now()}.${id}`,
          team_id: this.teamId,
          state: { values: {} },
        };
        this.views.set(id, view);
        return { ok: true, view };
      }
      case 'views.publish': {
        const id = this.nextId('VH');
        const view = { ...args.view, id, team_id: this.teamId };
        this.views.set(id, view);
        return { ok: true, view };
      }
      case 'files.info': {
        const file = this.files.get(String(args.file));
        if (!file) return { ok: false, error: 'file_not_found' };
        const { content: _, ...publicFile } = file;
        return { ok: true, file: publicFile };
      }
      case 'files.getUploadURLExternal': {
        const id = this.nextId('F');
        this.pendingUploads.set(id, { filename: String(args.filename) });
        return { ok: true, upload_url: `${this.baseUrl}/upload/${id}`, file_id: id };
      }
      case 'files.completeUploadExternal': {
        const files = (Array.isArray(args.files) ? args.files : []) as { id: string; title?: string }[];
        const done = [];
        for (const f of files) {
          const pending = this.pendingUploads.get(f.id);
          if (!pending) return { ok: false, error: 'file_not_found' };
          this.uploadedFiles.push({
            id: f.id,
            filename: pending.filename,
            title: f.title,
            content: pending.content ?? Buffer.alloc(0),
            channelId: args.channel_id,
            initialComment: args.initial_comment,
          });
          done.push({ id: f.id, title: f.title ?? pending.filename });
        }
        return { ok: true, files: done };
      }
      default:
        return { ok: false, error: 'unknown_method' };
    }
  }

  /** Slack answers a post to a user id in the bot's DM with that user, whose id starts with D. */
  private dmChannel(channel: string): string {
    return /^[UW][A-Z0-9]+$/.test(channel) ? `D${channel}` : channel;
  }
}

export async function startSlackStandin(
  opts: { members?: Member[]; teamId?: string; botToken?: string } = {},
) {
  const standin = new SlackStandin(opts);
  await standin.listen();
  return standin;
}
