import type { App, BlockButtonAction } from '@slack/bolt';
import { z } from 'zod';
import { DomainError } from '../../../shared/errors.ts';
import { slackActor } from '../../../slack/actor.ts';
import { esc } from '../../../slack/blocks.ts';
import { roster } from '../../../slack/context.ts';
import { readPage } from '../../../slack/paging.ts';
import { isOfWorkspace } from '../../directory/directory.service.ts';
import type { Deps } from '../../feature.ts';
import { loginEmail } from '../../people/labels.ts';
import { displayName, isPaidRole, User } from '../../people/user.entity.ts';
import { Invitation } from '../invitation.entity.ts';
import type { InviteService } from '../invite.service.ts';
import { INVITE_ACTIONS } from './blocks.ts';
import { PENDING_PAGE, pendingList } from './pending.ts';

const uuid = z.uuid();
/** A Show more button's value under `/invite pending` (see PendingPage). */
const pendingPage = z.object({ a: uuid, n: z.number().int().min(1).max(1_000_000) });

/** Resend, Send invitation and Cancel wherever they are shown; Show more under `/invite pending`; Accept in the invitation DM. */
export function registerInviteActions(app: App, deps: Deps, invites: InviteService): void {
  app.action<BlockButtonAction>(INVITE_ACTIONS.more, async ({ ack, action, body, context, respond }) => {
    await ack();
    const gone = new DomainError(
      'not_found',
      'Those invitations have changed since they were listed. Type `/invite pending` to list them again.',
    );
    const at = readPage(pendingPage, action.value);
    if (!at) throw gone;
    const { em, account } = roster(context);
    const actor = await slackActor(deps, context, body.user.id, { membersOnly: true });
    const page = await invites.pending(em, account, actor, PENDING_PAGE, at.a);
    if (!page) throw gone;
    await respond({
      response_type: 'ephemeral',
      replace_original: false,
      ...pendingList(page, actor.isAdmin, at.n),
    });
  });

  for (const [actionId, verb] of [
    [INVITE_ACTIONS.resend, 'resent'],
    [INVITE_ACTIONS.send, 'sent'],
  ] as const) {
    app.action<BlockButtonAction>(actionId, async ({ ack, action, body, context, respond }) => {
      await ack();
      const id = uuid.safeParse(action.value);
      if (!id.success) throw new DomainError('not_found', 'That person is no longer in Roster.');
      const { em, account } = roster(context);
      const actor = await slackActor(deps, context, body.user.id, { membersOnly: true });
      const expired = await em.findOne(User, { id: id.data, account, status: 'expired' });
      if (expired) {
        // As for any invitation: only whoever invited them, or an admin, sends it again.
        if (!actor.isAdmin && expired.addedBy !== actor.slackUserId) {
          throw new DomainError('not_allowed', 'Only the person who invited them or an admin can do that.');
        }
        // The seat went back when the invitation expired: sending it again asks for one, like a new person.
        // Checked under the lock to still be expired: deactivated meanwhile, they are not brought back.
        const result = await deps.people
          .reactivate(em, account, actor, expired.id, { sendInvitation: true, openedFor: 'expired' })
          .catch(async (err) => {
            if (!(err instanceof DomainError)) throw err;
            if (err.code === 'conflict') {
              // Another click (a double click, or someone else's) sent it again a moment ago: said as a repeat,
              // not as a form overtaken. Anything else the person became since is said as it is.
              const now = await em.fork().findOne(User, { id: expired.id, account });
              if (now?.status === 'invited') return { status: 'repeat' as const };
            }
            if (err.code !== 'no_seat') throw err;
            const usage = await deps.seats.usage(em, account);
            return { status: 'no_seat' as const, usage };
          });
        if (result.status === 'repeat') {
          await respond({
            response_type: 'ephemeral',
            replace_original: false,
            text: `:envelope: ${esc(expired.email)} was invited again a moment ago, so nothing more was sent.`,
          });
          return;
        }
        if (result.status === 'no_seat') {
          await respond({
            response_type: 'ephemeral',
            replace_original: false,
            text: `:no_entry: No paid seat is free (${result.usage.used} of ${result.usage.limit} used), so the invitation to ${esc(expired.email)} was not sent again: it expired and gave its seat back, and sending it again takes one. Raise the limit with \`/seats ${result.usage.limit + 1}\` or free a seat, then press Resend again.`,
          });
          return;
        }
        await respond({
          response_type: 'ephemeral',
          replace_original: false,
          text:
            result.status === 'done'
              ? `:envelope: Invitation sent again to ${esc(expired.email)}${isPaidRole(expired.role) ? `; they hold a paid seat again${result.seatAdded ? ' (one seat was added)' : ''}` : ''}.`
              : `:hourglass_flowing_sand: ${esc(expired.email)}'s invitation expired and their seat was freed, so an admin has been asked to approve a seat again. You will get a message when they decide.`,
        });
        return;
      }
      const { user, repeated } = await invites.resend(em, account, actor, id.data);
      if (repeated) {
        await respond({
          response_type: 'ephemeral',
          replace_original: false,
          text: `:envelope: An invitation to ${esc(loginEmail(user.email))} was queued a moment ago and is on its way, so it was not sent again.`,
        });
        return;
      }
      await respond({
        response_type: 'ephemeral',
        replace_original: false,
        text: `:envelope: Invitation ${verb} to ${esc(displayName(user))}${user.firstName ? ` (${esc(loginEmail(user.email))})` : ''}. ${verb === 'resent' ? 'The earlier link no longer works.' : ''}`.trim(),
      });
    });
  }

  app.action<BlockButtonAction>(INVITE_ACTIONS.cancel, async ({ ack, action, body, context, respond }) => {
    await ack();
    const id = uuid.safeParse(action.value);
    if (!id.success) throw new DomainError('not_found', 'That person is no longer in Roster.');
    const { em, account } = roster(context);
    const { user, already } = await invites.cancel(
      em,
      account,
      await slackActor(deps, context, body.user.id, { membersOnly: true }),
      id.data,
    );
    await respond({
      response_type: 'ephemeral',
      replace_original: false,
      text: already
        ? `The invitation to ${esc(user.email)} is already cancelled: their link no longer works and they are deactivated in Roster. Nothing changed.`
        : `:x: Cancelled the invitation to ${esc(user.email)}: their link no longer works and they are deactivated in Roster${isPaidRole(user.role) ? ', so their paid seat is free again' : ''}.`,
    });
  });

  app.action<BlockButtonAction>(INVITE_ACTIONS.accept, async ({ ack, action, body, context, respond }) => {
    await ack();
    const { em, account } = roster(context);
    const id = uuid.safeParse(action.value);
    const invitation = id.success
      ? await em.findOne(Invitation, { id: id.data, account }, { populate: ['user'] })
      : null;
    const person = await deps.admins.member(em, account, body.user.id);
    const invitee = invitation?.user.getEntity();
    if (!invitation || !invitee)
      throw new DomainError(
        'link_invalid',
        'This invitation is no longer valid. Ask the person who invited you to send a new one.',
      );
    if (person && !isOfWorkspace(person, account.teamId)) {
      // An address given by another organisation (Slack Connect) does not show that this is the invitee.
      throw new DomainError(
        'not_allowed',
        'This invitation can be accepted in Slack only by a member of this workspace, and you are here through Slack Connect, from another organisation. Nothing changed: ask the person who invited you to send it again, and it will come by email.',
      );
    }
    if (!person?.email || person.email.trim().toLowerCase() !== invitee.email.trim().toLowerCase()) {
      throw new DomainError('not_allowed', `This invitation is for ${invitee.email}, not for you.`);
    }
    const result = await invites.accept(
      em,
      { invitationId: invitation.id, slackUserId: body.user.id },
      'slack',
    );
    if (!result) {
      // The invitee is known here (Slack says who clicked, and the email matched): one who accepted long
      // ago is told so, not sent to ask for a new invitation.
      const now = await em
        .fork()
        .findOne(Invitation, { id: invitation.id, account }, { populate: ['user', 'account'] });
      // Someone deactivated or locked since is not told they are a member: the invitation is no longer valid.
      const member = now?.user.getEntity();
      if (now?.status === 'accepted' && member?.slackUserId === body.user.id && member.status === 'active') {
        await respond({
          replace_original: true,
          text: `:white_check_mark: You already accepted this invitation: you are a member of ${esc(now.account.getEntity().name ?? 'the account')}. There is nothing more to do.`,
        });
        return;
      }
      throw new DomainError(
        'link_invalid',
        'This invitation is no longer valid. Ask the person who invited you to send a new one.',
      );
    }
    await respond({
      replace_original: true,
      text: `:white_check_mark: You accepted the invitation: you are now an active member of ${esc(result.account.name ?? 'the account')}.`,
    });
  });
}
