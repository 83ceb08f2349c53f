import { z } from 'zod';
import { html, page } from '../../../web/html.ts';
import type { Csrf, Router, WebResponse } from '../../../web/router.ts';
import type { JoinLinkService } from '../join-link.service.ts';
import { RateLimiter } from './rate-limit.ts';

const INVALID: WebResponse = {
  status: 404,
  html: page(
    'Join link no longer valid',
    html`<h1>This join link is no longer valid</h1><p>It may have expired, been revoked or been used up.</p><p>Ask an admin in your workspace for a new one.</p>`,
  ),
};
const TOO_MANY: WebResponse = {
  status: 429,
  headers: { 'retry-after': '60' },
  html: page('Slow down', html`<h1>That was a lot of tries</h1><p>Please wait a minute, then try again.</p>`),
};

const form = z.object({
  name: z.string().trim().min(1, 'Enter your name.').max(200, 'That name is too long.'),
  email: z.string().trim().pipe(z.email('Enter a valid email address.')),
});

function joinForm(
  field: string,
  values: { name?: string; email?: string },
  errors: Record<string, string> = {},
) {
  return html`<h1>Join</h1>
<p>Enter your name and work email. We will email you a link to confirm it.</p>
<form method="post" novalidate>
  <input type="hidden" name="csrf" value="${field}">
  <label for="name">Name</label>
  <input id="name" name="name" type="text" autocomplete="name" value="${values.name ?? ''}" required>
  ${errors.name ? html`<p class="error">${errors.name}</p>` : ''}
  <label for="email">Work email</label>
  <input id="email" name="email" type="email" autocomplete="email" value="${values.email ?? ''}" required>
  ${errors.email ? html`<p class="error">${errors.email}</p>` : ''}
  <button type="submit">Send me the link</button>
</form>`;
}

/** The join page of a link, the confirmation it emails, and the page that link opens. */
export function registerJoinPages(
  router: Router,
  csrf: Csrf,
  links: JoinLinkService,
  limiter = new RateLimiter(),
): void {
  router.add('GET', '/join/:token', async (req) => {
    const link = await links.findUsable(req.em, req.params.token ?? '');
    if (!link) return INVALID;
    const { field, cookie } = csrf.issue(req);
    return { headers: cookie ? { 'set-cookie': cookie } : {}, html: page('Join', joinForm(field, {})) };
  });

  router.add('POST', '/join/:token', async (req) => {
    const token = req.params.token ?? '';
    if (!limiter.allow(`ip:${req.ip}`, 10) || !limiter.allow(`link:${token.slice(0, 16)}`, 60))
      return TOO_MANY;
    const link = await links.findUsable(req.em, token);
    if (!link) return INVALID;
    if (!csrf.verify(req)) {
      return {
        status: 403,
        html: page(
          'Please try again',
          html`<h1>Please try again</h1><p>This form expired. <a href="${req.path}">Open the join page again</a>.</p>`,
        ),
      };
    }
    const values = { name: req.form.get('name') ?? '', email: req.form.get('email') ?? '' };
    const parsed = form.safeParse(values);
    if (!parsed.success) {
      const errors = Object.fromEntries(parsed.error.issues.map((i) => [String(i.path[0]), i.message]));
      return { status: 422, html: page('Join', joinForm(csrf.issue(req).field, values, errors)) };
    }
    await links.requestConfirmation(req.em, link, parsed.data);
    // The same answer whether or not the address is known, so the page reveals nothing.
    return {
      html: page(
        'Check your inbox',
        html`<h1>Check your inbox</h1><p>We sent an email to <strong>${parsed.data.email}</strong>. Open the link in it within 24 hours to finish joining.</p><p class="muted">Nothing there? Check your spam folder, or try again.</p>`,
      ),
    };
  });

  router.add('GET', '/join/confirm/:token', async (req) => {
    const result = await links.confirm(req.em, req.params.token ?? '');
    const account = result.accountName ?? 'the account';
    switch (result.status) {
      case 'joined':
        return {
          html: page(
            'Welcome',
            html`<h1 class="ok">You're in</h1><p>You joined ${account}. Welcome!</p><p class="muted">You can close this page.</p>`,
          ),
        };
      case 'exists':
        return {
          html: page(
            'Already in',
            html`<h1>You're already in</h1><p>This email already belongs to someone in ${account}.</p>`,
          ),
        };
      case 'requested':
        return {
          html: page(
            'Waiting for approval',
            html`<h1>Almost there</h1><p>No paid seat is free right now, so an admin of ${account} has been asked to approve your place. You will hear from them.</p>`,
          ),
        };
      case 'domain_not_allowed':
        return {
          status: 403,
          html: page(
            'Not allowed',
            html`<h1>This link is not for your email domain</h1><p>It is only for ${result.allowed.map((d) => `@${d}`).join(', ')} addresses. Ask an admin to invite you.</p>`,
          ),
        };
      default:
        return INVALID;
    }
  });
}
