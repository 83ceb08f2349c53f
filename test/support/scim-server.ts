import { randomUUID } from 'node:crypto';
import type { Server } from 'node:http';
import express from 'express';
import SCIMMY from 'scimmy';
import SCIMMYRouters from 'scimmy-routers';

/** Why a user is refused (400): the detail, with scimType invalidValue unless given. */
type Rule = (user: Record<string, any>) => string | { scimType: string; detail: string } | undefined;

/** A user as the server stores it: what SCIM clients sent, plus its id. */
export type StoredUser = Record<string, any> & { id: string; userName: string };

/** A fault the server answers with instead of doing the call, for the next `times` matching calls. */
type Fault = {
  status: number;
  times: number;
  retryAfter?: number;
  delayMs?: number;
  when: (req: express.Request) => boolean;
};

export type ScimServer = {
  /** The base URL Roster is given, ending in /scim/v2. */
  url: string;
  token: string;
  /** The users, by id: read to check what Roster did, or changed to simulate changes behind its back. */
  users: Map<string, StoredUser>;
  /** Every call that reached the server (faults included), in order. */
  calls: { method: string; path: string; query: string; at: number; status?: number }[];
  /** The next `times` matching calls get `status` (429 with Retry-After `retryAfter` seconds). */
  fail(
    status: number,
    opts?: { times?: number; retryAfter?: number; when?: (req: express.Request) => boolean },
  ): void;
  /** The next `times` matching calls answer only after `delayMs`. */
  slow(delayMs: number, opts?: { times?: number; when?: (req: express.Request) => boolean }): void;
  /**
   * Refuses users for which `rule` returns a reason, with 400 invalidValue (a schema rule of the product), or
   * with the scimType the rule gives.
   */
  rejectWhen(rule: Rule | undefined): void;
  byUserName(userName: string): StoredUser | undefined;
  /**
   * Adds a user directly, as the product's own admins would; under `id` when given (a tenant that numbers its
   * users as another tenant at the same URL does).
   */
  add(user: Omit<StoredUser, 'id'>, id?: string): StoredUser;
  /** Deletes a user directly, behind the client's back. */
  remove(id: string): void;
  /** With `noRoles`: whether roles are refused from now on (false: the product has added them to its schema). */
  refuseRoles(refuse: boolean): void;
  /** Answers at most `max` users a page whatever count is asked (undefined: as asked), as many services do. */
  capPages(max: number | undefined): void;
  reset(): void;
  close(): Promise<void>;
};

let active:
  | {
      users: Map<string, StoredUser>;
      byName: Map<string, string>;
      reject?: Rule;
      /** userNames created lately, with how many more `userName eq` queries do not list them yet. */
      unlisted: Map<string, number>;
      listingLag: number;
      newId: () => string;
    }
  | undefined;
let declared = false;

const clean = (value: unknown) => JSON.parse(JSON.stringify(value));
const ERROR_SCHEMA = 'urn:ietf:params:scim:api:messages:2.0:Error';

/** Declares the User resource once per process (SCIMMY keeps its declarations globally). */
function declare(): void {
  if (declared) return;
  declared = true;
  SCIMMY.Config.set({ patch: true, filter: 1000, sort: false, bulk: false });
  SCIMMY.Resources.declare(SCIMMY.Resources.User)
    .ingress(async (resource: any, instance: any) => {
      const store = active!;
      const data = clean(instance);
      delete data.meta;
      const userName = String(data.userName ?? '').toLowerCase();
      const reason = store.reject?.(data);
      if (typeof reason === 'string') throw new SCIMMY.Types.Error(400, 'invalidValue', reason);
      if (reason) throw new SCIMMY.Types.Error(400, reason.scimType as any, reason.detail);
      const holder = store.byName.get(userName);
      if (holder && holder !== resource.id) {
        throw new SCIMMY.Types.Error(409, 'uniqueness', `userName ${userName} is already taken`);
      }
      if (resource.id) {
        const existing = store.users.get(resource.id);
        if (!existing) throw new SCIMMY.Types.Error(404, null as any, `Resource ${resource.id} not found`);
        store.byName.delete(existing.userName.toLowerCase());
      }
      if (!resource.id && store.listingLag) store.unlisted.set(userName, store.listingLag);
      const id = resource.id ?? store.newId();
      const now = new Date().toISOString();
      const user = { ...data, id, meta: { resourceType: 'User', created: now, lastModified: now } };
      store.users.set(id, user);
      store.byName.set(userName, id);
      return user;
    })
    .egress(async (resource: any, req: express.Request) => {
      const store = active!;
      if (resource.id) {
        const user = store.users.get(resource.id);
        if (!user) throw new SCIMMY.Types.Error(404, null as any, `Resource ${resource.id} not found`);
        return user;
      }
      const filter = typeof req.query.filter === 'string' ? req.query.filter : undefined;
      const exact = filter?.match(/^userName eq "((?:[^"\\]|\\.)*)"$/i);
      let list: StoredUser[];
      if (exact) {
        const userName = JSON.parse(`"${exact[1]}"`).toLowerCase();
        const lag = store.unlisted.get(userName) ?? 0;
        if (lag) store.unlisted.set(userName, lag - 1);
        const id = lag ? undefined : store.byName.get(userName);
        list = id ? [store.users.get(id)!] : [];
      } else {
        list = [...store.users.values()];
        if (resource.filter) list = resource.filter.match(list);
      }
      // Only the page is handed back (SCIMMY would otherwise format every user for each page).
      const constraints = resource.constraints ?? {};
      const start = Math.max(1, Number(constraints.startIndex ?? 1));
      const count = Math.max(0, Number(constraints.count ?? 20));
      if (resource.constraints) resource.constraints.totalResults = list.length;
      return list.slice(start - 1, start - 1 + count);
    })
    .degress(async (resource: any) => {
      const store = active!;
      const user = store.users.get(resource.id);
      if (!user) throw new SCIMMY.Types.Error(404, null as any, `Resource ${resource.id} not found`);
      store.users.delete(resource.id);
      store.byName.delete(user.userName.toLowerCase());
    });
}

/**
 * A real SCIM 2.0 service (SCIMMY behind its Express routers) on 127.0.0.1, with an in-memory store, bearer
 * token auth and unique userNames, plus knobs for the failures a client must survive: 429 with Retry-After,
 * 5xx, slow answers, and refusals of chosen users. One per process at a time (SCIMMY's declarations are global).
 */
export async function startScimServer(
  opts: {
    token?: string;
    /** Serves GET /ServiceProviderConfig to anyone, as many services do (discovery needs no token). */
    publicDiscovery?: boolean;
    /**
     * PATCH `replace` of a complex attribute keeps the sub-attributes its value leaves out, as RFC 7644
     * 3.5.2.3 says (SCIMMY replaces the whole attribute).
     */
    rfcComplexReplace?: boolean;
    /** Answers `active` as the strings "True" and "False", as some Microsoft services do. */
    stringBooleans?: boolean;
    /** Leaves totalResults out of list answers (RFC 7644 requires it; some services do not send it). */
    omitTotalResults?: boolean;
    /** Answers errors as SCIM 1.1 did: `{ "Errors": [{ "description", "code" }] }`, with no `detail`. */
    scim1Errors?: boolean;
    /**
     * Answers a `userName eq` filter that matches nobody with 404 rather than an empty list, as some services
     * do (RFC 7644 3.4.2 asks for 200 with totalResults 0).
     */
    notFoundWhenNoMatch?: boolean;
    /** Does not take PATCH (optional in RFC 7644): answers it 501, says so in its configuration, takes PUT. */
    noPatch?: boolean;
    /** Takes request bodies as application/json only, refusing application/scim+json with 415. */
    plainJsonOnly?: boolean;
    /** Answers a create 201 with the new user's Location and no body (RFC 7644 3.3: the body SHOULD hold it). */
    bareCreateAnswer?: boolean;
    /** Gives users sequential ids and answers them as JSON numbers (`"id": 7`), as some services do. */
    numericIds?: boolean;
    /**
     * Answers a duplicate userName 400 (with scimType "uniqueness") rather than 409, as FusionAuth before
     * 1.36, go-scim and WSO2 do.
     */
    duplicateAs400?: boolean;
    /**
     * A user created by POST is missing from the next `listingLag` `userName eq` queries, as in a service whose
     * list catches up with its writes a moment later (eventual consistency).
     */
    listingLag?: number;
    /**
     * Has no `roles` in its User schema and refuses a user or PATCH that sets them with 400 (invalidValue for a
     * whole user, invalidPath for a PATCH operation), as strict services do.
     */
    noRoles?: boolean;
  } = {},
): Promise<ScimServer> {
  declare();
  const token = opts.token ?? `scim-token-${randomUUID()}`;
  const users = new Map<string, StoredUser>();
  const byName = new Map<string, string>();
  let lastId = 0;
  const newId = () => (opts.numericIds ? String(++lastId) : randomUUID());
  active = { users, byName, newId, unlisted: new Map(), listingLag: opts.listingLag ?? 0 };
  const faults: Fault[] = [];
  const calls: ScimServer['calls'] = [];

  const app = express();
  // Express 5 parses `req.query` afresh on every read, so the routers' cast of startIndex and count to
  // numbers would be lost (and every page would be SCIMMY's default 20): keep one parsed, writable copy.
  let pageCap: number | undefined;
  app.use((req, _res, next) => {
    const query: Record<string, unknown> = { ...req.query };
    if (pageCap !== undefined && query.count !== undefined && Number(query.count) > pageCap) {
      query.count = String(pageCap);
    }
    Object.defineProperty(req, 'query', { value: query, writable: true, enumerable: true });
    next();
  });
  const rewrites: ((body: Record<string, any>) => Record<string, any> | undefined)[] = [];
  if (opts.stringBooleans) {
    const asString = (user: Record<string, any>) => {
      if (typeof user.active === 'boolean') user.active = user.active ? 'True' : 'False';
    };
    rewrites.push((body) => {
      asString(body);
      for (const user of Array.isArray(body.Resources) ? body.Resources : []) asString(user);
      return body;
    });
  }
  if (opts.omitTotalResults) {
    rewrites.push((body) => {
      if (Array.isArray(body.Resources)) delete body.totalResults;
      return body;
    });
  }
  if (opts.scim1Errors) {
    rewrites.push((body) =>
      body.schemas?.includes(ERROR_SCHEMA)
        ? { Errors: [{ description: body.detail, code: Number(body.status) }] }
        : body,
    );
  }
  if (opts.numericIds) {
    const asNumber = (user: Record<string, any>) => {
      if (typeof user.id === 'string' && /^\d+$/.test(user.id)) user.id = Number(user.id);
    };
    rewrites.push((body) => {
      asNumber(body);
      for (const user of Array.isArray(body.Resources) ? body.Resources : []) asNumber(user);
      return body;
    });
  }
  if (rewrites.length) {
    // Rewrites the JSON answers the way such a service would write them.
    app.use('/scim/v2', (_req, res, next) => {
      const send = res.send.bind(res);
      res.send = (body: unknown) => {
        if (!body || typeof body !== 'object' || Buffer.isBuffer(body)) return send(body);
        let copy = clean(body);
        for (const rewrite of rewrites) copy = rewrite(copy) ?? copy;
        return send(copy);
      };
      next();
    });
  }
  app.use('/scim/v2', (req, res, next) => {
    const call: ScimServer['calls'][number] = {
      method: req.method,
      path: req.path,
      query: req.url.split('?')[1] ?? '',
      at: Date.now(),
    };
    calls.push(call);
    res.on('finish', () => {
      call.status = res.statusCode;
    });
    const fault = faults.find((f) => f.times > 0 && f.when(req));
    if (!fault) return next();
    fault.times--;
    if (fault.delayMs !== undefined) {
      setTimeout(next, fault.delayMs);
      return;
    }
    if (fault.retryAfter !== undefined) res.set('Retry-After', String(fault.retryAfter));
    res
      .status(fault.status)
      .type('application/scim+json')
      .send({
        schemas: [ERROR_SCHEMA],
        status: String(fault.status),
        detail: `fault injected by the test (${fault.status})`,
      });
  });
  if (opts.duplicateAs400) {
    app.use('/scim/v2', (_req, res, next) => {
      const send = res.send.bind(res);
      res.send = (body: unknown) => {
        if (res.statusCode !== 409) return send(body);
        res.status(400);
        const said = typeof body === 'string' ? JSON.parse(body) : (body as Record<string, any>);
        return send({ ...said, status: '400' });
      };
      next();
    });
  }
  let refusingRoles = !!opts.noRoles;
  if (opts.noRoles) {
    const refuse = (res: express.Response, scimType: string, detail: string) =>
      res
        .status(400)
        .type('application/scim+json')
        .send({ schemas: [ERROR_SCHEMA], status: '400', scimType, detail });
    const json = express.json({ type: ['application/scim+json', 'application/json'] });
    app.post('/scim/v2/Users', json, (req, res, next) => {
      if (!refusingRoles || req.body?.roles === undefined) return next();
      refuse(res, 'invalidValue', "Attribute 'roles' is not defined in the User schema");
    });
    app.put('/scim/v2/Users/:id', json, (req, res, next) => {
      if (!refusingRoles || req.body?.roles === undefined) return next();
      refuse(res, 'invalidValue', "Attribute 'roles' is not defined in the User schema");
    });
    app.patch('/scim/v2/Users/:id', json, (req, res, next) => {
      const ops: { path?: string }[] = req.body?.Operations ?? [];
      if (!refusingRoles || !ops.some((op) => String(op.path ?? '').startsWith('roles'))) return next();
      refuse(res, 'invalidPath', 'Path roles does not name an attribute of the User schema');
    });
  }
  if (opts.bareCreateAnswer) {
    app.post('/scim/v2/Users', (_req, res, next) => {
      const send = res.send.bind(res);
      res.send = (body: unknown) => {
        if (res.statusCode !== 201) return send(body);
        const id = (typeof body === 'string' ? JSON.parse(body) : (body as { id?: string }))?.id;
        res.set('Location', `/scim/v2/Users/${id}`);
        res.removeHeader('content-type');
        return send('');
      };
      next();
    });
  }
  if (opts.plainJsonOnly) {
    app.use('/scim/v2', (req, res, next) => {
      if (!/^application\/scim\+json/i.test(req.header('content-type') ?? '')) return next();
      res
        .status(415)
        .type('application/json')
        .send({ schemas: [ERROR_SCHEMA], status: '415', detail: 'Content-Type must be application/json' });
    });
  }
  if (opts.notFoundWhenNoMatch) {
    app.get('/scim/v2/Users', (req, res, next) => {
      const exact = String(req.query.filter ?? '').match(/^userName eq "((?:[^"\\]|\\.)*)"$/i);
      if (!exact || byName.has(JSON.parse(`"${exact[1]}"`).toLowerCase())) return next();
      res
        .status(404)
        .type('application/scim+json')
        .send({ schemas: [ERROR_SCHEMA], status: '404', detail: 'User not found' });
    });
  }
  if (opts.noPatch) {
    app.patch('/scim/v2/Users/:id', (_req, res) => {
      res
        .status(501)
        .type('application/scim+json')
        .send({ schemas: [ERROR_SCHEMA], status: '501', detail: 'PATCH is not supported; use PUT' });
    });
  }
  if (opts.rfcComplexReplace) {
    // Parsed here (the routers' own parser then leaves it be) and each such replace merged with what is stored.
    app.patch(
      '/scim/v2/Users/:id',
      express.json({ type: ['application/scim+json', 'application/json'] }),
      (req, _res, next) => {
        const stored = users.get(String(req.params.id));
        for (const op of req.body?.Operations ?? []) {
          const path = typeof op.path === 'string' ? op.path : undefined;
          const current = path ? stored?.[path] : undefined;
          if (
            String(op.op).toLowerCase() === 'replace' &&
            current &&
            typeof current === 'object' &&
            !Array.isArray(current) &&
            op.value &&
            typeof op.value === 'object'
          ) {
            op.value = { ...current, ...op.value };
          }
        }
        next();
      },
    );
  }
  if (opts.publicDiscovery) {
    app.get('/scim/v2/ServiceProviderConfig', (_req, res) => {
      res.type('application/scim+json').send({
        schemas: ['urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig'],
        patch: { supported: !opts.noPatch },
        bulk: { supported: false, maxOperations: 0, maxPayloadSize: 0 },
        filter: { supported: true, maxResults: 1000 },
        changePassword: { supported: false },
        sort: { supported: false },
        etag: { supported: false },
        authenticationSchemes: [{ type: 'oauthbearertoken', name: 'OAuth Bearer Token', description: '' }],
      });
    });
  }
  app.use(
    '/scim/v2',
    new SCIMMYRouters({
      type: 'bearer',
      docUri: 'https://example.test/scim',
      handler: (req: express.Request) => {
        if (req.header('authorization') !== `Bearer ${token}`) throw new Error('Bearer token refused');
        return 'roster';
      },
      context: (req: express.Request) => req,
    }),
  );
  const server: Server = await new Promise((ok) => {
    const s = app.listen(0, '127.0.0.1', () => ok(s));
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  const always = () => true;

  return {
    url: `http://127.0.0.1:${port}/scim/v2`,
    token,
    users,
    calls,
    fail(status, o = {}) {
      faults.push({ status, times: o.times ?? 1, retryAfter: o.retryAfter, when: o.when ?? always });
    },
    slow(delayMs, o = {}) {
      faults.push({ status: 0, times: o.times ?? 1, delayMs, when: o.when ?? always });
    },
    rejectWhen(rule) {
      active!.reject = rule;
    },
    byUserName(userName) {
      const id = byName.get(userName.toLowerCase());
      return id ? users.get(id) : undefined;
    },
    add(user, given) {
      const id = given ?? newId();
      const stored = { ...user, id } as StoredUser;
      users.set(id, stored);
      byName.set(user.userName.toLowerCase(), id);
      return stored;
    },
    remove(id) {
      const user = users.get(id);
      if (!user) return;
      users.delete(id);
      byName.delete(user.userName.toLowerCase());
    },
    refuseRoles(refuse) {
      refusingRoles = refuse;
    },
    capPages(max) {
      pageCap = max;
    },
    reset() {
      users.clear();
      byName.clear();
      faults.length = 0;
      calls.length = 0;
      active!.reject = undefined;
      active!.unlisted.clear();
      pageCap = undefined;
      refusingRoles = !!opts.noRoles;
    },
    close: () =>
      new Promise<void>((ok) => {
        server.closeAllConnections();
        server.close(() => ok());
      }),
  };
}
