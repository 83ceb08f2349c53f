import { cut, personCard } from '../../src/features/people/slack/blocks.ts';
import { blockKitProblems } from '../support/block-kit.ts';

/** Half of an emoji (a UTF-16 surrogate without its pair): Slack cannot show it. */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

describe('cutting text to fit', () => {
  it('never leaves half an emoji, half an escape or half a mention', () => {
    for (let max = 3; max < 40; max++) {
      for (const text of [
        '🌸'.repeat(30),
        `${'x'.repeat(max - 3)}&amp; and more`,
        `by <@U0123ABCD> ${'y'.repeat(40)}`,
      ]) {
        const fitted = cut(text, max);
        expect(fitted.length).toBeLessThanOrEqual(max);
        expect(fitted).not.toMatch(LONE_SURROGATE);
        expect(fitted).not.toMatch(/&[a-z]*…$/);
        expect(fitted).not.toMatch(/<[^>]*…$/);
      }
    }
  });

  it("shows a person card's header whole emoji only, for a name of 80 emoji", () => {
    const user = {
      id: '00000000-0000-4000-8000-000000000001',
      firstName: '🌸'.repeat(80),
      lastName: null,
      email: 'blossom@acme.test',
      role: 'employee',
      status: 'active',
      addedBy: 'UADMIN',
      createdAt: new Date(),
      loginMissing: false,
    };
    const card = personCard(
      {
        user,
        permissionSet: null,
        contact: null,
        invitation: null,
        history: [],
        scim: null,
      } as unknown as Parameters<typeof personCard>[0],
      { isAdmin: true },
    );
    expect(blockKitProblems('message', card)).toEqual([]);
    const header = card.blocks[0] as { type: string; text: { text: string } };
    expect(header.type).toBe('header');
    expect(header.text.text).toMatch(/^(🌸)+…$/);
  });
});
