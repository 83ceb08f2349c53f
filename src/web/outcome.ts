import { createHmac, timingSafeEqual } from 'node:crypto';
import { SafeHtml } from './html.ts';
import type { WebRequest, WebResponse } from './router.ts';

/** What a form's answer page shows: its title and the body of the page. */
export type Outcome = { title: string; body: SafeHtml };

const COOKIE = 'roster_outcome';
/** Long enough to reload the page or come back to it, short enough not to keep an address in the browser. */
const LIFETIME_SECONDS = 15 * 60;

/**
 * Post/Redirect/Get for the forms that act (join, confirm, accept): a POST that did its work answers 303
 * to a GET page that shows what happened, so reloading that page, or going back and forward to it, shows
 * it again and posts nothing. What the page shows travels in a short-lived cookie scoped to that page's
 * path and signed by Roster, never in its URL: it may name the person's address, and a URL is kept in the
 * browser's history and sent to proxies.
 */
export class Outcomes {
  private readonly key: Buffer;
  private readonly secure: boolean;
  constructor(secret: string, publicUrl: string) {
    this.key = createHmac('sha256', secret).update('roster-outcome').digest();
    this.secure = publicUrl.startsWith('https://');
  }

  /** The 303 to `path`, whose GET page then shows `outcome` (read back with `read`). */
  redirect(req: WebRequest, path: string, outcome: Outcome): WebResponse {
    const location = `${req.base}${path}`;
    const payload = Buffer.from(
      JSON.stringify({
        p: path,
        t: outcome.title,
        b: outcome.body.value,
        e: Date.now() + LIFETIME_SECONDS * 1000,
      }),
    ).toString('base64url');
    const value = `${payload}.${this.sign(payload)}`;
    return {
      status: 303,
      redirect: location,
      headers: {
        'set-cookie': `${COOKIE}=${value}; Path=${location}; Max-Age=${LIFETIME_SECONDS}; HttpOnly; SameSite=Lax${this.secure ? '; Secure' : ''}`,
      },
    };
  }

  /**
   * What the page at this request's path is to show: only what Roster itself sent here, recently; else
   * undefined (the page opened some other way, or long after), for which the page has words of its own.
   */
  read(req: WebRequest): Outcome | undefined {
    const [payload, signature] = (req.cookies[COOKIE] ?? '').split('.');
    if (!payload || !signature) return undefined;
    const expected = Buffer.from(this.sign(payload));
    const given = Buffer.from(signature);
    if (expected.length !== given.length || !timingSafeEqual(expected, given)) return undefined;
    try {
      const data = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as {
        p: string;
        t: string;
        b: string;
        e: number;
      };
      if (data.p !== req.path || !(data.e > Date.now())) return undefined;
      return { title: data.t, body: new SafeHtml(data.b) };
    } catch {
      return undefined;
    }
  }

  private sign(payload: string): string {
    return createHmac('sha256', this.key).update(payload).digest('base64url');
  }
}
