import { DomainError } from '../../shared/errors.ts';
import { shownPrint } from '../../slack/inputs.ts';
import { loginEmail, ROLE_LABEL } from './labels.ts';
import { displayName, type IUser } from './user.entity.ts';

/** What a change form showed of the value it changes, so a form left open never undoes a newer change. */
export type Shown =
  | { of: 'role'; value: string }
  | { of: 'permission_set'; value: string | null }
  /** The email by its fingerprint (see shownPrint): a form's metadata never carries the address itself. */
  | { of: 'email'; value: string };

const FIELD = { role: 'role', permission_set: 'permission_set', email: 'email' } as const;
const WHAT = { role: 'role', permission_set: 'permission set', email: 'login email' } as const;

/**
 * Refuses, on the form's field, a change whose form showed something else than the person holds now:
 * another admin (or an import, a join) changed it since the form opened, and submitting the old form
 * would quietly undo that, or take a seat nobody meant to.
 */
export function refuseChangedSince(user: IUser, shown: Shown | undefined): void {
  if (!shown) return;
  const current =
    shown.of === 'role'
      ? user.role
      : shown.of === 'email'
        ? shownPrint(user.email, Number.POSITIVE_INFINITY)
        : (user.permissionSet?.id ?? null);
  if (current === shown.value) return;
  const now =
    shown.of === 'role'
      ? ` (it is ${ROLE_LABEL[user.role]} now)`
      : shown.of === 'email'
        ? ` (it is ${loginEmail(user.email)} now)`
        : '';
  throw new DomainError(
    'conflict',
    `${displayName(user)}'s ${WHAT[shown.of]} was changed after this form was opened${now}, so nothing was changed. Open their card again to see them as they are.`,
    { field: FIELD[shown.of] },
  );
}
