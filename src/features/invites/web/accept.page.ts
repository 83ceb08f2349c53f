import { html, lines, page } from '../../../web/html.ts';
import type { Outcomes } from '../../../web/outcome.ts';
import type { Csrf, Router, WebResponse } from '../../../web/router.ts';
import type { IAccount } from '../../accounts/account.entity.ts';
import { INVITEE_ROLE } from '../../people/labels.ts';
import { displayName, User } from '../../people/user.entity.ts';
import type { InviteService } from '../invite.service.ts';

/**
 * One answer for unknown, used, expired and cancelled links: it reveals nothing about which. A person who
 * already accepted and opens the link again reads that there is nothing more to do, rather than only
 * being sent to ask for a new invitation they do not need.
 */
export const INVALID_INVITATION: WebResponse = {
  status: 404,
  html: page(
    'Invitation no longer valid',
    html`<h1>This invitation link is no longer valid</h1>
<p>A link works only once. If you already accepted this invitation, there is nothing more to do.</p>
<p>Otherwise it may have expired, been replaced by a newer invitation, or been cancelled: ask the person who invited you to send a new one.</p>`,
  ),
};

/** Where Accept's answer is shown: a fixed path, holding neither the token nor the address. */
export const ACCEPTED_PATH = '/invitations/accepted';

/** `GET /invitations/:token` shows the invitation; its Accept button posts back, CSRF-protected. */
export function registerAcceptPage(
  router: Router,
  csrf: Csrf,
  outcomes: Outcomes,
  invites: InviteService,
  inviterName: (account: IAccount, slackUserId: string | null | undefined) => Promise<string>,
): void {
  // The answer to Accept, as a page of its own (before `/invitations/:token`, which would take the path):
  // reloading it, or going back to it, shows it again and posts nothing. Someone deactivated or locked since
  // is not told they are in, but that their access ended (this page is theirs: it goes by their cookie).
  router.add('GET', ACCEPTED_PATH, async (req) => {
    const outcome = outcomes.read(req);
    const user =
      outcome?.k === 'accepted' && typeof outcome.u === 'string'
        ? await req.em.findOne(User, outcome.u, { populate: ['account'] })
        : null;
    if (user && user.status !== 'active') {
      const name = user.account.getEntity().name ?? 'the account';
      return {
        status: 410,
        html: page(
          'Invitation',
          html`<h1>This invitation no longer gives access</h1><p>You accepted it, but your access to ${name} has ended since. If you think that is a mistake, ask an admin of ${name}.</p>`,
        ),
      };
    }
    if (user) {
      return {
        html: page(
          'Welcome',
          html`<h1 class="ok">You're in</h1>
<p>${displayName(user)}, you are now an active member of ${user.account.getEntity().name ?? 'the account'} as ${INVITEE_ROLE[user.role] ?? user.role}.</p>
${outcome?.already ? html`<p class="muted">You had already accepted this invitation.</p>` : ''}
<p class="muted">You can close this page.</p>`,
        ),
      };
    }
    return {
      html: page(
        'Invitation',
        html`<h1>Nothing more to do here</h1><p>If you pressed Accept on your invitation, you are in: there is nothing more to do. You can close this page.</p>`,
      ),
    };
  });

  router.add('GET', '/invitations/:token', async (req) => {
    const found = await invites.findByToken(req.em, req.params.token ?? '');
    if (!found?.usable) return INVALID_INVITATION;
    const { invitation } = found;
    const user = invitation.user.getEntity();
    const account = invitation.account.getEntity();
    const inviter = await inviterName(account, invitation.invitedBy);
    const { field, cookie } = csrf.issue(req);
    return {
      headers: cookie ? { 'set-cookie': cookie } : {},
      html: page(
        'Accept your invitation',
        html`<h1>You're invited to ${account.name ?? 'join the account'}</h1>
<dl>
  <dt>Invited by</dt><dd>${inviter}</dd>
  <dt>For</dt><dd>${displayName(user)}${user.firstName ? html` (${user.email})` : ''}</dd>
  <dt>As</dt><dd>${INVITEE_ROLE[user.role] ?? user.role}</dd>
  <dt>Expires</dt><dd>${invitation.expiresAt.toUTCString()}</dd>
</dl>
${invitation.personalMessage ? html`<p class="message">“${lines(invitation.personalMessage)}”</p>` : ''}
<form method="post">
  <input type="hidden" name="csrf" value="${field}">
  <button type="submit">Accept invitation</button>
</form>`,
      ),
    };
  });

  router.add('POST', '/invitations/:token', async (req) => {
    const csrfCheck = csrf.check(req);
    if (csrfCheck !== 'ok') {
      return {
        status: 403,
        html: page(
          'Please try again',
          csrfCheck === 'no_cookie'
            ? // Pressing Accept again cannot help while the browser blocks cookies: say what to change.
              html`<h1>Allow cookies for this site</h1><p>Your browser did not send the cookie Roster needs to check that this form came from its own page. Allow cookies for this site in your browser, then <a href="${req.base}${req.path}">open the invitation again</a> and press Accept.</p>`
            : html`<h1>Please try again</h1><p>This form expired or was sent from another page. <a href="${req.base}${req.path}">Open the invitation again</a> and press Accept.</p>`,
        ),
      };
    }
    const result = await invites.accept(req.em, { token: req.params.token ?? '' }, 'web');
    if (!result) return INVALID_INVITATION;
    return outcomes.redirect(req, ACCEPTED_PATH, {
      k: 'accepted',
      u: result.user.id,
      already: result.already,
    });
  });
}
