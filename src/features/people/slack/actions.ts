import type { App, BlockButtonAction } from '@slack/bolt';
import { DomainError } from '../../../shared/errors.ts';
import { slackActor } from '../../../slack/actor.ts';
import { esc, section } from '../../../slack/blocks.ts';
import { roster } from '../../../slack/context.ts';
import { nowOrLater } from '../../../slack/later.ts';
import { permissionSets } from '../../accounts/account.service.ts';
import type { Deps } from '../../feature.ts';
import { grantable } from '../grants.ts';
import { statusLabel } from '../labels.ts';
import type { PersonService } from '../person.service.ts';
import { displayName, isPaidRole, SEAT_HOLDING_STATUSES } from '../user.entity.ts';
import { PERSON_ACTIONS, personCard, readTarget } from './blocks.ts';
import { changeModal } from './views.ts';

/** The person card's buttons and the forms they open; every change is checked again by the services. */
export function registerPeopleActions(app: App, deps: Deps, people: PersonService): void {
  app.action<BlockButtonAction>(
    PERSON_ACTIONS.open,
    async ({ ack, action, body, context, respond, client }) => {
      await ack();
      const { em, account } = roster(context);
      const actor = await slackActor(deps, context, body.user.id, { membersOnly: true });
      const card = await people.card(em, account, action.value ?? '');
      // From a message the card answers in place; from the App Home, which has no reply address, by DM,
      // which waits for Slack when Slack asks Roster to slow down.
      if (body.response_url) {
        await respond({ response_type: 'ephemeral', replace_original: false, ...personCard(card, actor) });
      } else {
        await nowOrLater(deps.jobs, client, {
          method: 'chat.postMessage',
          args: { channel: body.user.id, ...personCard(card, actor) },
        });
      }
    },
  );

  app.action<BlockButtonAction>(PERSON_ACTIONS.change, async ({ ack, action, body, context, client }) => {
    await ack();
    const { em, account } = roster(context);
    const { u, c, h } = readTarget(action.value);
    const actor = await slackActor(deps, context, body.user.id, { membersOnly: true });
    const card = await people.card(em, account, u);
    if (!actor.isAdmin && !['unlock', 'reactivate', 'role'].includes(c)) {
      throw new DomainError('not_admin', 'Only admins can change that.');
    }
    if (!actor.isAdmin && (c === 'unlock' || c === 'reactivate')) {
      // Asked of an admin only for a paid seat, and only of someone it fits: a button the card would not have
      // offered (a client, someone no longer locked or expired) is refused here, not after a form is filled.
      if (!isPaidRole(card.user.role)) {
        throw new DomainError(
          'not_admin',
          `Only admins can ${c} ${displayName(card.user)}: as a client they take no seat, so there is nothing to ask.`,
        );
      }
      const problem = await deps.people.problem(em, account, actor, u, c, undefined);
      if (problem) throw problem;
    }
    if (!actor.isAdmin && c === 'role') {
      // Only a client's paid role is asked of an admin, as the card offers: a forged button for anyone else,
      // or an ask already waiting, is refused here, not after a form is filled.
      const name = displayName(card.user);
      if (isPaidRole(card.user.role)) {
        throw new DomainError(
          'not_admin',
          `Only admins can change the role of ${name}: they already hold a paid role, so there is no seat to ask for.`,
        );
      }
      if (!SEAT_HOLDING_STATUSES.includes(card.user.status)) {
        throw new DomainError(
          'not_admin',
          `Only admins can change the role of ${name}, who is ${statusLabel(card.user.status)}.`,
        );
      }
      const problem = await deps.people.problem(em, account, actor, u, 'role_change', 'employee');
      if (problem) throw problem;
    }
    await client.views.open({
      trigger_id: body.trigger_id,
      view: changeModal(card.user, c, {
        fromHome: h === 1,
        isAdmin: actor.isAdmin,
        sets: grantable(await permissionSets(em, account), actor),
        company: card.contact?.company,
        notes: card.contact?.notes,
      }),
    });
  });

  app.action<BlockButtonAction>(
    PERSON_ACTIONS.deactivate,
    async ({ ack, action, body, context, client, respond }) => {
      await ack();
      const { em, account } = roster(context);
      const actor = await slackActor(deps, context, body.user.id, { membersOnly: true });
      const { user, wasActive, seatFreed, already } = await people.deactivate(
        em,
        account,
        actor,
        action.value ?? '',
      );
      if (wasActive && user.slackUserId) {
        // Told once Slack allows when it asks Roster to slow down: the deactivation is already made.
        await nowOrLater(deps.jobs, client, {
          method: 'chat.postMessage',
          args: {
            channel: user.slackUserId,
            text: 'An admin deactivated your access to your company’s account. Ask them if you think this is a mistake.',
          },
        }).catch((err) => roster(context).log.warn({ err }, 'could not tell a deactivated person'));
      }
      const card = personCard(await people.card(em, account, user.id), actor);
      const done = already
        ? `${esc(displayName(user))} was already deactivated; nothing changed.`
        : `:no_entry_sign: Deactivated ${esc(displayName(user))}${seatFreed ? ': their paid seat is free again' : ''}.`;
      const message = { text: done, blocks: [section(done), ...card.blocks] };
      // From a message the card is redrawn in place; from the App Home, which has no reply address, by DM
      // (late rather than lost when Slack asks Roster to slow down).
      if (body.response_url)
        await respond({ response_type: 'ephemeral', replace_original: true, ...message });
      else
        await nowOrLater(deps.jobs, client, {
          method: 'chat.postMessage',
          args: { channel: body.user.id, ...message },
        });
    },
  );
}
