import type { App } from '@slack/bolt';
import { DomainError } from '../../../shared/errors.ts';
import { roster } from '../../../slack/context.ts';
import type { Deps } from '../../feature.ts';
import { IMPORT_SHORTCUT, importModal, NOT_ADMIN } from './blocks.ts';

/** The *Import from CSV* shortcut: a modal with a file input; the preview then arrives in the bot's DM. */
export function registerImportShortcut(app: App, deps: Deps): void {
  app.shortcut(IMPORT_SHORTCUT, async ({ ack, shortcut, context, client }) => {
    await ack();
    const { em, account } = roster(context);
    if (!(await deps.admins.isAdmin(em, account, shortcut.user.id))) {
      throw new DomainError('not_admin', NOT_ADMIN);
    }
    await client.views.open({ trigger_id: shortcut.trigger_id, view: importModal() as never });
  });
}
