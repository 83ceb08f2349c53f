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
