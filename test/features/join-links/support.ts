import { request } from 'node:http';
import type { TestApp } from '../../support/app.ts';
import type { PostedMessage } from '../../support/slack-standin.ts';
import { findButton } from '../../support/views.ts';

export type Posted = { message: PostedMessage; url: string; token: string; linkId: string };

/** An admin posts a link through /joinlink and its modal; returns the channel message, its URL and the id. */
export async function postLink(
  t: TestApp,
  values: Record<string, string | null> = {},
  opts: { channel?: string; user?: string } = {},
): Promise<Posted> {
  const channel = opts.channel ?? 'C0GENERAL';
  const user = opts.user ?? 'UADMIN';
  const before = t.standin.messages.length;
  await t.slack.command('/joinlink', '', { user, channel });
  const view = t.standin.lastOpenedView();
  expect(view.callback_id).toBe('joinlink_modal');
  const res = await t.slack.submitView(view, { channel, ...values }, { user });
  expect(res.json?.errors).toBeUndefined();
  const message = t.standin.messages
    .slice(before)
    .find((m) => m.method === 'chat.postMessage' && m.channel === (values.channel ?? channel));
  if (!message) throw new Error('no join link message was posted');
  const match = JSON.stringify(message.blocks).match(/(https?:\/\/[^\s"|>]+)\/join\/([A-Za-z0-9_-]+)/);
  if (!match) throw new Error('the join link message has no URL');
  const linkId = findButton(message.blocks, 'Join').action.value as string;
  return { message, url: `${match[1]}/join/${match[2]}`, token: match[2]!, linkId };
}

export type WebAnswer = {
  status: number;
  body: string;
  headers: Record<string, string | string[] | undefined>;
  /** Where a form's 303 led, when it was followed: the answer is then that page's. */
  redirectedTo?: string;
};

/**
 * One HTTP request to the app from a chosen loopback address (127.0.0.x), as a different client would.
 * A 303 (a form's answer) is followed as a browser follows it: a GET of its Location, with the cookies it
 * set besides those sent.
 */
export async function httpFrom(
  from: string,
  url: string,
  opts: { method?: string; body?: string; cookie?: string } = {},
): Promise<WebAnswer> {
  const answer = await requestFrom(from, url, opts);
  const location = answer.headers.location;
  if (answer.status !== 303 || typeof location !== 'string') return answer;
  const setCookie = answer.headers['set-cookie'] ?? [];
  const cookie = [
    ...(opts.cookie ? [opts.cookie] : []),
    ...(Array.isArray(setCookie) ? setCookie : [setCookie]).map((c) => c.split(';')[0]!),
  ].join('; ');
  const target = new URL(location, url).toString();
  return { ...(await requestFrom(from, target, { cookie })), redirectedTo: target };
}

function requestFrom(
  from: string,
  url: string,
  opts: { method?: string; body?: string; cookie?: string } = {},
): Promise<WebAnswer> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method: opts.method ?? 'GET',
        localAddress: from,
        headers: {
          ...(opts.body ? { 'content-type': 'application/x-www-form-urlencoded' } : {}),
          ...(opts.cookie ? { cookie: opts.cookie } : {}),
        },
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c) => {
          body += c;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
      },
    );
    req.on('error', reject);
    req.end(opts.body);
  });
}

/** The join form of a link, as a client at `from` gets it: its CSRF field and cookie, to post it. */
export async function openForm(from: string, url: string) {
  const page = await httpFrom(from, url);
  const csrf = page.body.match(/name="csrf" value="([^"]+)"/)?.[1];
  const setCookie = page.headers['set-cookie'];
  const cookie = (Array.isArray(setCookie) ? setCookie : [setCookie ?? ''])
    .map((c) => c.split(';')[0])
    .join('; ');
  if (!csrf) throw new Error(`no join form at ${url}: ${page.status}`);
  return {
    submit: (name: string, email: string) =>
      httpFrom(from, url, {
        method: 'POST',
        cookie,
        body: new URLSearchParams({ csrf, name, email }).toString(),
      }),
  };
}
