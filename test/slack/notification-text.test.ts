import { findResults } from '../../src/features/contacts/slack/blocks.ts';
import {
  previewMessage,
  progressMessage,
  stoppedMessage,
  summaryMessage,
} from '../../src/features/csv-import/slack/blocks.ts';
import { deliveryFailedMessage, invitationDm } from '../../src/features/invites/slack/blocks.ts';
import { personCard } from '../../src/features/people/slack/blocks.ts';

/**
 * A message's top-level `text` is what a notification and a screen reader show, and Slack reads it as mrkdwn
 * too: typed text there (a name, a file name, a search) must be escaped as in the blocks, or `<!channel>`
 * in a CSV file's name would notify the whole channel and `<https://evil.example|…>` would be a live link.
 */

const ID = '00000000-0000-4000-8000-000000000001';
const TYPED = '<!channel> Q&A <https://evil.example|Click here>';
const ESCAPED = '&lt;!channel&gt; Q&amp;A &lt;https://evil.example|Click here&gt;';

function expectEscaped(text: string) {
  expect(text).toContain(ESCAPED);
  expect(text).not.toMatch(/<[!@#h]/);
}

describe("a message's notification text", () => {
  it('escapes a CSV file name in the preview, progress, stop and summary', () => {
    const fileName = `${TYPED}.csv`;
    const counts = { rows: 1, users: 1, contacts: 0, create: 1, update: 0, unchanged: 0, error: 0 };
    const preview = previewMessage({
      counts: { ...counts, seatsNeeded: 0, invitations: 0 },
      seats: { free: 1, used: 1, limit: 2 },
      csvImport: { id: ID, fileName, status: 'previewed', previewRevision: 1 },
      warnings: [],
      firstErrors: [],
    } as unknown as Parameters<typeof previewMessage>[0]);
    expectEscaped(preview.text);
    expectEscaped(progressMessage(fileName, 1, 2, 1).text);
    expectEscaped(stoppedMessage(ID, fileName, 1, 2, 'ref').text);
    const summary = summaryMessage(
      {
        counts: { created: 1, updated: 0, kept: 0, failed: 0, noSeat: 0, invited: 0 },
        csvImport: { id: ID, fileName },
        firstErrors: [],
      } as unknown as Parameters<typeof summaryMessage>[0],
      1,
    );
    expectEscaped(summary.text);
  });

  it("escapes a person's name, on one line, in the notice that an invitation could not be delivered", () => {
    const notice = deliveryFailedMessage(
      { id: ID, email: 'ana@acme.test', firstName: `${TYPED}\n:white_check_mark: Approved`, lastName: null },
      'Mailbox full',
    );
    expectEscaped(notice.text);
    expect(notice.text).toContain(`${ESCAPED} :white_check_mark: Approved (ana@acme.test)`);
    expect(notice.blocks[0]).toMatchObject({ text: { text: expect.not.stringMatching(/\n:white_check/) } });
  });

  it("escapes the inviter's name and the account's in the invitation DM", () => {
    const dm = invitationDm(ID, {
      inviter: TYPED,
      accountName: TYPED,
      role: 'Employee',
      message: null,
      link: 'https://roster.example/invitations/x',
      expires: new Date(),
    });
    expectEscaped(dm.text);
  });

  it("escapes a person's name in their card", () => {
    const user = {
      id: ID,
      firstName: TYPED,
      lastName: null,
      email: 'ana@acme.test',
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
    expectEscaped(card.text);
  });

  it('escapes what was searched for in /contact find', () => {
    const viewer = { slackUserId: 'UADMIN', isAdmin: true };
    expectEscaped(findResults(TYPED, [], 0, false, viewer).text);
    const hit = {
      kind: 'contact' as const,
      id: ID,
      name: 'Ana',
      email: null,
      company: null,
      convertedTo: null,
    };
    expectEscaped(findResults(TYPED, [hit], 0, false, viewer).text);
  });
});
