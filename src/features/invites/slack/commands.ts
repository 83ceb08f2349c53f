import type { App } from '@slack/bolt';
import { slackActor } from '../../../slack/actor.ts';
import { roster } from '../../../slack/context.ts';
import { ADD_ROSTER } from '../../../slack/errors.ts';
import { isOfWorkspace } from '../../directory/directory.service.ts';
import type { Deps } from '../../feature.ts';
import type { InviteService } from '../invite.service.ts';
import { addressLine, MAX_EMAILS, parseInviteText, tooManyToFill } from '../invite-text.ts';
import { PENDING_PAGE, pendingList } from './pending.ts';
import { openInviteModal } from './views.ts';

const HELP = [
  '*`/invite`* opens the invite form.',
  '*`/invite ana@example.com, bo@example.org contractor`* opens it filled in.',
  '*`/invite pending`* lists invitations not yet accepted, with Resend, Send and Cancel.',
].join('\n');

const ADD_TO_CHANNEL = `:information_source: \`/invite\` is Roster's command for inviting people, so \`/invite @roster\` cannot add Roster to a channel. Instead, ${ADD_ROSTER}. To invite someone, type \`/invite\` with their email or @name.`;

/** `/invite`: the invite form (prefilled with what was typed), `pending` and `help`. */
export function registerInviteCommand(app: App, deps: Deps, invites: InviteService): void {
  app.command('/invite', async ({ ack, command, context, client, respond }) => {
    await ack();
    const text = command.text.trim();
    if (/^pending$/i.test(text)) {
      const { em, account } = roster(context);
      const actor = await slackActor(deps, context, command.user_id, { membersOnly: true });
      const page = await invites.pending(em, account, actor, PENDING_PAGE);
      await respond({ response_type: 'ephemeral', ...pendingList(page!, actor.isAdmin, 0) });
      return;
    }
    if (/^help$/i.test(text)) {
      await respond({ response_type: 'ephemeral', text: HELP });
      return;
    }
    const { mentions, ...prefill } = parseInviteText(text);
    if (
      mentions.length === 1 &&
      mentions[0]!.slackUserId === context.botUserId &&
      !prefill.emailsText &&
      !prefill.role
    ) {
      // `/invite @roster`: Slack's own way to add an app to a channel, which reaches Roster's /invite instead.
      await respond({ response_type: 'ephemeral', text: ADD_TO_CHANNEL });
      return;
    }
    // Over the limit, said before anyone is looked up: no part of the list is left out unsaid.
    const mentioned = new Set(mentions.map((m) => m.slackUserId)).size;
    if (mentioned > MAX_EMAILS) {
      await respond({
        response_type: 'ephemeral',
        text: `:no_entry: At most ${MAX_EMAILS} people at once; you mentioned ${mentioned.toLocaleString('en-US')}. Nobody was invited: run \`/invite\` again with up to ${MAX_EMAILS} of them, and the rest in another round.`,
      });
      return;
    }
    if (mentions.length) {
      // A mention is a member of the workspace: their address comes from Roster's copy of the directory.
      const { em, account } = roster(context);
      const lines: string[] = [];
      for (const mention of mentions) {
        const found = await deps.directory.byId(em, account, mention.slackUserId);
        // Someone of another organisation (Slack Connect): their address is not this workspace's to fill in.
        const member = found && isOfWorkspace(found, account.teamId) ? found : null;
        const [firstName, ...rest] = (member?.name ?? '').split(/\s+/);
        lines.push(
          member?.email && !member.deleted
            ? addressLine({
                email: member.email,
                firstName: firstName || undefined,
                lastName: rest.join(' ') || undefined,
              })
            : `@${mention.label ?? mention.slackUserId}`,
        );
      }
      prefill.emailsText = [...lines, prefill.emailsText].filter(Boolean).join('\n');
    }
    const tooMany = tooManyToFill(prefill.emailsText);
    if (tooMany) {
      await respond({ response_type: 'ephemeral', text: `:no_entry: ${tooMany}` });
      return;
    }
    await openInviteModal(deps, client, command.trigger_id, context, command.user_id, prefill);
  });
}
