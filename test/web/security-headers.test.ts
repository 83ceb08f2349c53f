import { connect } from 'node:net';
import { postLink } from '../features/join-links/support.ts';
import { startTestApp, type TestApp } from '../support/app.ts';

/*
 * The security headers of Roster's answers, read over real HTTP from the running app: the pages' CSP,
 * and HSTS exactly when PUBLIC_URL is https.
 */

let t: TestApp;
let joinUrl: string;
beforeAll(async () => {
  t = await startTestApp({ seatLimit: 10 });
  joinUrl = (await postLink(t)).url;
});
afterAll(() => t.stop());

/** A request Node's HTTP parser refuses (answered outside any route), as the raw answer's headers. */
function unreadable(): Promise<string> {
  const { port } = new URL(t.url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), '127.0.0.1', () =>
      socket.write('GET / HTTP/1.1\r\nBad Header\r\n\r\n'),
    );
    let answer = '';
    socket.on('data', (c) => {
      answer += c;
    });
    socket.on('end', () => resolve(answer.split('\r\n\r\n')[0]!.toLowerCase()));
    socket.on('error', reject);
  });
}

/** The answers a browser or a client can get: a page, a 404 page, the health check's JSON. */
const answers = () =>
  Promise.all([fetch(joinUrl), fetch(`${t.url}/nothing-here`), fetch(`${t.url}/healthz`)]);

describe('the security headers', () => {
  it("keep a page's forms and links on Roster: no <base> element, forms posted back to Roster only", async () => {
    for (const res of [await fetch(joinUrl), await fetch(`${t.url}/nothing-here`)]) {
      const directives = (res.headers.get('content-security-policy') ?? '').split(/\s*;\s*/);
      expect(directives).toEqual(
        expect.arrayContaining([
          "default-src 'none'",
          "base-uri 'none'",
          "form-action 'self'",
          "frame-ancestors 'none'",
        ]),
      );
    }
    expect(await unreadable()).toContain("base-uri 'none'");
  });

  it('hold no HSTS while PUBLIC_URL is http', async () => {
    expect(t.roster.deps.config.publicUrl).toMatch(/^http:/);
    for (const res of await answers()) expect(res.headers.get('strict-transport-security')).toBeNull();
    expect(await unreadable()).not.toContain('strict-transport-security');
  });

  it('carry HSTS on every answer when PUBLIC_URL is https', async () => {
    const config = t.roster.deps.config;
    const publicUrl = config.publicUrl;
    // As behind a proxy that ends TLS: browsers reach Roster over https, the proxy over http.
    config.publicUrl = 'https://roster.example.com';
    try {
      for (const res of await answers()) {
        expect([res.url, res.headers.get('strict-transport-security')]).toEqual([
          res.url,
          'max-age=31536000',
        ]);
      }
      expect(await unreadable()).toContain('strict-transport-security: max-age=31536000');
    } finally {
      config.publicUrl = publicUrl;
    }
  });
});
