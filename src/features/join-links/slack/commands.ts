import type { App } from '@slack/bolt';
import { z } from 'zod';
import { cut, esc } from '../../../slack/blocks.ts';
import { roster } from '../../../slack/context.ts';
import type { Deps } from '../../feature.ts';
import type { JoinLinkService } from '../join-link.service.ts';
import { showLinkList, updateLinkMessage } from './actions.ts';
import { NOT_ADMIN, revokedText } from './blocks.ts';
import { joinLinkModal } from './views.ts';

const HELP =
  '`/joinlink` or `/joinlink create` posts a join link in a channel; `/joinlink list` shows your links with a Revoke button; `/joinlink revoke` does the same.';
const uuid = z.uuid();

/** `/joinlink` for admins: create (opens the form), list and revoke. */
export function registerJoinLinkCommand(app: App, deps: Deps, links: JoinLinkService): void {
  app.command('/joinlink', async ({ ack, command, context, client, respond }) => {
    await ack();
    const { em, account } = roster(context);
    const [sub = '', arg] = command.text.trim().split(/\s+/);
    if (sub.toLowerCase() === 'help') {
      await respond({
        response_type: 'ephemeral',
        text: `${HELP} (Admins only: anyone can join through a posted link.)`,
      });
      return;
    }
    if (!(await deps.admins.isAdmin(em, account, command.user_id))) {
      await respond({ response_type: 'ephemeral', text: NOT_ADMIN });
      return;
    }
    switch (sub.toLowerCase()) {
      case '':
      case 'create':
        await client.views.open({
          trigger_id: command.trigger_id,
          view: joinLinkModal({
            channelId: command.channel_id,
            defaultDomains: account.allowedEmailDomains,
            expiryDays: account.joinLinkExpiryDays,
            maxUses: account.joinLinkMaxUses,
          }),
        });
        return;
      case 'list':
        await showLinkList(links, respond, em, account);
        return;
      case 'revoke': {
        const id = uuid.safeParse(arg);
        if (!id.success) {
          await showLinkList(links, respond, em, account, 'Which link? Click *Revoke* next to it.');
          return;
        }
        const { link, already } = await links.revoke(
          em,
          account,
          { slackUserId: command.user_id, isAdmin: true, surface: 'slack' },
          id.data,
        );
        const updated = await updateLinkMessage(deps, client, roster(context).log, link, account);
        await respond({ response_type: 'ephemeral', text: revokedText(link, already, updated) });
        return;
      }
      default:
        await respond({
          response_type: 'ephemeral',
          text: `I did not understand \`${cut(esc(command.text), 200)}\`. ${HELP}`,
        });
    }
  });
}
