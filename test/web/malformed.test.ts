import { request } from 'node:http';
import { connect } from 'node:net';
import { AuditEvent } from '../../src/features/audit/audit-event.entity.ts';
import { JoinConfirmation } from '../../src/features/join-links/join-link.entity.ts';
import { User } from '../../src/features/people/user.entity.ts';
import { postLink } from '../features/join-links/support.ts';
import { startTestApp, type TestApp } from '../support/app.ts';

let t: TestApp;
let joinPath: string;
/** Every call of the app's logger at error level while these tests run. */
const errorsLogged: unknown[][] = [];

beforeAll(async () => {
  t = await startTestApp({ seatLimit: 100 });
  const logger = t.roster.deps.logger;
  const original = logger.error.bind(logger);
  logger.error = ((...args: Parameters<typeof logger.error>) => {
    errorsLogged.push(args);
    return original(...args);
  }) as typeof logger.error;
  joinPath = new URL((await postLink(t)).url).pathname;
});
afterAll(async () => {
  await t.stop();
});

type Answer = { status: number; body: string; headers: Record<string, string | string[] | undefined> };

/** One request exactly as written: path, headers and body are sent untouched. */
function raw(
  path: string,
  opts: { method?: string; headers?: Record<string, string>; body?: string | Buffer; chunked?: boolean } = {},
): Promise<Answer> {
  const { port } = new URL(t.url);
  return new Promise((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port, path, method: opts.method ?? 'GET', headers: opts.headers ?? {} },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c) => {
          body += c;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
      },
    );
    // The server may answer and close before a large body is sent: the answer is what counts.
    req.on('error', (err: NodeJS.ErrnoException) => (err.code === 'EPIPE' ? undefined : reject(err)));
    if (opts.chunked) req.setHeader('transfer-encoding', 'chunked');
    else if (opts.body !== undefined) req.setHeader('content-length', Buffer.byteLength(opts.body));
    req.end(opts.body);
  });
}

/** Bytes on a bare socket, for requests no HTTP client would send. */
function socketSend(bytes: string): Promise<string> {
  const { port } = new URL(t.url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), '127.0.0.1', () => socket.write(bytes));
    let out = '';
    socket.setEncoding('utf8');
    socket.on('data', (c) => {
      out += c;
    });
    socket.on('end', () => resolve(out));
    socket.on('error', reject);
  });
}

/** The join form's CSRF field and cookie, as a browser would hold them. */
async function joinForm() {
  const page = await raw(joinPath);
  const csrf = page.body.match(/name="csrf" value="([^"]+)"/)![1]!;
  const setCookie = page.headers['set-cookie'] as string[];
  return { csrf, cookie: setCookie[0]!.split(';')[0]! };
}

const form = 'application/x-www-form-urlencoded';

async function written() {
  const em = t.em();
  return {
    confirmations: await em.count(JoinConfirmation, {}),
    users: await em.count(User, {}),
    audits: await em.count(AuditEvent, {}),
  };
}

/** Roster's 400 page, with nothing logged as an error and nothing written. */
async function expectRefused(send: () => Promise<Answer>, reason: string | RegExp) {
  const before = await written();
  const logged = errorsLogged.length;
  const res = await send();
  expect(res.status).toBe(400);
  expect(res.headers['content-type']).toBe('text/html; charset=utf-8');
  expect(res.body).toContain('<h1>Roster could not read this request</h1>');
  expect(res.body).toMatch(reason);
  expect(errorsLogged.slice(logged)).toEqual([]);
  expect(await written()).toEqual(before);
}

describe('malformed requests to the web pages get a 400 page, never a 500', () => {
  it('refuses broken percent-escapes in a path', async () => {
    for (const path of ['/join/%E0%A4%A', '/invitations/%zz', '/join/confirm/%zz', '/join/%FF%FE']) {
      await expectRefused(() => raw(path), 'Part of this address or form is not correctly encoded.');
    }
    // A HEAD (what link checkers send) gets the same status, without the page.
    const head = await raw('/invitations/%zz', { method: 'HEAD' });
    expect(head.status).toBe(400);
    expect(head.body).toBe('');
  });

  it('refuses a query string with a broken escape', async () => {
    await expectRefused(() => raw(`${joinPath}?ref=%zz`), 'not correctly encoded');
    await expectRefused(() => raw('/invitations/abc?x=%E0%A4%A'), 'not correctly encoded');
  });

  it('refuses a form body with a broken escape or bytes that are not UTF-8', async () => {
    const { csrf, cookie } = await joinForm();
    for (const body of [
      `csrf=${csrf}&name=%zz&email=a%40outside.test`,
      `csrf=${csrf}&name=Ann%FF&email=a%40outside.test`,
      Buffer.concat([Buffer.from(`csrf=${csrf}&name=`), Buffer.from([0xc3, 0x28]), Buffer.from('&email=a')]),
    ]) {
      await expectRefused(
        () => raw(joinPath, { method: 'POST', headers: { 'content-type': form, cookie }, body }),
        'not correctly encoded',
      );
    }
  });

  it('refuses a form body over the limit, whether its length is declared or not', async () => {
    const { csrf, cookie } = await joinForm();
    const body = `csrf=${csrf}&name=${'a'.repeat(40_000)}&email=a%40outside.test`;
    const post = (chunked: boolean) =>
      raw(joinPath, { method: 'POST', headers: { 'content-type': form, cookie }, body, chunked });
    await expectRefused(() => post(false), 'This form sent more than Roster accepts.');
    await expectRefused(() => post(true), 'This form sent more than Roster accepts.');
  });

  it('refuses a POST that is not a form, or says no type', async () => {
    const { csrf, cookie } = await joinForm();
    const fields = `csrf=${csrf}&name=Typed+Wrong&email=typed%40outside.test`;
    for (const [type, body] of [
      ['application/json', JSON.stringify({ csrf, name: 'Typed Wrong', email: 'typed@outside.test' })],
      [
        'multipart/form-data; boundary=x',
        `--x\r\nContent-Disposition: form-data; name="name"\r\n\r\nT\r\n--x--`,
      ],
      ['text/plain', fields],
      [undefined, fields],
    ] as const) {
      await expectRefused(
        () =>
          raw(joinPath, {
            method: 'POST',
            headers: { cookie, ...(type ? { 'content-type': type } : {}) },
            body,
          }),
        'This form was not sent the way its page sends it.',
      );
    }
    // The same form, sent as its page sends it, works: the refusals above are about the request alone.
    const ok = await raw(joinPath, {
      method: 'POST',
      headers: { 'content-type': `${form}; charset=UTF-8`, cookie },
      body: fields,
    });
    // Answered, as every form that did its work, by a redirect to the page that shows "Check your inbox".
    expect(ok.status).toBe(303);
    expect(ok.headers.location).toBe('/join/sent');
  });

  it('refuses very long paths, up to ones Node itself will not read', async () => {
    await expectRefused(() => raw(`/join/${'a'.repeat(3000)}`), 'This address is too long.');
    await expectRefused(() => raw(`/invitations/${'b'.repeat(20_000)}`), 'too long');
  });

  it('answers a request that is not HTTP with the same page', async () => {
    const before = errorsLogged.length;
    const answer = await socketSend('HELLO THERE\r\n\r\n');
    expect(answer).toMatch(/^HTTP\/1\.1 400 Bad Request\r\n/);
    expect(answer).toContain('Roster could not read this request');
    expect(errorsLogged.length).toBe(before);
  });

  it('sends the 400 page for a request Node cannot read with the security headers of every other page', async () => {
    const answer = await socketSend('HELLO THERE\r\n\r\n');
    const headers = new Map(
      answer
        .split('\r\n\r\n')[0]!
        .split('\r\n')
        .slice(1)
        .map((line) => [
          line.slice(0, line.indexOf(':')).toLowerCase(),
          line.slice(line.indexOf(':') + 1).trim(),
        ]),
    );
    const other = await raw('/invitations/%zz');
    expect(other.status).toBe(400);
    for (const name of [
      'content-security-policy',
      'x-frame-options',
      'referrer-policy',
      'x-content-type-options',
      'cache-control',
    ]) {
      expect([name, headers.get(name)]).toEqual([name, other.headers[name]]);
    }
    expect(headers.get('content-security-policy')).toContain("frame-ancestors 'none'");
  });

  it('treats a path starting with // as a path on Roster, not another host', async () => {
    const res = await raw('//evil.example/join/x');
    expect(res.status).toBe(404);
    expect(res.body).toContain('There is nothing here');
  });

  it('serves a full URL as a proxy may send it, by its path, and refuses one that does not parse', async () => {
    const page = await raw(`http://roster.example${joinPath}`);
    expect(page.status).toBe(200);
    expect(page.body).toContain('<h1>Join Acme</h1>');
    await expectRefused(() => raw('http://[roster/join/x'), 'This address is not correctly written.');
    await expectRefused(() => raw('*', { method: 'OPTIONS' }), 'This address is not one Roster serves.');
  });

  it('ignores an undecodable cookie instead of failing: the page works and the CSRF cookie is issued anew', async () => {
    const logged = errorsLogged.length;
    const page = await raw(joinPath, { headers: { cookie: 'roster_csrf=%zz; other=%E0%A4%A' } });
    expect(page.status).toBe(200);
    expect(page.body).toContain('<h1>Join Acme</h1>');
    expect(String(page.headers['set-cookie'])).toMatch(/^roster_csrf=[A-Za-z0-9_-]{32,};/);

    const csrf = page.body.match(/name="csrf" value="([^"]+)"/)![1]!;
    const before = await written();
    const posted = await raw(joinPath, {
      method: 'POST',
      headers: { 'content-type': form, cookie: 'roster_csrf=%zz' },
      body: `csrf=${csrf}&name=Cookie+Monster&email=cookie%40outside.test`,
    });
    expect(posted.status).toBe(403);
    expect(posted.body).toContain('This form expired or was sent from another page.');
    expect(await written()).toEqual(before);
    expect(errorsLogged.length).toBe(logged);
  });
});

describe('other methods on the web pages', () => {
  it('answers OPTIONS with the methods a page takes, and other methods with 405 naming them, changing nothing', async () => {
    const before = await written();
    const logged = errorsLogged.length;
    const options = await raw(joinPath, { method: 'OPTIONS' });
    expect({ status: options.status, allow: options.headers.allow, body: options.body }).toEqual({
      status: 204,
      allow: 'GET, HEAD, POST',
      body: '',
    });
    for (const method of ['PUT', 'DELETE', 'PATCH']) {
      const res = await raw(joinPath, { method });
      expect({ method, status: res.status, allow: res.headers.allow }).toEqual({
        method,
        status: 405,
        allow: 'GET, HEAD, POST',
      });
      expect(res.body).toContain('<h1>This page cannot be used that way</h1>');
      expect(res.headers['content-security-policy']).toContain("frame-ancestors 'none'");
    }
    // The join form still works as it did.
    expect((await raw(joinPath, { method: 'HEAD' })).status).toBe(200);
    expect(errorsLogged.slice(logged)).toEqual([]);
    expect(await written()).toEqual(before);
  });
});
