/**
 * Whether `text` has a character a reader can see: not only spaces of any width, control characters,
 * format marks (zero-width spaces and joiners, direction marks, a byte order mark), which JavaScript's
 * `trim()` leaves in place, characters Unicode says to draw as nothing (the Hangul fillers) and the blank
 * Braille pattern, or combining marks with no letter to sit on. A name made of those alone would show as a
 * blank to admins.
 */
export function showsSomething(text: string): boolean {
  return /[^\p{Z}\p{Cc}\p{Cf}\p{M}\p{Default_Ignorable_Code_Point}\u2800]/u.test(text);
}
