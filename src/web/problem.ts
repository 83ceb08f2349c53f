import type { WebResponse } from './router.ts';

/** RFC 9457 problem details; `errors` lists each query parameter that could not be used. */
export type ProblemOut = {
  type: string;
  title: string;
  status: number;
  detail: string;
  errors?: { parameter: string; detail: string }[];
};

export const PROBLEM_TYPE = 'application/problem+json';

/** The kinds of problem the read API names in `type` (RFC 9457); others are about:blank with the status's title. */
export const PROBLEMS = {
  invalidParameter: 'urn:roster:problem:invalid-parameter',
  invalidCursor: 'urn:roster:problem:invalid-cursor',
} as const;

const TITLES: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  404: 'Not Found',
  405: 'Method Not Allowed',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
};

/** An answer the API gives instead of data: thrown by a handler, sent as application/problem+json. */
export class ApiProblem extends Error {
  readonly status: number;
  readonly type: string;
  readonly title: string;
  readonly errors?: ProblemOut['errors'];
  readonly headers: Record<string, string>;
  constructor(
    status: number,
    detail: string,
    opts: {
      type?: string;
      title?: string;
      errors?: ProblemOut['errors'];
      headers?: Record<string, string>;
    } = {},
  ) {
    super(detail);
    this.name = 'ApiProblem';
    this.status = status;
    this.type = opts.type ?? 'about:blank';
    this.title = opts.title ?? TITLES[status] ?? 'Error';
    this.errors = opts.errors;
    this.headers = opts.headers ?? {};
  }

  response(): WebResponse {
    const body: ProblemOut = {
      type: this.type,
      title: this.title,
      status: this.status,
      detail: this.message,
    };
    if (this.errors?.length) body.errors = this.errors;
    return { status: this.status, json: body, contentType: PROBLEM_TYPE, headers: this.headers };
  }
}

/** One or more query parameters that cannot be used, each named with what it should be. */
export function invalidParameters(errors: { parameter: string; detail: string }[]): ApiProblem {
  return new ApiProblem(
    400,
    errors.length === 1 ? errors[0]!.detail : `${errors.length} query parameters cannot be used: see errors.`,
    { type: PROBLEMS.invalidParameter, title: 'Invalid query parameter', errors },
  );
}

export function invalidCursor(detail: string): ApiProblem {
  return new ApiProblem(400, detail, {
    type: PROBLEMS.invalidCursor,
    title: 'Invalid cursor',
    errors: [{ parameter: 'cursor', detail }],
  });
}

/** Whether a request target belongs to the API, whose errors are problem+json rather than pages. */
export function isApiPath(target: string | undefined): boolean {
  // `//api/v1/…`, from a client whose base URL ends in a slash, is the API's too: answered as a problem.
  const path = (target ?? '')
    .replace(/^https?:\/\/[^/]+/i, '')
    .split('?')[0]!
    .replace(/^\/+/, '/');
  return path === '/api' || path.startsWith('/api/');
}
