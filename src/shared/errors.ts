export type ErrorCode =
  | 'invalid_input'
  | 'not_admin'
  | 'not_allowed'
  | 'no_seat'
  | 'not_found'
  | 'conflict'
  | 'link_invalid'
  | 'file_rejected';

/**
 * An error the person in front of Roster can act on: a bad email, no free seat, not an admin.
 * `message` is written for that person; `field` names the modal input it belongs to, if any.
 */
export class DomainError extends Error {
  readonly code: ErrorCode;
  readonly field?: string;
  readonly fields?: Record<string, string>;
  constructor(
    code: ErrorCode,
    message: string,
    opts: { field?: string; fields?: Record<string, string> } = {},
  ) {
    super(message);
    this.name = 'DomainError';
    this.code = code;
    this.field = opts.field;
    this.fields = opts.fields ?? (opts.field ? { [opts.field]: message } : undefined);
  }
}

export function isDomainError(e: unknown): e is DomainError {
  return e instanceof DomainError;
}

/** The constraint name the database's seat-limit check raises (see the seat_limit_backstop migration). */
export const SEAT_LIMIT_CONSTRAINT = 'app_user_seat_limit';

/**
 * The error as the person should hear it: a DomainError as it is; the database refusing a write that
 * would pass the seat limit (which the seat service should have refused first) as "no seat"; anything
 * else `undefined`, for the apology with a reference id.
 */
export function asDomainError(e: unknown): DomainError | undefined {
  if (e instanceof DomainError) return e;
  if ((e as { constraint?: unknown } | null)?.constraint === SEAT_LIMIT_CONSTRAINT) {
    return new DomainError(
      'no_seat',
      'No paid seat is free, so that change was not made. An admin can raise the limit with `/seats N`, or free a seat.',
    );
  }
  return undefined;
}
