import type { z } from 'zod';
import { actions, type Block, button } from './blocks.ts';

/**
 * A Show more button whose value says where the next page starts. The value comes back from Slack as
 * anyone could have written it, so it may say only where to go on: what the clicker may see is decided
 * again on every page, never read from it.
 */
export function showMore(blockId: string, actionId: string, page: object): Block {
  return actions(blockId, button('Show more', actionId, JSON.stringify(page)));
}

/** A Show more button's value, or null for anything Roster did not write (a forged or mangled request). */
export function readPage<T>(schema: z.ZodType<T>, value: string | undefined): T | null {
  try {
    const parsed = schema.safeParse(JSON.parse(value ?? ''));
    return parsed.success ? parsed.data : null;
  } catch {
    return null;
  }
}
