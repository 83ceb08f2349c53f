import type { App, BlockButtonAction } from '@slack/bolt';
import { z } from 'zod';
import { DomainError } from '../../../shared/errors.ts';
import { slackActor } from '../../../slack/actor.ts';
import { roster } from '../../../slack/context.ts';
import { readPage } from '../../../slack/paging.ts';
import { permissionSets } from '../../accounts/account.service.ts';
import type { Deps } from '../../feature.ts';
import { grantable } from '../../people/grants.ts';
import { Contact } from '../contact.entity.ts';
import { type ContactService, requireEditable } from '../contact.service.ts';
import { CONTACT_ACTIONS, findResults, MAX_SEARCH } from './blocks.ts';
import { contactModal, convertModal, prefillFrom } from './views.ts';

const uuid = z.uuid();
/** What a Show more button carries: the search and where the next page starts. */
const morePage = z.object({ q: z.string().max(MAX_SEARCH), o: z.number().int().min(0).max(10_000) });

/** The buttons on search results: Show more, Add contact, Edit, Convert to user. */
export function registerContactActions(app: App, deps: Deps, contacts: ContactService): void {
  app.action<BlockButtonAction>(CONTACT_ACTIONS.more, async ({ ack, action, body, context, respond }) => {
    await ack();
    const page = readPage(morePage, action.value);
    if (!page) {
      throw new DomainError(
        'not_found',
        'Those search results no longer exist. Search again with `/contact find TEXT`.',
      );
    }
    const { q, o } = page;
    const { em, account } = roster(context);
    const { hits, more } = await contacts.find(em, account, q, o);
    const viewer = await slackActor(deps, context, body.user.id, { membersOnly: true });
    await respond({
      response_type: 'ephemeral',
      replace_original: false,
      ...findResults(q, hits, o, more, viewer),
    });
  });

  app.action<BlockButtonAction>(CONTACT_ACTIONS.add, async ({ ack, action, body, client, context }) => {
    await ack();
    await slackActor(deps, context, body.user.id, { membersOnly: true });
    const text = action.value ?? '';
    await client.views.open({
      trigger_id: body.trigger_id,
      view: contactModal(prefillFrom(text)),
    });
  });

  app.action<BlockButtonAction>(CONTACT_ACTIONS.edit, async ({ ack, action, body, context, client }) => {
    await ack();
    const { em, account } = roster(context);
    const id = uuid.safeParse(action.value);
    const contact = id.success ? await em.findOne(Contact, { id: id.data, account }) : null;
    if (!contact) throw new DomainError('not_found', 'That contact no longer exists.');
    requireEditable(contact, await slackActor(deps, context, body.user.id, { membersOnly: true }));
    await client.views.open({ trigger_id: body.trigger_id, view: contactModal(contact, contact.id) });
  });

  app.action<BlockButtonAction>(CONTACT_ACTIONS.convert, async ({ ack, action, body, context, client }) => {
    await ack();
    const { em, account } = roster(context);
    const contact = await contacts.toConvert(em, account, action.value ?? '');
    const actor = await slackActor(deps, context, body.user.id, { membersOnly: true });
    await client.views.open({
      trigger_id: body.trigger_id,
      view: convertModal(contact, grantable(await permissionSets(em, account), actor)),
    });
  });
}
