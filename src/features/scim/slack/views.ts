import type { View } from '@slack/types';
import { actions, type Block, button, context, plain, section } from '../../../slack/blocks.ts';
import type { ScimStatus } from '../scim.service.ts';
import { SCIM_ACTIONS, SCIM_VIEW, statusLine } from './blocks.ts';

/**
 * The SCIM form: connect when nothing is connected, or when the saved URL can no longer be used; otherwise
 * the status, Sync now and Disconnect.
 */
export function scimModal(status: ScimStatus, note?: string): View {
  const blocks: Block[] = [section(statusLine(status))];
  const editable = !status.managedByEnv;
  if (note) blocks.push(context(note));
  // A connection saved with a URL Roster no longer takes, or whose token the service refused, is replaced
  // by connecting again, here: the URL kept, a new token typed.
  const canSubmit = (!status.connected || !!status.unusableUrl || !!status.refused) && editable;
  const keptUrl = status.refused && !status.unusableUrl ? status.baseUrl : null;
  if (canSubmit) {
    blocks.push(
      {
        type: 'input',
        block_id: 'url',
        label: plain('Base URL'),
        hint: plain('The SCIM 2.0 endpoint of your product, e.g. https://app.example.com/scim/v2'),
        element: {
          type: 'url_text_input',
          action_id: 'url',
          ...(keptUrl ? { initial_value: keptUrl } : {}),
        },
      },
      {
        type: 'input',
        block_id: 'token',
        label: plain('Bearer token'),
        hint: plain('Stored to call the service; never shown again. Roster checks it before saving.'),
        element: { type: 'plain_text_input', action_id: 'token', max_length: 3000 },
      },
    );
  }
  if (status.connected) {
    const buttons = status.unusableUrl ? [] : [button('Sync now', SCIM_ACTIONS.syncNow, 'sync', 'primary')];
    if (editable) {
      buttons.push({
        ...button('Disconnect', SCIM_ACTIONS.disconnect, 'disconnect', 'danger'),
        confirm: {
          title: plain('Disconnect?'),
          text: {
            type: 'mrkdwn' as const,
            text: 'Roster stops sending changes. Users already in the service stay there as they are.',
          },
          confirm: plain('Disconnect'),
          deny: plain('Cancel'),
          style: 'danger' as const,
        },
      } as ReturnType<typeof button>);
    }
    if (buttons.length) blocks.push(actions('scim_actions', ...buttons));
    blocks.push(
      context(
        'Roster keeps the service’s users equal to its own: names, email, role, and active only while a person is active in Roster. *Sync now* compares everyone and reports what differed.',
      ),
    );
  }
  if (!editable)
    blocks.push(
      context(
        'This connection is set by the deployment (SCIM_URL and SCIM_TOKEN) and cannot be changed here.',
      ),
    );
  return {
    type: 'modal' as const,
    callback_id: SCIM_VIEW,
    title: plain('SCIM provisioning'),
    ...(canSubmit ? { submit: plain('Connect') } : {}),
    close: plain('Close'),
    blocks,
  };
}
