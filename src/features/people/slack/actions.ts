import type { App, BlockButtonAction, ViewSubmitAction } from '@slack/bolt';
import { z } from 'zod';
import { DomainError } from '../../../shared/errors.ts';
import { slackActor } from '../../../slack/actor.ts';
import { esc, section } from '../../../slack/blocks.ts';
import { roster } from '../../../slack/context.ts';
import { permissionSets } from '../../accounts/account.service.ts';
import type { Deps } from '../../feature.ts';
import { grantable } from '../grants.ts';
import { ROLE_LABEL } from '../labels.ts';
import type { ChangeResult } from '../people.changes.ts';
import type { PersonService } from '../person.service.ts';
import { displayName, MISSING_LOGIN_DOMAIN, ROLES, type Role } from '../user.entity.ts';
import { CHANGES, type Change, changeModal, PERSON_ACTIONS, PERSON_VIEW, personCard } from './blocks.ts';

const target = z.object({ u: z.uuid(), c: z.enum(CHANGES) });

function readTarget(value: string | undefined): { u: string; c: Change } {
  try {
    const parsed = target.safeParse(JSON.parse(value ?? ''));
    if (parsed.success) return parsed.data;
  } catch {}
  throw new DomainError('not_found', 'That person is no longer in Roster.');
}

/** The person card's buttons and the forms they open; every change is checked again by the services. */
export function registerPeopleActions(app: App, deps: Deps, people: PersonService): void {
  app.action<BlockButtonAction>(
    PERSON_ACTIONS.open,
    async ({ ack, action, body, context, respond, client }) => {
      await ack();
      const { em, account } = roster(context);
      const card = await people.card(em, account, action.value ?? '');
      const actor = await slackActor(deps, context, body.user.id);
      // From a message the card answers in place; from the App Home, which has no reply address, by DM.
      if (body.response_url) {
        await respond({ response_type: 'ephemeral', replace_original: false, ...personCard(card, actor) });
      } else {
        await client.chat.postMessage({ channel: body.user.id, ...personCard(card, actor) });
      }
    },
  );

  app.action<BlockButtonAction>(PERSON_ACTIONS.change, async ({ ack, action, body, context, client }) => {
    await ack();
    const { em, account } = roster(context);
    const { u, c } = readTarget(action.value);
    const actor = await slackActor(deps, context, body.user.id);
    const card = await people.card(em, account, u);
    if (!actor.isAdmin && !['unlock', 'reactivate', 'role'].includes(c)) {
      throw new DomainError('not_admin', 'Only admins can change that.');
    }
    await client.views.open({
      trigger_id: body.trigger_id,
      view: changeModal(card.user, c, {
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
      const actor = await slackActor(deps, context, body.user.id);
      const { user, wasActive, seatFreed, already } = await people.deactivate(
        em,
        account,
        actor,
        action.value ?? '',
      );
      if (wasActive && user.slackUserId) {
        await client.chat
          .postMessage({
            channel: user.slackUserId,
            text: 'An admin deactivated your access to your company’s account. Ask them if you think this is a mistake.',
          })
          .catch((err) => roster(context).log.warn({ err }, 'could not tell a deactivated person'));
      }
      const card = personCard(await people.card(em, account, user.id), actor);
      const done = already
        ? `${esc(displayName(user))} was already deactivated; nothing changed.`
        : `:no_entry_sign: Deactivated ${esc(displayName(user))}${seatFreed ? ': their paid seat is free again' : ''}.`;
      const message = { text: done, blocks: [section(done), ...card.blocks] };
      // From a message the card is redrawn in place; from the App Home, which has no reply address, by DM.
      if (body.response_url)
        await respond({ response_type: 'ephemeral', replace_original: true, ...message });
      else await client.chat.postMessage({ channel: body.user.id, ...message });
    },
  );

  app.view<ViewSubmitAction>(PERSON_VIEW, async ({ ack, view, body, context, client }) => {
    const { em, account } = roster(context);
    const { u, c } = readTarget(view.private_metadata);
    const values = view.state.values;
    const actor = await slackActor(deps, context, body.user.id);
    const sendInvitation = (values.send_now?.send_now?.selected_options ?? []).length > 0;
    const addSeat = actor.isAdmin && (values.add_seat?.add_seat?.selected_options ?? []).length > 0;
    let text: string;
    try {
      text = await apply(c);
    } catch (err) {
      if (!(err instanceof DomainError)) throw err;
      await ack({ response_action: 'errors', errors: fieldErrors(err, Object.keys(values)) });
      return;
    }
    await ack();
    await client.chat.postMessage({ channel: body.user.id, text });

    async function apply(change: Change): Promise<string> {
      switch (change) {
        case 'unlock':
        case 'reactivate': {
          const result = await deps.people[change](em, account, actor, u, { sendInvitation, addSeat });
          return outcome(
            result,
            (name) => `${change === 'unlock' ? 'Unlocked' : 'Reactivated'} ${name}`,
            sendInvitation,
          );
        }
        case 'role': {
          const role = values.role?.role?.selected_option?.value as Role;
          if (!(ROLES as readonly string[]).includes(role)) {
            throw new DomainError('invalid_input', 'Choose a role.', { field: 'role' });
          }
          const result = await deps.people.changeRole(em, account, actor, u, role, { addSeat });
          return outcome(result, (name) => `${name} is now ${ROLE_LABEL[role]}`, false);
        }
        case 'permission_set': {
          const setId = values.permission_set?.permission_set?.selected_option?.value ?? '';
          const { user, set, changed } = await people.changePermissionSet(em, account, actor, u, setId);
          return changed
            ? `:white_check_mark: ${esc(displayName(user))} now has the permission set *${esc(set.name)}*.`
            : `${esc(displayName(user))} already had the permission set *${esc(set.name)}*; nothing changed.`;
        }
        case 'details': {
          const field = (id: string) => values[id]?.[id]?.value ?? null;
          const { user, changed } = await people.editDetails(em, account, actor, u, {
            firstName: field('first_name'),
            lastName: field('last_name'),
            title: field('title'),
            phone: field('phone'),
            company: field('company'),
            notes: field('notes'),
          });
          return changed.length
            ? `:white_check_mark: Saved ${esc(displayName(user))}'s details (${changed.length} changed).`
            : `Nothing changed in ${esc(displayName(user))}'s details.`;
        }
        case 'email': {
          const { user, from, invitationCancelled } = await people.changeEmail(
            em,
            account,
            actor,
            u,
            values.email?.email?.value ?? '',
          );
          const was = from.endsWith(`@${MISSING_LOGIN_DOMAIN}`)
            ? 'they had none; they can now be unlocked'
            : `was ${esc(from)}`;
          return `:white_check_mark: ${esc(displayName(user))} now logs in with ${esc(user.email)} (${was}).${invitationCancelled ? ' The invitation sent to the old address was cancelled: send a new one with `/invite pending`.' : ''}`;
        }
      }
    }
  });
}

function outcome(result: ChangeResult, done: (name: string) => string, invited: boolean): string {
  if (result.status === 'requested') {
    return `:hourglass_flowing_sand: That takes a paid seat, so an admin has been asked to approve it for ${esc(result.request.email)}. You will get a message when they decide.`;
  }
  const name = esc(displayName(result.user));
  return `:white_check_mark: ${done(name)}${invited ? '; the invitation is on its way' : ''}${result.seatAdded ? '. One paid seat was added for it' : ''}.`;
}

/** A refusal shown on the form: on the field it names, else on the first field the form has. */
function fieldErrors(err: DomainError, blocks: string[]): Record<string, string> {
  const block = (field: string) => field.replace(/[A-Z]/g, (m) => `_${m.toLowerCase()}`);
  const named = Object.entries(err.fields ?? {})
    .map(([field, message]) => [block(field), message] as const)
    .filter(([id]) => blocks.includes(id));
  if (named.length) return Object.fromEntries(named);
  if (err.code === 'no_seat' && blocks.includes('add_seat')) {
    return { add_seat: `${err.message} Tick “Add a seat if none is free” to raise the limit by one.` };
  }
  return { [blocks[0] ?? 'role']: err.message };
}
