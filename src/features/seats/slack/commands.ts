import type { App } from '@slack/bolt';
import {
  actions,
  type Block,
  button,
  cut,
  esc,
  context as note,
  section,
  slackDate,
} from '../../../slack/blocks.ts';
import { roster } from '../../../slack/context.ts';
import { Account } from '../../accounts/account.entity.ts';
import { audit } from '../../audit/audit.service.ts';
import type { Deps } from '../../feature.ts';
import { ROLE_LABEL } from '../../people/labels.ts';
import { SeatRequest } from '../seat-request.entity.ts';
import { requester, SEAT_ACTIONS } from './blocks.ts';
import { channelProblem, openSettings } from './views.ts';

const USAGE = [
  '*`/seats`* shows paid seats used, the limit and the requests waiting for an admin.',
  '*`/seats 25`* sets the limit to 25 (admins).',
  "*`/seats channel #approvals`* (pick the channel from Slack's list as you type `#`) posts seat requests to that channel; *`/seats channel dm`* sends them to every admin by DM (admins).",
  '*`/seats settings`* opens the settings: approval channel, seat limit, allowed email domains, invitation expiry, join link terms (admins).',
].join('\n');

/** How many waiting requests `/seats` lists, with their buttons: two blocks each, within a message's 50. */
const REQUESTS_SHOWN = 20;

/** `/seats`, `/seats N`, `/seats channel …`. */
export function registerSeatsCommand(app: App, deps: Deps): void {
  app.command('/seats', async ({ ack, command, context, respond, client }) => {
    await ack();
    const { em, account, userId } = roster(context);
    const text = command.text.trim();
    const actor = async () => ({
      slackUserId: command.user_id,
      isAdmin: await deps.admins.isAdmin(em, account, userId ?? command.user_id),
      surface: 'slack' as const,
    });
    const reply = (message: { text: string; blocks?: Block[] }) =>
      respond({ response_type: 'ephemeral', ...message });

    if (text === '' || text === 'list') {
      const usage = await deps.seats.usage(em, account);
      const [pending, waiting] = await em.findAndCount(
        SeatRequest,
        { account, status: 'pending' },
        { orderBy: { createdAt: 'asc' }, limit: REQUESTS_SHOWN },
      );
      const isAdmin = (await actor()).isAdmin;
      const blocks: Block[] = [
        section(
          `*Paid seats:* ${usage.used} of ${usage.limit} used, ${usage.free} free.${isAdmin ? ' Change the limit with `/seats N`.' : ''}`,
        ),
      ];
      if (pending.length === 0) blocks.push(note('No seat requests are waiting.'));
      for (const r of pending) {
        blocks.push(
          section(
            `• *${esc(r.email)}*: ${ROLE_LABEL[r.role]}, asked by ${requester(r)} ${slackDate(r.createdAt)}`,
          ),
        );
        if (isAdmin) {
          blocks.push(
            actions(
              `seat_request:${r.id}`,
              usage.free > 0
                ? button('Approve', SEAT_ACTIONS.approve, r.id, 'primary')
                : button('Approve and add a seat', SEAT_ACTIONS.approveAddSeat, r.id, 'primary'),
              button('Reject', SEAT_ACTIONS.reject, r.id, 'danger'),
            ),
          );
        }
      }
      if (waiting > pending.length) {
        blocks.push(
          note(
            `…and ${waiting - pending.length} more waiting (${waiting} in all; the oldest are shown first).`,
          ),
        );
      }
      await reply({ text: `Paid seats: ${usage.used} of ${usage.limit} used`, blocks });
      return;
    }

    if (/^settings$/i.test(text)) {
      await openSettings(deps, context, command.user_id, command.trigger_id, client);
      return;
    }
    if (/^help$/i.test(text)) {
      await reply({ text: USAGE });
      return;
    }

    const limit = /^\d+$/.exec(text);
    if (limit) {
      const usage = await deps.seats.setLimit(em, account, Number(text), await actor());
      await reply({
        text: `:white_check_mark: The seat limit is now ${usage.limit} (${usage.used} used, ${usage.free} free).`,
      });
      return;
    }

    const channel = /^channel\s+(?:<#([CG][A-Z0-9]+)(?:\|[^>]*)?>|#?([CG][A-Z0-9]{8,})|(dm)|#?(\S+))$/.exec(
      text.replace(/^channel/i, 'channel'),
    );
    if (channel) {
      if (!(await actor()).isAdmin) {
        await reply({ text: 'Only admins can choose where seat requests go.' });
        return;
      }
      // Slack escapes a channel picked from its list as <#C…|name>. A name it left as typed is not looked
      // up: finding it means reading every channel of the workspace, which Slack allows only slowly.
      if (channel[4]) {
        await reply({
          text: `I could not tell which channel #${esc(channel[4])} is: Slack sent the name as plain text. Type \`/seats channel #\` and pick the channel from Slack's list, or choose it with the channel picker in \`/seats settings\`.`,
        });
        return;
      }
      const channelId = channel[1] ?? channel[2] ?? null;
      const problem = channelId ? await channelProblem(client, channelId) : null;
      if (problem) {
        await reply({ text: problem });
        return;
      }
      const fresh = await em.findOneOrFail(Account, account.id);
      const before = fresh.approvalChannelId;
      fresh.approvalChannelId = channelId;
      audit(em, {
        account: fresh,
        actor: command.user_id,
        action: 'settings.approval_channel_changed',
        subjectType: 'account',
        subjectId: account.id,
        surface: 'slack',
        data: { from: before, to: channelId },
      });
      await em.flush();
      await reply({
        text: channelId
          ? `:white_check_mark: Seat requests will be posted in <#${channelId}>.`
          : ':white_check_mark: Seat requests will be sent to every admin by DM.',
      });
      return;
    }

    // Slack sends the text escaped (manifest.yml's should_escape): shown as it came, cut short.
    await reply({ text: `I did not understand \`/seats ${cut(text, 200)}\`.\n${USAGE}` });
  });
}
