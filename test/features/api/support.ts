import { Ajv2020 } from 'ajv/dist/2020.js';
import { query, sql } from '../../../src/db/sql.ts';
import type { IAccount } from '../../../src/features/accounts/account.entity.ts';
import { SETTLED_BELOW } from '../../../src/features/api/api.queries.ts';
import type { TestApp } from '../../support/app.ts';

export type ApiAnswer = { status: number; headers: Headers; body: any; text: string };

type Validator = ((data: unknown) => boolean) & { errors?: unknown };

const pointerSegment = (segment: string) => segment.replace(/~/g, '~0').replace(/\//g, '~1');

/**
 * Calls the running app's API over HTTP and checks every answer against the OpenAPI document the app
 * serves: the status must be one the document lists for that path, the content type the one it names,
 * and the body valid under its schema (JSON Schema 2020-12, by ajv). An undocumented answer fails the test.
 */
export class ApiClient {
  readonly checked: string[] = [];
  private readonly t: TestApp;
  private doc: any;
  private ajv: any;
  private readonly validators = new Map<string, Validator>();

  constructor(t: TestApp) {
    this.t = t;
  }

  async document(): Promise<any> {
    if (this.doc) return this.doc;
    const res = await fetch(`${this.t.url}/api/v1/openapi.json`);
    if (res.status !== 200) throw new Error(`openapi.json answered ${res.status}`);
    this.doc = await res.json();
    // The document as a whole is OpenAPI, not a schema: only the schemas inside it are compiled.
    this.ajv = new Ajv2020({ strict: false, allErrors: true, validateSchema: false });
    this.ajv.addFormat('uuid', /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i);
    this.ajv.addFormat('date-time', (s: string) => !Number.isNaN(Date.parse(s)));
    this.ajv.addSchema(this.doc, 'roster-openapi');
    return this.doc;
  }

  /** The document's path template for a request path, e.g. /api/v1/people/{id}. */
  private template(path: string): string | undefined {
    return Object.keys(this.doc.paths).find((p) =>
      new RegExp(`^${p.replace(/\{[^}]+\}/g, '[^/]+')}$`).test(path),
    );
  }

  private validator(pointer: string): Validator {
    let v = this.validators.get(pointer);
    if (!v) {
      v = this.ajv.getSchema(`roster-openapi#${pointer}`) as Validator | undefined;
      if (!v) throw new Error(`no schema at ${pointer} in the OpenAPI document`);
      this.validators.set(pointer, v);
    }
    return v;
  }

  async get(
    path: string,
    opts: {
      token?: string | null;
      query?: Record<string, string>;
      headers?: Record<string, string>;
      method?: string;
    } = {},
  ): Promise<ApiAnswer> {
    await this.document();
    const url = new URL(`${this.t.url}${path}`);
    for (const [k, v] of Object.entries(opts.query ?? {})) url.searchParams.append(k, v);
    const headers: Record<string, string> = { ...opts.headers };
    if (opts.token) headers.authorization = `Bearer ${opts.token}`;
    const res = await fetch(url, { method: opts.method ?? 'GET', headers });
    const text = await res.text();
    const body = text ? JSON.parse(text) : undefined;
    const answer = { status: res.status, headers: res.headers, body, text };
    this.check(url.pathname, opts.method ?? 'GET', answer);
    return answer;
  }

  private check(path: string, method: string, answer: ApiAnswer): void {
    const type = answer.headers.get('content-type');
    const template = this.template(path);
    let pointer: string;
    if (template && method === 'GET') {
      const response = this.doc.paths[template].get.responses[String(answer.status)];
      if (!response) {
        throw new Error(
          `${method} ${path} answered ${answer.status}, which the OpenAPI document does not list: ${answer.text}`,
        );
      }
      const content = Object.keys(response.content ?? {});
      if (!type || !content.includes(type)) {
        throw new Error(
          `${method} ${path} answered ${answer.status} as ${type}; the document says ${content.join(', ')}`,
        );
      }
      pointer = `/paths/${pointerSegment(template)}/get/responses/${answer.status}/content/${pointerSegment(type)}/schema`;
    } else {
      // Paths and methods outside the document still answer as RFC 9457 problems.
      expect(type).toBe('application/problem+json');
      pointer = '/components/schemas/Problem';
    }
    const validate = this.validator(pointer);
    if (!validate(answer.body)) {
      throw new Error(
        `${method} ${path} (${answer.status}) does not match the OpenAPI document: ${JSON.stringify(validate.errors)}\n${answer.text.slice(0, 2000)}`,
      );
    }
    this.checked.push(`${method} ${template ?? path} ${answer.status}`);
  }
}

/** A read token for `account`, created as an admin would, returned as the caller receives it once. */
export async function tokenFor(t: TestApp, account: IAccount, name: string): Promise<string> {
  const { token } = await t.roster.deps.apiTokens.create(
    t.em(),
    account,
    { slackUserId: 'UADMIN', isAdmin: true, surface: 'slack' },
    name,
  );
  return token;
}

/** Every page of a list, following next_cursor until has_more is false; `between` runs after each page. */
export async function allPages(
  api: ApiClient,
  path: string,
  token: string,
  query: Record<string, string>,
  between?: (page: number) => Promise<void>,
): Promise<{ rows: any[]; pages: number; cursor: string }> {
  const rows: any[] = [];
  let cursor: string | undefined;
  let pages = 0;
  for (;;) {
    const res = await api.get(path, { token, query: { ...query, ...(cursor ? { cursor } : {}) } });
    expect(res.status).toBe(200);
    rows.push(...res.body.data);
    cursor = res.body.next_cursor;
    pages++;
    if (!res.body.has_more) return { rows, pages, cursor: cursor! };
    await between?.(pages);
  }
}

/**
 * Waits until every write to people, contacts and audit events has settled (no transaction of this
 * database that began before it is still open), so the API lists it. Asks the database, not the API,
 * so the waiting spends none of a token's rate limit.
 */
export async function settled(t: TestApp): Promise<void> {
  const check = async () => {
    const [row] = await query<{ ok: boolean }>(
      t.em(),
      sql`select ${SETTLED_BELOW} > greatest(
          (select max(change_xid) from app_user), (select max(change_xid) from contact),
          (select max(change_xid) from audit_event)) as ok`,
    );
    return row?.ok === true;
  };
  const start = Date.now();
  while (!(await check())) {
    if (Date.now() - start > 20_000) throw new Error('writes did not settle within 20 s');
    await new Promise((r) => setTimeout(r, 20));
  }
}
