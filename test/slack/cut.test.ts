import { tokensModal } from '../../src/features/api/slack/views.ts';
import { contactModal } from '../../src/features/contacts/slack/views.ts';
import { personCard } from '../../src/features/people/slack/blocks.ts';
import type { ReconcileReport } from '../../src/features/scim/scim.reconcile.ts';
import { reportMessage } from '../../src/features/scim/slack/blocks.ts';
import { clip, cut } from '../../src/slack/blocks.ts';
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

describe('text cut for a form or a dialog', () => {
  it('keeps whole emoji when clipped', () => {
    for (let max = 0; max < 12; max++) {
      const clipped = clip('🌸'.repeat(5), max);
      expect(clipped.length).toBeLessThanOrEqual(max);
      expect(clipped).not.toMatch(LONE_SURROGATE);
      expect(clipped).toBe('🌸'.repeat(Math.floor(max / 2)));
    }
  });

  it('starts the Add contact form with whole emoji when a suggested name is longer than the field', () => {
    // 255 characters is 127 emoji and a half: the field takes the 127.
    const form = contactModal({ name: '🌸'.repeat(200) });
    expect(blockKitProblems('modal', form)).toEqual([]);
    const name = (form.blocks[0] as any).element.initial_value as string;
    expect(name).toBe('🌸'.repeat(127));
  });

  it("names a long token of emoji whole in Revoke's confirmation", () => {
    const token = {
      id: '00000000-0000-4000-8000-000000000002',
      name: `x${'🔑'.repeat(150)}`,
      hint: 'rst_abcd',
      managed: false,
      createdBy: 'UADMIN',
      createdAt: new Date(),
      lastUsedAt: null,
      expiresAt: null,
    } as unknown as Parameters<typeof tokensModal>[0][number];
    const modal = tokensModal([token], 'https://roster.example');
    expect(blockKitProblems('modal', modal)).toEqual([]);
    const confirm = JSON.stringify(
      (modal.blocks as any[]).find((b) => b.accessory?.confirm).accessory.confirm,
    );
    expect(JSON.parse(confirm).text.text).not.toMatch(LONE_SURROGATE);
    expect(JSON.parse(confirm).text.text).toContain(`x${'🔑'.repeat(99)}”`);
  });
});

describe('the report of a SCIM Sync now, cut to fit a section', () => {
  it('never ends inside an escape, whatever the length before it', () => {
    const none = { count: 0, names: [] };
    for (let pad = 1; pad <= 5; pad++) {
      const report: ReconcileReport = {
        users: 1,
        remoteUsers: 1,
        created: none,
        linked: none,
        updated: none,
        deactivated: none,
        reactivated: none,
        unchanged: 0,
        // Errors the service answered, full of `&` (five characters once escaped): far over 3,000 together.
        failed: { count: 20, names: [], errors: Array.from({ length: 20 }, () => '&'.repeat(60)) },
        skipped: 0,
        busy: 0,
        unknown: none,
      };
      const message = reportMessage(`https://${'s'.repeat(pad)}.example/scim/v2`, report);
      expect(blockKitProblems('message', message)).toEqual([]);
      const section = (message.blocks[0] as any).text.text as string;
      expect(section).toMatch(/…$/);
      expect(section).not.toMatch(/&[a-z]*…$/);
      expect(message.text).not.toMatch(/&[a-z]*…?$/);
    }
  });
});
