import { createCipheriv, createDecipheriv, createHmac, randomBytes } from 'node:crypto';
import type { WebRequest, WebResponse } from './router.ts';

/**
 * What an answer page needs to be drawn again: its kind and a few short fields (ids, an address, a flag),
 * never the page itself, which grows with the names in it past what a browser keeps of a cookie (4 KB).
 */
export type OutcomeFields = { k: string } & Record<string, string | boolean | null | undefined>;

const COOKIE = 'roster_outcome';
/** Long enough to reload the page or come back to it, short enough not to keep an address in the browser. */
const LIFETIME_SECONDS = 15 * 60;
const IV_BYTES = 12;
const TAG_BYTES = 16;

/**
 * Post/Redirect/Get for the forms that act (join, confirm, accept): a POST that did its work answers 303
 * to a GET page that shows what happened, so reloading that page, or going back and forward to it, shows
 * it again and posts nothing. What the page shows travels in a short-lived cookie scoped to that page's
 * path, never in its URL: it may name the person's address, and a URL is kept in the browser's history and
 * sent to proxies. The cookie is sealed by Roster (AES-GCM: only Roster can read it, and one altered, made
 * elsewhere or meant for another page does not open), so the address in it is not readable in the browser.
 */
export class Outcomes {
  private readonly key: Buffer;
  private readonly secure: boolean;
  constructor(secret: string, publicUrl: string) {
    this.key = createHmac('sha256', secret).update('roster-outcome-seal').digest();
    this.secure = publicUrl.startsWith('https://');
  }

  /** The 303 to `path`, whose GET page then draws `fields` (read back with `read`). */
  redirect(req: WebRequest, path: string, fields: OutcomeFields): WebResponse {
    const location = `${req.base}${path}`;
    const value = this.seal(JSON.stringify({ ...fields, x: Date.now() + LIFETIME_SECONDS * 1000 }), path);
    return {
      status: 303,
      redirect: location,
      headers: {
        'set-cookie': `${COOKIE}=${value}; Path=${location}; Max-Age=${LIFETIME_SECONDS}; HttpOnly; SameSite=Lax${this.secure ? '; Secure' : ''}`,
      },
    };
  }

  /**
   * What the page at this request's path is to draw: only what Roster itself sent here, recently; else
   * undefined (the page opened some other way, or long after), for which the page has words of its own.
   */
  read(req: WebRequest): OutcomeFields | undefined {
    const plain = this.open(req.cookies[COOKIE] ?? '', req.path);
    if (plain === undefined) return undefined;
    try {
      const data = JSON.parse(plain) as OutcomeFields & { x: unknown };
      if (typeof data.k !== 'string' || typeof data.x !== 'number' || !(data.x > Date.now()))
        return undefined;
      return data;
    } catch {
      return undefined;
    }
  }

  private seal(plain: string, path: string): string {
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.key, iv);
    // The page's path is sealed in too: a cookie set for one answer page opens on no other.
    cipher.setAAD(Buffer.from(path));
    const body = Buffer.concat([cipher.update(plain, 'utf8'), cipher.final()]);
    return Buffer.concat([iv, body, cipher.getAuthTag()]).toString('base64url');
  }

  private open(value: string, path: string): string | undefined {
    if (!/^[A-Za-z0-9_-]+$/.test(value)) return undefined;
    const raw = Buffer.from(value, 'base64url');
    if (raw.length <= IV_BYTES + TAG_BYTES) return undefined;
    try {
      const decipher = createDecipheriv('aes-256-gcm', this.key, raw.subarray(0, IV_BYTES));
      decipher.setAAD(Buffer.from(path));
      decipher.setAuthTag(raw.subarray(raw.length - TAG_BYTES));
      return Buffer.concat([
        decipher.update(raw.subarray(IV_BYTES, raw.length - TAG_BYTES)),
        decipher.final(),
      ]).toString('utf8');
    } catch {
      return undefined;
    }
  }
}
