import type { App, SlackViewAction, ViewSubmitAction } from '@slack/bolt';
import { slackActor } from '../../../slack/actor.ts';
import { type Block, esc, context as note, section, slackDate } from '../../../slack/blocks.ts';
import { roster } from '../../../slack/context.ts';
import { firstTime } from '../../../slack/once.ts';
import { permissionSets } from '../../accounts/account.service.ts';
import type { Deps } from '../../feature.ts';
import { ADMIN_SET_REFUSED, auditRefusedGrant, grantable } from '../../people/grants.ts';
import { ROLE_LABEL } from '../../people/labels.ts';
import { displayName, ROLES, type Role } from '../../people/user.entity.ts';
import { DELIVERY_RETRY } from '../invite.delivery.ts';
import type { InviteService } from '../invite.service.ts';
import { MAX_EMAILS, MAX_EMAILS_TEXT, MAX_MESSAGE, parseEmails, parseInviteText } from '../invite-text.ts';
import { inviteSummary, pendingActions } from './blocks.ts';
import { INVITE_VIEW, inviteModal } from './views.ts';

/** Two blocks a person, a heading and a last line: Slack takes at most 50 blocks in a message. */
const SHOWN = 24;

const HELP = [
  '*`/invite`* opens the invite form.',
  '*`/invite ana@example.com, bo@example.org contractor`* opens it filled in.',
  '*`/invite pending`* lists invitations not yet accepted, with Resend, Send and Cancel.',
].join('\n');

/** `/invite`, the *Invite people* and *Invite author* shortcuts, and the invite modal's submission. */
export function registerInviteCommand(app: App, deps: Deps, invites: InviteService): void {
  const openModal = async (
    client: App['client'],
    triggerId: string,
    context: Parameters<typeof roster>[0],
    userId: string,
    prefill: { emailsText?: string; role?: Role },
  ) => {
    const { em, account } = roster(context);
    const actor = await slackActor(deps, context, userId);
    await client.views.open({
      trigger_id: triggerId,
      view: inviteModal({ ...prefill, permissionSets: grantable(await permissionSets(em, account), actor) }),
    });
  };

  app.command('/invite', async ({ ack, command, context, client, respond }) => {
    await ack();
    const text = command.text.trim();
    if (/^pending$/i.test(text)) {
      const { em, account } = roster(context);
      const actor = await slackActor(deps, context, command.user_id);
      const { rows, total } = await invites.pending(em, account, actor, SHOWN);
      const blocks: Block[] = [
        section(
          rows.length
            ? `*Invitations not yet accepted* (${total}${actor.isAdmin ? '' : ', the ones you sent'})`
            : actor.isAdmin
              ? 'No invitation is waiting to be accepted.'
              : 'None of the people you invited is waiting: everyone accepted, or you have not invited anyone yet.',
        ),
      ];
      for (const { user, invitation } of rows.slice(0, SHOWN)) {
        const state =
          user.status === 'not_invited'
            ? 'added, invitation not sent'
            : user.status === 'expired'
              ? 'the invitation expired and the seat was freed; Resend asks for a seat again'
              : invitation?.deliveredAt
                ? `invited by ${invitation.deliveryMethod === 'email' ? 'email' : 'Slack DM'}, expires ${slackDate(invitation.expiresAt)}`
                : invitation && invitation.deliveryAttempts > DELIVERY_RETRY.retryLimit
                  ? `:warning: delivery failed (${esc((invitation.lastError ?? '').slice(0, 80))}); check the address and press Resend`
                  : invitation?.lastError
                    ? `delivery failing, retrying (${esc(invitation.lastError.slice(0, 80))})`
                    : 'invitation being delivered';
        blocks.push(
          section(
            `*${esc(displayName(user))}*${user.firstName ? ` (${esc(user.email)})` : ''}: ${ROLE_LABEL[user.role]}, ${state}`,
          ),
        );
        blocks.push(pendingActions(user.id, user.status as 'invited' | 'not_invited' | 'expired'));
      }
      if (total > rows.length) {
        blocks.push(note(`…and ${total - rows.length} more. Find anyone with \`/people EMAIL\`.`));
      }
      await respond({ response_type: 'ephemeral', text: 'Invitations not yet accepted', blocks });
      return;
    }
    if (/^help$/i.test(text)) {
      await respond({ response_type: 'ephemeral', text: HELP });
      return;
    }
    await openModal(client, command.trigger_id, context, command.user_id, parseInviteText(text));
  });

  app.shortcut('invite_people', async ({ ack, shortcut, context, client }) => {
    await ack();
    await openModal(client, shortcut.trigger_id, context, shortcut.user.id, {});
  });

  app.shortcut('invite_author', async ({ ack, shortcut, context, client }) => {
    await ack();
    const author = shortcut.type === 'message_action' ? shortcut.message.user : undefined;
    const person = author ? await deps.admins.slackPerson(author).catch(() => null) : null;
    await openModal(client, shortcut.trigger_id, context, shortcut.user.id, {
      emailsText: person?.email ?? '',
    });
  });

  app.view<ViewSubmitAction | SlackViewAction>(INVITE_VIEW, async ({ ack, view, body, context, client }) => {
    const values = view.state.values;
    const typed = values.emails?.emails?.value ?? '';
    const parsed = parseEmails(typed.slice(0, MAX_EMAILS_TEXT));
    const role = (values.role?.role?.selected_option?.value ?? 'employee') as Role;
    const errors: Record<string, string> = {};
    if (typed.length > MAX_EMAILS_TEXT) {
      errors.emails = `Keep the addresses under ${MAX_EMAILS_TEXT} characters; invite the rest in another round.`;
    } else if (parsed.invalid.length) {
      errors.emails = `Not valid email addresses: ${parsed.invalid.slice(0, 10).join(', ')}${parsed.invalid.length > 10 ? ` and ${parsed.invalid.length - 10} more` : ''}. Fix or remove them.`;
    } else if (parsed.emails.length === 0) {
      errors.emails = 'Enter at least one email address.';
    } else if (parsed.emails.length > MAX_EMAILS) {
      errors.emails = `At most ${MAX_EMAILS} addresses at once; you entered ${parsed.emails.length}.`;
    }
    if (!(ROLES as readonly string[]).includes(role)) errors.role = 'Choose a role.';
    const { em, account } = roster(context);
    const permissionSetId = values.permission_set?.permission_set?.selected_option?.value ?? null;
    const sets = await permissionSets(em, account);
    const chosen = permissionSetId ? sets.find((set) => set.id === permissionSetId) : undefined;
    if (permissionSetId && !chosen) {
      errors.permission_set = 'That permission set no longer exists; choose another.';
    }
    // The form never offers an admin set to a requester, so such a submission was made by hand.
    const refusedGrant = chosen?.isAdmin && !(await slackActor(deps, context, body.user.id)).isAdmin;
    if (refusedGrant) errors.permission_set = ADMIN_SET_REFUSED;
    const message = values.message?.message?.value ?? '';
    if (message.length > MAX_MESSAGE) {
      errors.message = `Keep the personal message under ${MAX_MESSAGE} characters (it has ${message.length}).`;
    }
    if (Object.keys(errors).length) {
      await ack({ response_action: 'errors', errors });
      if (refusedGrant && chosen) {
        const actor = await slackActor(deps, context, body.user.id);
        await auditRefusedGrant(em, account, actor, chosen, parsed.emails.join(', ').slice(0, 200));
      }
      return;
    }
    await ack();
    // A retried submission (same view, same state) is handled once.
    if (!(await firstTime(em, `view:${view.id}:${view.hash}`))) return;
    const userId = body.user.id;
    const actor = await slackActor(deps, context, userId);
    const outcomes = await invites.invite(em, account, actor, {
      emails: parsed.emails,
      role,
      permissionSetId,
      sendNow: (values.send_now?.send_now?.selected_options ?? []).length > 0,
      personalMessage: values.message?.message?.value ?? null,
    });
    await client.chat.postMessage({ channel: userId, ...inviteSummary(outcomes, role) });
  });
}
