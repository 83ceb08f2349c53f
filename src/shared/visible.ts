/**
 * Whether `text` has a character a reader can see: not only spaces of any width, control characters and
 * format marks (zero-width spaces and joiners, direction marks, a byte order mark), which JavaScript's
 * `trim()` leaves in place. A name made of those alone would show as a blank to admins.
 */
export function showsSomething(text: string): boolean {
  return /[^\p{Z}\p{Cc}\p{Cf}]/u.test(text);
}
