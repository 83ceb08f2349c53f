import type { App, SlackViewAction, ViewSubmitAction } from '@slack/bolt';
import type { View } from '@slack/types';
import { slackActor } from '../../../slack/actor.ts';
import { plain } from '../../../slack/blocks.ts';
import { roster } from '../../../slack/context.ts';
import { permissionSetInput, roleInput, sendNowInput } from '../../../slack/inputs.ts';
import { firstTime } from '../../../slack/once.ts';
import type { IPermissionSet } from '../../accounts/account.entity.ts';
import { permissionSets } from '../../accounts/account.service.ts';
import type { Deps } from '../../feature.ts';
import { ADMIN_SET_REFUSED, auditRefusedGrant, grantable } from '../../people/grants.ts';
import { ROLES, type Role } from '../../people/user.entity.ts';
import type { Actor } from '../../seats/seat.service.ts';
import type { InviteService } from '../invite.service.ts';
import { invalidMessage, MAX_EMAILS, MAX_EMAILS_TEXT, MAX_MESSAGE, parseAddresses } from '../invite-text.ts';
import { inviteSummary } from './blocks.ts';
import { tellInviter } from './progress.ts';

export const INVITE_VIEW = 'invite_modal';

/** The invite modal, prefilled with what the person already typed. */
export function inviteModal(opts: {
  emailsText?: string;
  role?: Role;
  permissionSets: IPermissionSet[];
}): View {
  return {
    type: 'modal',
    callback_id: INVITE_VIEW,
    title: plain('Invite people'),
    submit: plain('Invite'),
    close: plain('Cancel'),
    blocks: [
      {
        type: 'input',
        block_id: 'emails',
        label: plain('Email addresses'),
        hint: plain(
          `Separate them with commas, semicolons, spaces or new lines; up to ${MAX_EMAILS} at once. Names pasted with them, as in Ana Lopez <ana@example.com>, fill the names.`,
        ),
        element: {
          type: 'plain_text_input',
          action_id: 'emails',
          multiline: true,
          max_length: MAX_EMAILS_TEXT,
          placeholder: plain('ana@example.com, bo@example.org'),
          ...(opts.emailsText ? { initial_value: opts.emailsText } : {}),
        },
      },
      roleInput('Role', opts.role),
      permissionSetInput(opts.permissionSets, opts.role),
      sendNowInput(
        'Unticked, people are added without an invitation; you can send it later with /invite pending.',
      ),
      {
        type: 'input',
        block_id: 'message',
        optional: true,
        label: plain('Personal message'),
        element: { type: 'plain_text_input', action_id: 'message', multiline: true, max_length: MAX_MESSAGE },
      },
    ],
  };
}

/** Opens the invite form for `userId`, offering only the permission sets they may grant. */
export async function openInviteModal(
  deps: Deps,
  client: App['client'],
  triggerId: string,
  context: Parameters<typeof roster>[0],
  userId: string,
  prefill: { emailsText?: string; role?: Role },
): Promise<void> {
  const { em, account } = roster(context);
  const actor = await slackActor(deps, context, userId, { membersOnly: true });
  await client.views.open({
    trigger_id: triggerId,
    view: inviteModal({ ...prefill, permissionSets: grantable(await permissionSets(em, account), actor) }),
  });
}

/** The invite form's submission: field errors on the form, otherwise the invitations and a summary by DM. */
export function registerInviteView(app: App, deps: Deps, invites: InviteService): void {
  app.view<ViewSubmitAction | SlackViewAction>(INVITE_VIEW, async ({ ack, view, body, context, client }) => {
    // Who submitted, asked once however many times it is needed below. Someone of another organisation
    // (Slack Connect) is refused before anything else, on the form, as /invite refuses them the form.
    let asked: Promise<Actor> | undefined;
    const actorOf = () => {
      asked ??= slackActor(deps, context, body.user.id, { membersOnly: true });
      return asked;
    };
    await actorOf();
    const values = view.state.values;
    const typed = values.emails?.emails?.value ?? '';
    const { addresses, invalid } = parseAddresses(typed.slice(0, MAX_EMAILS_TEXT));
    const parsed = { emails: addresses.map((a) => a.email), invalid };
    const role = (values.role?.role?.selected_option?.value ?? 'employee') as Role;
    const errors: Record<string, string> = {};
    if (typed.length > MAX_EMAILS_TEXT) {
      errors.emails = `Keep the addresses under ${MAX_EMAILS_TEXT} characters; invite the rest in another round.`;
    } else if (parsed.invalid.length) {
      errors.emails = invalidMessage(parsed.invalid);
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
    const refusedGrant = chosen?.isAdmin && !(await actorOf()).isAdmin;
    if (refusedGrant) errors.permission_set = ADMIN_SET_REFUSED;
    const message = values.message?.message?.value ?? '';
    if (message.length > MAX_MESSAGE) {
      errors.message = `Keep the personal message under ${MAX_MESSAGE} characters (it has ${message.length}).`;
    }
    if (Object.keys(errors).length) {
      await ack({ response_action: 'errors', errors });
      if (refusedGrant && chosen) {
        const actor = await actorOf();
        await auditRefusedGrant(em, account, actor, chosen, parsed.emails.join(', ').slice(0, 200));
      }
      return;
    }
    await ack();
    // A retried submission (same view, same state) is handled once.
    if (!(await firstTime(em, `view:${view.id}:${view.hash}`))) return;
    const userId = body.user.id;
    const actor = await actorOf();
    const outcomes = await invites.invite(em, account, actor, {
      emails: parsed.emails,
      names: Object.fromEntries(
        addresses
          .filter((a) => a.firstName || a.lastName)
          .map((a) => [a.email.toLowerCase(), { firstName: a.firstName, lastName: a.lastName }]),
      ),
      role,
      permissionSetId,
      sendNow: (values.send_now?.send_now?.selected_options ?? []).length > 0,
      personalMessage: values.message?.message?.value ?? null,
    });
    await tellInviter(deps, client, userId, outcomes, inviteSummary(outcomes, role, actor));
  });
}
