import type { App, ViewSubmitAction } from '@slack/bolt';
import type { View } from '@slack/types';
import { DomainError } from '../../../shared/errors.ts';
import { slackActor } from '../../../slack/actor.ts';
import { cut, esc, plain, section } from '../../../slack/blocks.ts';
import { roster } from '../../../slack/context.ts';
import {
  detailInput,
  permissionSetInput,
  roleInput,
  sendNowInput,
  shownPrint,
  untouchedFields,
} from '../../../slack/inputs.ts';
import { afterAck } from '../../../slack/notify.ts';
import { firstTime } from '../../../slack/once.ts';
import type { IPermissionSet } from '../../accounts/account.entity.ts';
import type { Deps } from '../../feature.ts';
import { publishHomeOrLater } from '../../home/slack/events.ts';
import { FIELD_MAX } from '../field-limits.ts';
import { ADMIN_SET_REFUSED, auditRefusedGrant } from '../grants.ts';
import { loginEmail, ROLE_LABEL } from '../labels.ts';
import type { ChangeResult } from '../people.changes.ts';
import { type PersonService, parseDetails } from '../person.service.ts';
import { refuseChangedSince, type Shown } from '../shown.ts';
import {
  displayName,
  type IUser,
  isPaidRole,
  isPlaceholderLogin,
  ROLES,
  type Role,
  User,
} from '../user.entity.ts';
import { type Change, PERSON_VIEW, REACTIVATED_FROM, type ReactivatedFrom, readTarget } from './blocks.ts';

/**
 * The form each change on the person card opens, and what submitting it does. What can be checked by reading
 * alone is checked before the ack, so the form shows it on its field; the change itself, which may wait for
 * the account's seats behind an import, is made after the ack and its outcome, or refusal, sent by DM.
 */
export function registerPeopleForms(app: App, deps: Deps, people: PersonService): void {
  app.view<ViewSubmitAction>(PERSON_VIEW, async ({ ack, view, body, context, client }) => {
    const { em, account } = roster(context);
    const { u, c, h, s, f, w } = readTarget(view.private_metadata);
    const values = view.state.values;
    const actor = await slackActor(deps, context, body.user.id, { membersOnly: true });
    const sendInvitation = (values.send_now?.send_now?.selected_options ?? []).length > 0;
    const addSeat = actor.isAdmin && (values.add_seat?.add_seat?.selected_options ?? []).length > 0;
    const role = values.role?.role?.selected_option?.value as Role;
    const setId = values.permission_set?.permission_set?.selected_option?.value ?? '';
    const field = (id: string) => values[id]?.[id]?.value ?? null;
    const details = {
      firstName: field('first_name'),
      lastName: field('last_name'),
      title: field('title'),
      phone: field('phone'),
      company: field('company'),
      notes: field('notes'),
    };
    const email = values.email?.email?.value ?? '';

    const problem = await check(c);
    if (problem) {
      await ack({ response_action: 'errors', errors: fieldErrors(problem, Object.keys(values)) });
      return;
    }
    await ack();
    // A retried submission (same view, same state) is applied once.
    if (!(await firstTime(em, `view:${view.id}:${view.hash}`))) return;
    // The form is closed by now: a refusal found under the locks (someone else took the last seat, changed
    // the person meanwhile) reaches the admin by DM.
    await afterAck(
      deps,
      client,
      body.user.id,
      () => apply(c),
      (m) => `:no_entry: ${m} Nothing was changed.`,
    );
    // Opened from the App Home: the tab is drawn again, so it shows the person as they are now (no longer
    // expired, or asked for), whether the change was made or refused.
    if (h === 1) {
      const { log } = roster(context);
      await publishHomeOrLater(deps, em.fork(), account, client, body.user.id, log).catch((err) =>
        log.warn({ err }, 'could not redraw the Home tab'),
      );
    }

    /** Reads only: no lock is taken, so the ack never waits behind a running import. */
    async function check(change: Change): Promise<DomainError | null> {
      // Permission sets, details and the login email are an admin's to change: anyone else is told so on the
      // form before anything of the person is looked at (an address clash would tell whose it is), and an
      // attempt at a set that makes its holder an admin is recorded, as on every other path.
      if (!actor.isAdmin && (change === 'permission_set' || change === 'details' || change === 'email')) {
        if (change === 'permission_set') {
          const set = await people.adminSetNamed(em, account, setId);
          if (set) {
            await auditRefusedGrant(em, account, actor, set, `person ${u}`);
            return new DomainError('not_admin', ADMIN_SET_REFUSED, { field: 'permission_set' });
          }
        }
        return new DomainError('not_admin', 'Only admins can change that. Nothing was changed.');
      }
      // A form left open while someone else changed the same thing: said on the form, before anything else.
      const stale = await changedSinceShown(change);
      if (stale) return stale;
      switch (change) {
        case 'unlock':
        case 'reactivate':
          return deps.people.problem(em, account, actor, u, change, undefined, { addSeat });
        case 'role':
          if (!(ROLES as readonly string[]).includes(role)) {
            return new DomainError('invalid_input', 'Choose a role.', { field: 'role' });
          }
          return deps.people.problem(em, account, actor, u, 'role_change', role, { addSeat });
        case 'permission_set':
          return setId
            ? people.permissionSetProblem(em, account, actor, u, setId)
            : new DomainError('invalid_input', 'Choose a permission set.', { field: 'permission_set' });
        case 'details':
          try {
            parseDetails(details);
            return null;
          } catch (err) {
            if (err instanceof DomainError) return err;
            throw err;
          }
        case 'email':
          return people.emailProblem(em, account, u, email);
      }
    }

    /** What the form showed of the value it changes, for the services to check again under their locks. */
    function shownOf(change: Change): Shown | undefined {
      if (w === undefined) return undefined;
      if (change === 'role' && w !== null) return { of: 'role', value: w };
      if (change === 'permission_set') return { of: 'permission_set', value: w };
      if (change === 'email' && w !== null) return { of: 'email', value: w };
      return undefined;
    }

    async function changedSinceShown(change: Change): Promise<DomainError | null> {
      const shown = shownOf(change);
      const user = shown ? await em.findOne(User, { id: u, account }) : null;
      if (!user) return null;
      try {
        refuseChangedSince(user, shown);
        return null;
      } catch (err) {
        if (err instanceof DomainError) return err;
        throw err;
      }
    }

    async function apply(change: Change): Promise<string> {
      switch (change) {
        case 'unlock':
        case 'reactivate': {
          // What the form was opened for ("Invite again" of an expired person, Reactivate of a deactivated
          // one) is checked against the person as they are under the lock: Slack or an admin may have
          // deactivated them since, and inviting them then would quietly undo that.
          const openedFor = change === 'reactivate' ? s : undefined;
          const result = await deps.people[change](em, account, actor, u, {
            sendInvitation,
            addSeat,
            openedFor,
          });
          return outcome(
            result,
            (name) => `${change === 'unlock' ? 'Unlocked' : 'Reactivated'} ${name}`,
            sendInvitation,
          );
        }
        case 'role': {
          const result = await deps.people.changeRole(em, account, actor, u, role, {
            addSeat,
            ...(w ? { shownRole: w } : {}),
          });
          return outcome(result, (name) => `${name} is now ${ROLE_LABEL[role]}`, false);
        }
        case 'permission_set': {
          const { user, set, changed } = await people.changePermissionSet(em, account, actor, u, setId, {
            ...(w !== undefined ? { shownSetId: w } : {}),
          });
          return changed
            ? `:white_check_mark: ${esc(displayName(user))} now has the permission set *${esc(set.name)}*.`
            : `${esc(displayName(user))} already had the permission set *${esc(set.name)}*; nothing changed.`;
        }
        case 'details': {
          // A field left as the form showed it keeps what the person holds now: another admin may have
          // changed it since the form opened.
          const untouched = untouchedFields(f, details);
          const { user, changed } = await people.editDetails(em, account, actor, u, details, { untouched });
          return changed.length
            ? `:white_check_mark: Saved ${esc(displayName(user))}'s details (${changed.length} changed).`
            : `Nothing changed in ${esc(displayName(user))}'s details.`;
        }
        case 'email': {
          const { user, from, invitationCancelled } = await people.changeEmail(em, account, actor, u, email, {
            ...(w ? { shownEmail: w } : {}),
          });
          const was = isPlaceholderLogin(from)
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
    return `:hourglass_flowing_sand: That takes a paid seat, so an admin has been asked to approve it for ${esc(loginEmail(result.request.email))}. You will get a message when they decide.`;
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

const SEND_INVITE_HINT = 'Unticked, they can be invited later with /invite pending.';
const ADD_SEAT = { value: 'add_seat', text: plain('Add a seat if none is free') };

/** The form for one change; `private_metadata` carries the person and the change. */
export function changeModal(
  user: IUser,
  change: Change,
  opts: {
    isAdmin: boolean;
    sets: IPermissionSet[];
    company?: string | null;
    notes?: string | null;
    fromHome?: boolean;
  },
): View {
  const name = displayName(user);
  const addSeat = opts.isAdmin
    ? [
        {
          type: 'input' as const,
          block_id: 'add_seat',
          optional: true,
          label: plain('Seats'),
          element: { type: 'checkboxes' as const, action_id: 'add_seat', options: [ADD_SEAT] },
        },
      ]
    : [];
  const intro = (text: string) => section(text);
  const shell = (title: string, submit: string, blocks: unknown[]): View => ({
    type: 'modal',
    callback_id: PERSON_VIEW,
    private_metadata: JSON.stringify({
      u: user.id,
      c: change,
      ...(opts.fromHome ? { h: 1 } : {}),
      ...(change === 'reactivate' && isReactivatedFrom(user.status) ? { s: user.status } : {}),
      ...(change === 'role' ? { w: user.role } : {}),
      ...(change === 'permission_set' ? { w: user.permissionSet?.id ?? null } : {}),
      ...(change === 'email' ? { w: shownPrint(user.email, Number.POSITIVE_INFINITY) } : {}),
      ...(change === 'details'
        ? {
            f: {
              firstName: shownPrint(user.firstName, FIELD_MAX.firstName),
              lastName: shownPrint(user.lastName, FIELD_MAX.lastName),
              title: shownPrint(user.title, FIELD_MAX.title),
              phone: shownPrint(user.phone, FIELD_MAX.phone),
              company: shownPrint(opts.company, FIELD_MAX.company),
              notes: shownPrint(opts.notes, FIELD_MAX.notes),
            },
          }
        : {}),
    }),
    title: plain(title),
    submit: plain(submit),
    close: plain('Cancel'),
    blocks: blocks as View['blocks'],
  });
  const who = `*${esc(cut(name, 200))}* (${esc(loginEmail(user.email))})`;
  switch (change) {
    case 'unlock':
      return shell(opts.isAdmin ? 'Unlock' : 'Ask to unlock', opts.isAdmin ? 'Unlock' : 'Ask', [
        intro(
          `${who} was imported and cannot log in yet. Unlocking ${isPaidRole(user.role) ? 'takes a paid seat' : 'takes no seat (a client)'}.`,
        ),
        sendNowInput(SEND_INVITE_HINT),
        ...addSeat,
      ]);
    case 'reactivate':
      return shell(opts.isAdmin ? 'Reactivate' : 'Ask to reactivate', opts.isAdmin ? 'Reactivate' : 'Ask', [
        intro(
          `${who} ${user.status === 'expired' ? 'did not accept the invitation in time' : 'is deactivated'}. Reactivating ${isPaidRole(user.role) ? 'takes a paid seat' : 'takes no seat (a client)'}.`,
        ),
        sendNowInput(SEND_INVITE_HINT),
        ...addSeat,
      ]);
    case 'role':
      return shell('Change role', opts.isAdmin ? 'Change' : 'Ask', [
        intro(`${who} is ${ROLE_LABEL[user.role]}. A paid role takes a seat; a client frees it.`),
        roleInput('New role', user.role),
        ...addSeat,
      ]);
    case 'permission_set':
      return shell('Permission set', 'Change', [
        intro(who),
        permissionSetInput(opts.sets, user.role, user.permissionSet?.id),
      ]);
    case 'details':
      return shell('Edit details', 'Save', [
        detailInput('first_name', 'First name', user.firstName, FIELD_MAX.firstName),
        detailInput('last_name', 'Last name', user.lastName, FIELD_MAX.lastName),
        detailInput('title', 'Title', user.title, FIELD_MAX.title),
        detailInput('phone', 'Phone', user.phone, FIELD_MAX.phone),
        detailInput('company', 'Company', opts.company ?? null, FIELD_MAX.company),
        detailInput('notes', 'Notes', opts.notes ?? null, FIELD_MAX.notes, { multiline: true }),
      ]);
    case 'email':
      return shell('Change login email', 'Change', [
        intro(
          isPlaceholderLogin(user.email)
            ? `${who} was imported without an email. The address you enter becomes their login, and then they can be unlocked.`
            : `${who} logs in with this address. A pending invitation went to the old one, so it is cancelled; send a new one afterwards.`,
        ),
        detailInput(
          'email',
          'New login email',
          isPlaceholderLogin(user.email) ? null : user.email,
          FIELD_MAX.email,
          { optional: false },
        ),
      ]);
  }
}

function isReactivatedFrom(status: string): status is ReactivatedFrom {
  return (REACTIVATED_FROM as readonly string[]).includes(status);
}
