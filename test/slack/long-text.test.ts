import { findResults } from '../../src/features/contacts/slack/blocks.ts';
import { previewMessage } from '../../src/features/csv-import/slack/blocks.ts';
import {
  batchDeliveryFailedMessage,
  deliveryFailedMessage,
  inviteSummary,
  withProgress,
} from '../../src/features/invites/slack/blocks.ts';
import { pendingList } from '../../src/features/invites/slack/pending.ts';
import { FIELD_MAX } from '../../src/features/people/field-limits.ts';
import { blockKitProblems } from '../support/block-kit.ts';

/**
 * Messages built from the longest values Roster takes, made of the characters mrkdwn escapes (`&` is five
 * once escaped): Slack refuses a message whole when one section passes 3,000 characters, so each must fit
 * as the stand-in checks it, or the person sees nothing.
 */

const amps = (n: number) => '&'.repeat(n);
/** The longest address Roster takes (254 characters). */
const EMAIL = `${'a'.repeat(64)}@${'b'.repeat(63)}.${'c'.repeat(63)}.${'d'.repeat(56)}.test`;
const ID = '00000000-0000-4000-8000-000000000001';

it(`uses an address of ${FIELD_MAX.email} characters`, () => {
  expect(EMAIL.length).toBe(FIELD_MAX.email);
});

describe('the longest names, companies and file names Roster takes', () => {
  it('fit /contact find: a converted contact with a long name and company', () => {
    const hits = [
      {
        kind: 'contact' as const,
        id: ID,
        name: amps(FIELD_MAX.name),
        email: EMAIL,
        company: amps(FIELD_MAX.company),
        convertedTo: { email: EMAIL, status: 'active' as const },
      },
    ];
    const results = findResults('&', hits, 0, false, { slackUserId: 'UADMIN', isAdmin: true });
    expect(blockKitProblems('message', results)).toEqual([]);
    expect(JSON.stringify(results)).toContain('&amp;&amp;');
  });

  it('fit /invite pending: a person whose invitation could not be delivered', () => {
    const user = {
      id: ID,
      firstName: amps(FIELD_MAX.firstName),
      lastName: amps(FIELD_MAX.lastName),
      email: EMAIL,
      role: 'employee',
      status: 'invited',
    };
    const invitation = {
      deliveredAt: null,
      deliveryAttempts: 100,
      lastError: '<>'.repeat(40),
      expiresAt: new Date(),
    };
    const page = pendingList(
      {
        rows: [{ user, invitation }] as unknown as Parameters<typeof pendingList>[0]['rows'],
        total: 1,
        more: false,
      },
      true,
      0,
    );
    expect(blockKitProblems('message', page)).toEqual([]);
  });

  it("fit the inviter's notice that an invitation could not be delivered, whatever the cause", () => {
    for (const how of ['retried', 'recipient', 'message', 'expired', 'domain'] as const) {
      const notice = deliveryFailedMessage(
        { id: ID, email: EMAIL, firstName: amps(FIELD_MAX.firstName), lastName: amps(FIELD_MAX.lastName) },
        `Email failed: ${'<>'.repeat(150)}`,
        how,
      );
      expect(blockKitProblems('message', notice)).toEqual([]);
      expect(notice.blocks[0]!.type).toBe('section');
      expect(JSON.stringify(notice.blocks)).toContain(EMAIL);
      expect(JSON.stringify(notice.blocks)).toContain('Resend');
    }
  });

  it('fit a summary of 100 refusals each as long as a reason gets (a long allowed domains list), with its progress line', () => {
    const reason = `email is outside the allowed email domains (${Array.from({ length: 36 }, (_, i) => `subsidiary-${i}.example.com`).join(', ')})`;
    const outcomes = Array.from({ length: 100 }, (_, i) => ({
      email: `p${i}@${'o'.repeat(200)}.test`,
      result: 'refused' as const,
      reason,
    }));
    const summary = inviteSummary(outcomes, 'client', { slackUserId: 'UADMIN', isAdmin: true });
    expect(blockKitProblems('message', summary)).toEqual([]);
    expect(blockKitProblems('message', withProgress(summary, 'Delivering: 0 of 100 sent so far.'))).toEqual(
      [],
    );
    // Every address is named.
    for (let i = 0; i < 100; i++) expect(JSON.stringify(summary.blocks)).toContain(`p${i}@`);
  });

  it("fit the importer's notice of a batch's invitations not delivered, long addresses and errors each way", () => {
    const amp = `${amps(64)}@${'b'.repeat(63)}.test`;
    const error = `Email failed: ${'&<>'.repeat(100)}`;
    const notice = batchDeliveryFailedMessage([
      ...Array.from({ length: 1000 }, () => ({ user: { email: amp }, error, how: 'recipient' as const })),
      ...Array.from({ length: 10 }, () => ({ user: { email: EMAIL }, error, how: 'message' as const })),
      { user: { email: EMAIL }, error, how: 'retried' as const },
      ...Array.from({ length: 1000 }, () => ({ user: { email: amp }, error, how: 'expired' as const })),
      ...Array.from({ length: 1000 }, () => ({ user: { email: amp }, error, how: 'domain' as const })),
    ]);
    expect(blockKitProblems('message', notice)).toEqual([]);
    expect(notice.text).toBe('3,011 invitations from your CSV import could not be delivered');
    expect(JSON.stringify(notice.blocks)).toContain('and 995 more');
    expect(JSON.stringify(notice.blocks)).toContain(
      '1,000 invitations whose link expired before Roster could deliver it',
    );
    expect(JSON.stringify(notice.blocks)).toContain('1,000 addresses outside the allowed email domains');
  });

  it('fit a CSV preview checked again after three imports of long file names', () => {
    const fileName = `${amps(251)}.csv`;
    const preview = previewMessage(
      {
        counts: {
          rows: 1,
          users: 1,
          contacts: 0,
          create: 1,
          update: 0,
          unchanged: 0,
          error: 0,
          seatsNeeded: 0,
          invitations: 0,
        },
        seats: { free: 1, used: 1, limit: 2 },
        csvImport: { id: ID, fileName, status: 'previewed', previewRevision: 1 },
        warnings: [],
        firstErrors: [],
      } as unknown as Parameters<typeof previewMessage>[0],
      { rechecked: { after: [fileName, fileName, fileName], running: false } },
    );
    expect(blockKitProblems('message', preview)).toEqual([]);
    expect(JSON.stringify(preview.blocks)).toContain('Import 1 row');
  });
});
