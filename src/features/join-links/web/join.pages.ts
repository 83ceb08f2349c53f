import { domainToUnicode } from 'node:url';
import type { EntityManager } from '@mikro-orm/postgresql';
import { z } from 'zod';
import { emailAddress } from '../../../shared/email.ts';
import { DomainError } from '../../../shared/errors.ts';
import { showsSomething } from '../../../shared/visible.ts';
import { html, page } from '../../../web/html.ts';
import type { OutcomeFields, Outcomes } from '../../../web/outcome.ts';
import type { Csrf, Router, WebResponse } from '../../../web/router.ts';
import { Account } from '../../accounts/account.entity.ts';
import { allowedDomains, atDomains } from '../../accounts/allowed-domains.ts';
import { plainAsciiHint } from '../../invites/invite-text.ts';
import { INVITEE_ROLE } from '../../people/labels.ts';
import { type Role, User } from '../../people/user.entity.ts';
import { requestedText, standing } from '../join-link.messages.ts';
import { CONFIRMATION_HOURS, type JoinLinkService, type RequestReason } from '../join-link.service.ts';
import { joinDomains, onlyFor } from '../join-link.terms.ts';
import { type Limiter, RateLimiter } from './rate-limit.ts';

export type RateLimits = {
  perIp: number;
  perLink: number;
  /** How much of one link's `perLink` one network address may take; none when left out. */
  perIpPerLink?: number;
  windowMs: number;
};

/**
 * How many join forms one address, and one link, may submit per window, and how many of a link's one
 * address may take. Each submission may send an email, so these stop a script from mailing strangers;
 * the share per address keeps a few addresses from using up a link for the people joining through it.
 * One address's inbox is protected apart, by CONFIRMATIONS_PER_ADDRESS_HOUR.
 */
export const JOIN_RATE_LIMITS: RateLimits = { perIp: 10, perLink: 120, perIpPerLink: 5, windowMs: 60_000 };

/** Expired, revoked, full and unknown links all get this page, so a token's page tells nothing about it. */
const INVALID: WebResponse = {
  status: 404,
  html: page(
    'Join link no longer valid',
    html`<h1>This join link is no longer valid</h1><p>Ask an admin in your workspace for a new one.</p>`,
  ),
};
/**
 * A good confirmation whose link filled up before it was pressed (or before its page was opened): said to
 * the one person who holds it, who would otherwise believe they had joined.
 */
const FULL: WebResponse = {
  status: 409,
  html: page(
    'Join link full',
    html`<h1>This join link is full</h1><p>All its places were taken before you confirmed, so you did not join. Ask an admin in your workspace for a new one.</p>`,
  ),
};
const tooMany = (limits: RateLimits): WebResponse => {
  const seconds = Math.ceil(limits.windowMs / 1000);
  return {
    status: 429,
    headers: { 'retry-after': String(seconds) },
    html: page(
      'Too many tries',
      html`<h1>Too many tries</h1><p>Lots of people have used this form in the last moment. Please wait a minute, then try again.</p>`,
    ),
  };
};

/** One answer for used, expired and unknown confirmation links: it says nothing about the person. */
const INVALID_CONFIRMATION: WebResponse = {
  status: 404,
  html: page(
    'Confirmation link no longer valid',
    html`<h1>This confirmation link is no longer valid</h1><p>It may have been used already, or it expired. If you already pressed Confirm, there is nothing more to do.</p><p>Otherwise, open the join link again and fill in the form for a new email.</p>`,
  ),
};

/** A form posted without the CSRF cookie at all: the browser blocks cookies, or lost them since. */
const NO_COOKIE =
  'Your browser did not send the cookie Roster needs to check that this form came from its own page.';
const NO_COOKIE_FORM = `${NO_COOKIE} Your browser must allow cookies for this site: allow them, then press the button again.`;

/** Where the join form's answer is shown, and Confirm's: fixed paths, holding no token and no address. */
export const SENT_PATH = '/join/sent';
export const CONFIRMED_PATH = '/join/confirmed';

/** The form's limits: the inputs' maxlength and the server's check are these same numbers. */
export const FIELD_LIMITS = { name: 200, email: 254 } as const;

/**
 * What a name on the public form may not hold: the name reaches admins in Slack, where markup characters
 * and links typed by a stranger could pass for Roster's own words (it is shown as plain text there anyway).
 */
const NOT_A_NAME = /[*_~`<>|]|:\/\/|www\./i;

/**
 * Characters a typed name never holds and nobody sees: control characters (a NUL cannot even be stored),
 * line and paragraph separators, and the direction overrides that make a name read in another order than
 * it is written (to admins in Slack, as to anyone).
 */
const INVISIBLE = /[\p{Cc}\u2028\u2029\u202A-\u202E\u2066-\u2069]/gu;

/** The name field, on the join form and on the Confirm page. */
const nameField = z
  .string()
  .max(FIELD_LIMITS.name, `Names can be at most ${FIELD_LIMITS.name} characters.`)
  .trim()
  .min(1, 'Enter your name.')
  .refine(showsSomething, 'Enter your name: this one is only spaces or invisible characters.')
  .refine(
    (name) => !NOT_A_NAME.test(name),
    'Enter just your name: no links, and none of the characters * _ ~ ` < > |.',
  )
  .refine(
    (name) => !name.match(INVISIBLE),
    'Your name held invisible characters (such as a tab, a line break or a text direction mark), now taken out: check it and send it again.',
  )
  // Spaces typed twice, or pasted in other widths, would reach admins and the person's record as they are.
  .transform((name) => name.replace(/\s+/g, ' '));

/**
 * An address as its owner reads it: a domain in another script shown in that script, not in the ASCII
 * (xn--) form a browser sends it in. Only shown: Roster keeps and mails the ASCII form, which every mail
 * server takes and which is what the account's and the link's email domains are written in.
 */
function readableAddress(email: string): string {
  const at = email.lastIndexOf('@');
  const domain = email.slice(at + 1);
  if (at < 0 || !/(^|\.)xn--/i.test(domain)) return email;
  const unicode = domainToUnicode(domain);
  return unicode ? `${email.slice(0, at)}@${unicode}` : email;
}

const form = z.object({
  name: nameField,
  email: z
    .string()
    .max(FIELD_LIMITS.email, `Email addresses can be at most ${FIELD_LIMITS.email} characters.`)
    .trim()
    .pipe(emailAddress('Enter a valid email address, like name@example.com.')),
});

/** What the form shows again after an error: a value over its limit is left out, never echoed back. */
function echoed(values: { name: string; email: string }) {
  return {
    name: values.name.length > FIELD_LIMITS.name ? '' : withoutInvisible(values.name),
    email: values.email.length > FIELD_LIMITS.email ? '' : readableAddress(withoutInvisible(values.email)),
  };
}

/** Typed text as the form shows it again: without the characters a name may not hold, so it can be sent. */
function withoutInvisible(text: string): string {
  return text.replace(INVISIBLE, '');
}

/**
 * A field with an error is marked invalid and described by it, so a screen reader says both on the field;
 * the first such field of the page takes the cursor, so the person is where the correction goes.
 */
const invalidIf = (id: string, error: string | undefined, first = true) =>
  error ? html` aria-invalid="true" aria-describedby="${id}-error"${first ? html` autofocus` : ''}` : '';

/**
 * A page's title, with `Error: ` before it when the page refuses what was sent: the title is what a screen
 * reader says first of the page that answers a form, and otherwise reads as the page before did.
 */
const titled = (title: string, refused: boolean) => (refused ? `Error: ${title}` : title);

function joinForm(
  /** `domains`: what the link admits, the account's allowed domains included; null for any. */
  intro: { accountName: string; role: string; domains: string[] | null },
  field: string,
  values: { name?: string; email?: string },
  errors: Record<string, string> = {},
  notice?: string,
) {
  return html`<h1>Join ${intro.accountName}</h1>
<p>You will join as ${intro.role}. Enter your name and work email; we will email you a link to confirm it.</p>
${intro.domains ? html`<p class="muted">${intro.domains.length ? `This link is for ${atDomains(intro.domains)} addresses.` : onlyFor([])}</p>` : ''}
${notice ? html`<p class="error" id="form-error">${notice}</p>` : ''}
<form method="post" novalidate>
  <input type="hidden" name="csrf" value="${field}">
  <label for="name">Name</label>
  <input id="name" name="name" type="text" autocomplete="name" maxlength="${FIELD_LIMITS.name}" value="${values.name ?? ''}" required${invalidIf('name', errors.name)}>
  ${errors.name ? html`<p class="error" id="name-error">${errors.name}</p>` : ''}
  <label for="email">Work email</label>
  <input id="email" name="email" type="email" autocomplete="email" maxlength="${FIELD_LIMITS.email}" value="${values.email ?? ''}" required${invalidIf('email', errors.email, !errors.name)}>
  ${errors.email ? html`<p class="error" id="email-error">${errors.email}</p>` : ''}
  <button type="submit">Send me the link</button>
</form>`;
}

/**
 * The Confirm page of an emailed link: the address, and the name that will be saved, in a field to correct
 * (the name came from whichever form submission sent the email: perhaps a typo, perhaps someone else's).
 */
function confirmPage(
  pending: { email: string; role: Role; accountName: string | null },
  field: string,
  name: string,
  error?: string,
) {
  const account = pending.accountName ?? 'the account';
  return page(
    titled(`Join ${account}`, Boolean(error)),
    html`<h1>Confirm to join ${account}</h1>
<p>You will join ${account} as ${INVITEE_ROLE[pending.role] ?? pending.role} with ${readableAddress(pending.email)}.</p>
<form method="post" novalidate>
  <input type="hidden" name="csrf" value="${field}">
  <label for="name">Your name</label>
  <input id="name" name="name" type="text" autocomplete="name" maxlength="${FIELD_LIMITS.name}" value="${name}" required${invalidIf('name', error)}>
  ${error ? html`<p class="error" id="name-error">${error}</p>` : ''}
  <p class="muted">Correct it if it is not your name as you want admins to see it.</p>
  <button type="submit">Confirm</button>
</form>
<p class="muted">Did not ask to join? Close this page: nothing happens unless you press Confirm.</p>`,
  );
}

const accountNameOf = async (em: EntityManager, id: unknown) =>
  (typeof id === 'string' ? (await em.findOne(Account, id))?.name : undefined) ?? 'the account';

/** "Check your inbox" as the join form's redirect left it: the address, and the account being joined. */
async function sentPage(em: EntityManager, o: OutcomeFields | undefined): Promise<string | undefined> {
  if (o?.k !== 'sent' || typeof o.e !== 'string') return undefined;
  const account = await accountNameOf(em, o.a);
  const until = typeof o.u === 'string' ? `by ${o.u}` : `within ${CONFIRMATION_HOURS} hours`;
  return page(
    'Check your inbox',
    html`<h1>Check your inbox</h1><p>We sent an email to <strong>${readableAddress(o.e)}</strong>. Open the link in it ${until} to finish joining ${account}.</p><p class="muted">Nothing there after a few minutes? Check your spam folder, and the address above: if it is mistyped, no email can reach you, so fill in the form again with the right one.</p>`,
  );
}

/** The answer to Confirm, drawn from what its redirect left: who joined, or why they wait. */
async function confirmedPage(em: EntityManager, o: OutcomeFields | undefined): Promise<string | undefined> {
  if (o?.k === 'joined' || o?.k === 'exists') {
    if (typeof o.u !== 'string') return undefined;
    const user = await em.findOne(User, o.u, { populate: ['account'] });
    if (!user) return undefined;
    const account = user.account.getEntity().name ?? 'the account';
    if (o.k === 'joined') {
      return page(
        'Welcome',
        html`<h1 class="ok">You're in</h1><p>You joined ${account} as ${INVITEE_ROLE[user.role] ?? user.role}. Welcome!</p><p class="muted">You can close this page.</p>`,
      );
    }
    const { heading, text } = standing(user.status, user.email, account);
    return page(heading, html`<h1>${heading}</h1><p>${text}</p>`);
  }
  if (o?.k === 'requested' && typeof o.r === 'string') {
    const account = await accountNameOf(em, o.a);
    const guest = o.g === 'multi_channel' || o.g === 'single_channel' ? o.g : undefined;
    return page(
      'Waiting for approval',
      html`<h1>Almost there</h1><p>${requestedText(o.r as RequestReason, account, 'We will email you when they decide.', guest)}</p>`,
    );
  }
  return undefined;
}

/** The join page of a link, the confirmation it emails, and the page that link opens. */
export function registerJoinPages(
  router: Router,
  csrf: Csrf,
  outcomes: Outcomes,
  links: JoinLinkService,
  opts: { limits?: RateLimits; limiter?: Limiter } = {},
): void {
  const limits = opts.limits ?? JOIN_RATE_LIMITS;
  const limiter = opts.limiter ?? new RateLimiter(limits.windowMs);
  const introOf = async (
    em: EntityManager,
    link: NonNullable<Awaited<ReturnType<JoinLinkService['findUsable']>>>,
  ) => ({
    accountName: link.account.getEntity().name ?? 'the account',
    role: INVITEE_ROLE[link.role] ?? link.role,
    domains: joinDomains(link, await allowedDomains(em, link.account)),
  });

  // The answers of the join form and of Confirm, as pages of their own at fixed paths that hold no token
  // and no address (added before `/join/:token`, which would take these paths): reloading them, or going
  // back and forward to them, shows them again and posts nothing, so no second email goes.
  router.add('GET', SENT_PATH, async (req) => {
    const shown = await sentPage(req.em, outcomes.read(req));
    if (shown) return { html: shown };
    return {
      html: page(
        'Check your inbox',
        html`<h1>Check your inbox</h1><p>If you filled in a join form, we sent an email to the address you entered. Open the link in it within ${CONFIRMATION_HOURS} hours at most to finish joining.</p><p class="muted">Nothing there after a few minutes? Check your spam folder, or fill in the form again.</p>`,
      ),
    };
  });
  router.add('GET', CONFIRMED_PATH, async (req) => {
    const shown = await confirmedPage(req.em, outcomes.read(req));
    if (shown) return { html: shown };
    return {
      html: page(
        'Confirmed',
        html`<h1>Nothing more to do here</h1><p>If you pressed Confirm on your join link, it was received: there is nothing more to do. You can close this page.</p>`,
      ),
    };
  });

  router.add('GET', '/join/:token', async (req) => {
    const link = await links.findUsable(req.em, req.params.token ?? '');
    if (!link) return INVALID;
    const { field, cookie } = csrf.issue(req);
    const intro = await introOf(req.em, link);
    return {
      headers: cookie ? { 'set-cookie': cookie } : {},
      html: page(`Join ${intro.accountName}`, joinForm(intro, field, {})),
    };
  });

  router.add('POST', '/join/:token', async (req) => {
    const token = req.params.token ?? '';
    // Every post counts against its address, so guessing tokens or posting junk stays slow.
    if (!(await limiter.allow(`ip:${req.network}`, limits.perIp))) {
      req.log.warn({ ip: req.ip }, 'join form rate limited: address');
      return tooMany(limits);
    }
    const link = await links.findUsable(req.em, token);
    if (!link) return INVALID;
    const intro = await introOf(req.em, link);
    const values = { name: req.form.get('name') ?? '', email: req.form.get('email') ?? '' };
    const csrfCheck = csrf.check(req);
    if (csrfCheck !== 'ok') {
      // The form again, with what was typed and a token that goes with the browser's cookie (issued now
      // when it sent none): pressing the button once more sends it, nothing typed is lost.
      const { field, cookie } = csrf.issue(req);
      return {
        status: 403,
        headers: cookie ? { 'set-cookie': cookie } : {},
        html: page(
          titled(`Join ${intro.accountName}`, true),
          joinForm(
            intro,
            field,
            echoed(values),
            {},
            csrfCheck === 'no_cookie'
              ? NO_COOKIE_FORM
              : 'This form expired or was sent from another page. Check your details and press the button again.',
          ),
        ),
      };
    }
    const again = (errors: Record<string, string>): WebResponse => ({
      status: 422,
      html: page(
        titled(`Join ${intro.accountName}`, true),
        joinForm(intro, csrf.issue(req).field, echoed(values), errors),
      ),
    });
    const parsed = form.safeParse(values);
    if (!parsed.success) {
      const errors: Record<string, string> = {};
      for (const i of parsed.error.issues) errors[String(i.path[0])] ??= i.message;
      // An address with accents or another script: say why, as /invite does, rather than only "not valid".
      const hint =
        errors.email && values.email.length <= FIELD_LIMITS.email
          ? plainAsciiHint(values.email.trim(), 'use another address')
          : undefined;
      if (hint) errors.email = `${hint}.`;
      return again(errors);
    }
    // Only a submission that would send an email counts against the link: junk posted from a few
    // addresses (no form token, another page's, an empty field), or an address that already has its
    // emails, must not use up the link for everyone. One address takes at most its share of the link, and
    // every filled-in form counts against that share, whether or not it queues an email: a share that
    // counted only new addresses would tell its sender which addresses others had asked for.
    // `count`: false for an address that queues no email, checked against the link's limit without a hit.
    const mayQueue = async (tx: EntityManager, count: boolean) => {
      const check = (key: string, limit: number) =>
        count ? limiter.allow(key, limit, tx) : limiter.wouldAllow(key, limit, tx);
      if (
        limits.perIpPerLink !== undefined &&
        !(await limiter.allow(`link:${link.id}:ip:${req.network}`, limits.perIpPerLink, tx))
      ) {
        req.log.warn({ ip: req.ip, joinLink: link.id }, 'join form rate limited: address on link');
        return false;
      }
      if (!(await check(`link:${link.id}`, limits.perLink))) {
        req.log.warn({ ip: req.ip, joinLink: link.id }, 'join form rate limited: link');
        return false;
      }
      return true;
    };
    let outcome: Awaited<ReturnType<JoinLinkService['requestConfirmation']>>;
    try {
      outcome = await links.requestConfirmation(req.em, link, parsed.data, mayQueue);
    } catch (err) {
      if (err instanceof DomainError && err.field) return again({ [err.field]: err.message });
      throw err;
    }
    if (outcome === 'refused') return tooMany(limits);
    if (outcome === 'address_limited')
      req.log.warn({ joinLink: link.id }, 'join form: address had its emails');
    // The same answer whether or not the address is known, and whether an email went now, an earlier one
    // is still on its way, or the address had its emails for the hour: the page reveals nothing.
    // A link that ends within the confirmation's hours ends its confirmation too: the page gives that time.
    const endsSooner = link.expiresAt.getTime() < Date.now() + CONFIRMATION_HOURS * 3_600_000;
    return outcomes.redirect(req, SENT_PATH, {
      k: 'sent',
      e: parsed.data.email,
      a: link.account.id,
      ...(endsSooner ? { u: link.expiresAt.toUTCString() } : {}),
    });
  });

  // Opening the emailed link only shows a Confirm button: mail scanners and link previews fetch links
  // (GET and HEAD) before the person does, and must not join anyone.
  router.add('GET', '/join/confirm/:token', async (req) => {
    const pending = await links.findConfirmation(req.em, req.params.token ?? '');
    if (!pending) return INVALID_CONFIRMATION;
    if (pending.ended) return pending.ended === 'full' ? FULL : INVALID;
    const { field, cookie } = csrf.issue(req);
    return {
      headers: cookie ? { 'set-cookie': cookie } : {},
      html: confirmPage(pending, field, pending.name),
    };
  });

  router.add('POST', '/join/confirm/:token', async (req) => {
    const csrfCheck = csrf.check(req);
    if (csrfCheck !== 'ok') {
      return {
        status: 403,
        html: page(
          'Please try again',
          csrfCheck === 'no_cookie'
            ? html`<h1>Allow cookies for this site</h1><p>${NO_COOKIE} Allow cookies for this site in your browser, then <a href="${req.base}${req.path}">open the confirmation link again</a> and press Confirm.</p>`
            : html`<h1>Please try again</h1><p>This page expired or was sent from another page. <a href="${req.base}${req.path}">Open the confirmation link again</a> and press Confirm.</p>`,
        ),
      };
    }
    // The name as the Confirm page showed it, perhaps corrected; a form without the field (an older page)
    // keeps the name the join form gave.
    const typed = req.form.get('name');
    let name: string | undefined;
    if (typed != null) {
      const parsed = nameField.safeParse(typed);
      if (!parsed.success) {
        const pending = await links.findConfirmation(req.em, req.params.token ?? '');
        if (!pending) return INVALID_CONFIRMATION;
        if (pending.ended) return pending.ended === 'full' ? FULL : INVALID;
        return {
          status: 422,
          html: confirmPage(
            pending,
            csrf.issue(req).field,
            typed.length > FIELD_LIMITS.name ? '' : withoutInvisible(typed),
            parsed.error.issues[0]?.message,
          ),
        };
      }
      name = parsed.data;
    }
    const result = await links.confirm(req.em, req.params.token ?? '', { name });
    switch (result.status) {
      case 'joined':
      case 'exists':
        return outcomes.redirect(req, CONFIRMED_PATH, { k: result.status, u: result.user.id });
      case 'requested':
        return outcomes.redirect(req, CONFIRMED_PATH, {
          k: 'requested',
          a: result.accountId ?? null,
          r: result.reason,
          g: result.guest ?? null,
        });
      case 'domain_not_allowed':
        return {
          status: 403,
          html: page(
            'Not allowed',
            html`<h1>This link is not for your email domain</h1><p>${onlyFor(result.allowed)} Ask an admin to invite you.</p>`,
          ),
        };
      case 'link_full':
        return FULL;
      default:
        return result.linkEnded ? INVALID : INVALID_CONFIRMATION;
    }
  });
}
