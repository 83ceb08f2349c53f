/** Small Block Kit builders, so messages read as what they say. */
import type { KnownBlock } from '@slack/types';

export type Block = KnownBlock;

export const mrkdwn = (text: string) => ({ type: 'mrkdwn' as const, text });
export const plain = (text: string) => ({ type: 'plain_text' as const, text, emoji: true });

export const section = (text: string): Block => ({ type: 'section', text: mrkdwn(text) });
export const context = (...texts: string[]): Block => ({ type: 'context', elements: texts.map(mrkdwn) });
/**
 * Text that someone outside the workspace typed (a name on the public join form), for a plain_text object:
 * never formatted, and with a zero-width joiner after the characters Slack could still read as markup,
 * a link or a mention (* _ ~ ` > < | @, and a dot or colon inside a word, as in a URL or domain), so no
 * client shows it as bold text or a live link whatever it does with plain text.
 */
export function inert(text: string): string {
  return text.replace(/[*_~`><|@]|[.:](?=\S)/g, (c) => `${c}\u200d`);
}
/** A plain_text object with {@link inert} text and emoji codes left as typed. */
export const inertText = (text: string) => ({ type: 'plain_text' as const, text: inert(text), emoji: false });

export const divider = (): Block => ({ type: 'divider' });
export const header = (text: string): Block => ({ type: 'header', text: plain(text) });

export type ButtonStyle = 'primary' | 'danger';

export const button = (text: string, actionId: string, value: string, style?: ButtonStyle) => ({
  type: 'button' as const,
  text: plain(text),
  action_id: actionId,
  value,
  ...(style ? { style } : {}),
});

export const actions = (blockId: string, ...elements: ReturnType<typeof button>[]): Block => ({
  type: 'actions',
  block_id: blockId,
  elements,
});

/** Slack's date formatting: shown in each reader's own time zone, with a plain fallback. */
export function slackDate(date: Date, format = '{date_short_pretty} at {time}'): string {
  const seconds = Math.floor(date.getTime() / 1000);
  return `<!date^${seconds}^${format}|${date.toISOString().replace('T', ' ').slice(0, 16)} UTC>`;
}

/**
 * `raw` escaped for mrkdwn and at most `max` characters long as Slack counts them, after escaping (an
 * `&` becomes five characters): cut with "…" when it would not fit, never in the middle of an escape.
 */
export function escFit(raw: string, max: number): string {
  const whole = esc(raw);
  if (whole.length <= max) return whole;
  let keep = Math.min(raw.length, max - 1);
  while (keep > 0 && esc(raw.slice(0, keep)).length > max - 1) keep = Math.floor(keep * 0.9);
  // Not between the two halves of an emoji, which would leave half a character.
  return `${esc(raw.slice(0, keep).replace(/[\uD800-\uDBFF]$/, ''))}…`;
}

/**
 * `text` (mrkdwn, already escaped) in at most `max` characters, ending in "…" when cut: never between the
 * two halves of an emoji (half a character, which Slack cannot show), nor inside an escape (`&amp;`) or a
 * mention or date (`<…>`) of mrkdwn, which would show as typed.
 */
export function cut(text: string, max: number): string {
  if (text.length <= max) return text;
  const head = text
    .slice(0, max - 1)
    .replace(/[\uD800-\uDBFF]$/, '')
    .replace(/&[a-z]*$/, '')
    .replace(/<[^>]*$/, '');
  return `${head}…`;
}

/**
 * The start of `text` in at most `max` characters as Slack counts them (UTF-16 units), without an
 * ellipsis: for a form's starting value, where "…" would be saved as typed. Never half an emoji.
 */
export function clip(text: string, max: number): string {
  return text.length <= max ? text : text.slice(0, max).replace(/[\uD800-\uDBFF]$/, '');
}

/** Text safe inside mrkdwn: Slack's three control characters escaped. */
export function esc(text: string | null | undefined): string {
  return (text ?? '').replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}
