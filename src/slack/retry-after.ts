/**
 * The wait Roster assumes when Slack answers 429 without a Retry-After it can read (none at all, or not a
 * number of seconds nor a date). Slack's limits are counted over one-minute windows, so half a window is a
 * fair guess at when there is room again: short enough that a person told to try again does not wait long,
 * and long enough that bulk work does not knock again at once. A job that meets another 429 then simply
 * waits again, without spending its retries. SCIM services that leave the header out are given the same.
 */
export const DEFAULT_RETRY_AFTER_S = 30;

/** The seconds a Retry-After header asks for, as seconds or an HTTP date; undefined when unreadable. */
export function retryAfterSeconds(header: string | null, now = Date.now()): number | undefined {
  const value = header?.trim();
  if (!value) return undefined;
  if (/^\d+$/.test(value)) return Number(value);
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(1, Math.ceil((at - now) / 1000));
}

/**
 * A fetch for Slack's Web API whose 429s always carry a Retry-After in seconds, as the Web API client
 * needs to read them as a rate limit (it turns one without into a generic error, so a job would spend its
 * retries and a person be told something went wrong): {@link DEFAULT_RETRY_AFTER_S} when Slack gave none.
 */
export function withRetryAfter(fetchFn: typeof fetch): typeof fetch {
  return async (input, init) => {
    const res = await fetchFn(input, init);
    if (res.status !== 429) return res;
    const given = res.headers.get('retry-after');
    if (given !== null && /^\s*\d+\s*$/.test(given)) return res;
    const headers = new Headers(res.headers);
    headers.set('retry-after', String(retryAfterSeconds(given) ?? DEFAULT_RETRY_AFTER_S));
    return new Response(res.body, { status: res.status, statusText: res.statusText, headers });
  };
}
