/**
 * The longest value each detail of a person or contact takes, whichever way it comes in: the contact forms,
 * a person's Edit details form and a CSV import. They fit the database's columns and what Slack's text
 * input can show (3,000 characters), so a value Roster accepts always fits the form that edits it.
 */
export const FIELD_MAX = {
  name: 255,
  firstName: 255,
  lastName: 255,
  title: 255,
  company: 255,
  phone: 64,
  email: 254,
  notes: 3000,
} as const;

/**
 * Whether a stored value is too long for the form field that edits it (notes imported before the limits
 * agreed held up to 5,000 characters). Such a value is not put in the form, which never cuts it: the field
 * is left empty and says so, and submitted empty it keeps the stored value (see `keptOrNew`).
 */
export function tooLongToShow(stored: string | null | undefined, max: number): stored is string {
  return typeof stored === 'string' && stored.length > max;
}

/** What a form field saves: what was typed, or the stored value when the field could not show it and was left empty. */
export function keptOrNew(
  stored: string | null | undefined,
  submitted: string | null,
  max: number,
): string | null {
  return submitted === null && tooLongToShow(stored, max) ? stored : submitted;
}
