import { createHash } from 'node:crypto';
import type { IPermissionSet } from '../features/accounts/account.entity.ts';
import { tooLongToShow } from '../features/people/field-limits.ts';
import type { Role } from '../features/people/user.entity.ts';
import { plain } from './blocks.ts';

/** Modal inputs several forms share: role, permission set, and whether to send the invitation now. */
const ROLE_OPTIONS = [
  { value: 'employee', text: 'Employee · paid seat' },
  { value: 'contractor', text: 'Contractor · paid seat' },
  { value: 'client', text: 'Client · free' },
].map((o) => ({ value: o.value, text: plain(o.text) }));

export function roleInput(label: string, initial: Role = 'employee') {
  return {
    type: 'input' as const,
    block_id: 'role',
    label: plain(label),
    element: {
      type: 'static_select' as const,
      action_id: 'role',
      options: ROLE_OPTIONS,
      initial_option: ROLE_OPTIONS.find((o) => o.value === initial),
    },
  };
}

/** `current`: the set the person has now, chosen to start with, so saving the form unchanged keeps it. */
export function permissionSetInput(sets: IPermissionSet[], role: Role = 'employee', current?: string | null) {
  const options = sets.map((s) => ({ value: s.id, text: plain(s.name) }));
  const initial =
    options.find((o) => current && o.value === current) ??
    options.find((o) => o.text.text === (role === 'client' ? 'Client' : 'Member')) ??
    options[0];
  return {
    type: 'input' as const,
    block_id: 'permission_set',
    label: plain('Permission set'),
    element: {
      type: 'static_select' as const,
      action_id: 'permission_set',
      options,
      ...(initial ? { initial_option: initial } : {}),
    },
  };
}

const SEND_NOW = { value: 'send_now', text: plain('Send invitation now') };

export function sendNowInput(hint?: string) {
  return {
    type: 'input' as const,
    block_id: 'send_now',
    optional: true,
    label: plain('Invitation'),
    ...(hint ? { hint: plain(hint) } : {}),
    element: {
      type: 'checkboxes' as const,
      action_id: 'send_now',
      options: [SEND_NOW],
      initial_options: [SEND_NOW],
    },
  };
}

/**
 * A text input for a stored value: filled with it when it fits `max`; otherwise left empty with a hint
 * saying the value is kept unless something new is typed, as a form must never cut what it cannot show.
 */
export function detailInput(
  id: string,
  label: string,
  value: string | null | undefined,
  max: number,
  opts: { multiline?: boolean; optional?: boolean } = {},
) {
  const hidden = tooLongToShow(value, max);
  return {
    type: 'input' as const,
    block_id: id,
    optional: opts.optional ?? true,
    label: plain(label),
    ...(hidden
      ? {
          hint: plain(
            `This field holds ${value.length.toLocaleString('en-US')} characters, more than this form can show (${max.toLocaleString('en-US')}). Left empty, it is kept as it is; anything you type here replaces it.`,
          ),
        }
      : {}),
    element: {
      type: 'plain_text_input' as const,
      action_id: id,
      max_length: max,
      multiline: opts.multiline ?? false,
      ...(value && !hidden ? { initial_value: value } : {}),
    },
  };
}

/**
 * A short fingerprint of what a text field of a form showed (nothing, for a value too long to show), kept in
 * the form's private_metadata: on submit, a field whose value still has it was not touched, and keeps what
 * the record holds by then rather than putting back what the form showed (someone else's change meanwhile).
 */
export function shownPrint(value: string | null | undefined, max: number): string {
  const shown = tooLongToShow(value, max) ? '' : (value ?? '').trim();
  return createHash('sha256').update(shown).digest('base64url').slice(0, 12);
}

/** The fields of a submitted form left as it showed them, by their fingerprints (see shownPrint). */
export function untouchedFields(
  prints: Record<string, string> | undefined,
  submitted: Record<string, string | null | undefined>,
): Set<string> {
  const untouched = new Set<string>();
  for (const [field, print] of Object.entries(prints ?? {})) {
    if (shownPrint(submitted[field] ?? '', Number.POSITIVE_INFINITY) === print) untouched.add(field);
  }
  return untouched;
}
