import { User } from '../../src/features/people/user.entity.ts';
import { eventually, startTestApp, type TestApp } from '../support/app.ts';
import { blockKitProblems } from '../support/block-kit.ts';
import { textOf } from '../support/views.ts';

const section = (text: string) => ({ type: 'section', text: { type: 'mrkdwn', text } });
const button = (text: string, action_id: string, value = 'v') => ({
  type: 'button',
  text: { type: 'plain_text', text },
  action_id,
  value,
});

describe("the Slack stand-in's Block Kit limits", () => {
  it('refuses what Slack refuses', () => {
    expect(blockKitProblems('message', { blocks: Array.from({ length: 51 }, () => section('x')) })).toEqual([
      '51 blocks, over 50 for a message',
    ]);
    expect(blockKitProblems('home', { blocks: Array.from({ length: 100 }, () => section('x')) })).toEqual([]);
    expect(blockKitProblems('message', { blocks: [section('x'.repeat(3001))] })[0]).toMatch(/over 3000/);
    expect(
      blockKitProblems('message', {
        blocks: [{ type: 'header', text: { type: 'plain_text', text: 'h'.repeat(151) } }],
      })[0],
    ).toMatch(/over 150/);
    expect(
      blockKitProblems('message', {
        blocks: [{ type: 'actions', elements: [button('a', 'same'), button('b', 'same')] }],
      })[0],
    ).toMatch(/repeats action_id/);
    expect(
      blockKitProblems('message', {
        blocks: [{ type: 'actions', elements: [button('b'.repeat(76), 'x')] }],
      })[0],
    ).toMatch(/over 75/);
    expect(
      blockKitProblems('modal', {
        type: 'modal',
        title: { type: 'plain_text', text: 'A title that is too long' + '!' },
        blocks: [],
      })[0],
    ).toMatch(/title/);
    expect(
      blockKitProblems('modal', {
        title: { type: 'plain_text', text: 'ok' },
        blocks: [
          {
            type: 'input',
            block_id: 'b',
            label: { type: 'plain_text', text: 'l' },
            element: {
              type: 'static_select',
              action_id: 's',
              options: Array.from({ length: 101 }, (_, i) => ({
                text: { type: 'plain_text', text: `o${i}` },
                value: `v${i}`,
              })),
            },
          },
        ],
      })[0],
    ).toMatch(/101 options/);
    expect(
      blockKitProblems('message', {
        blocks: [section('a'), { ...section('b'), block_id: 'x' }, { ...section('c'), block_id: 'x' }],
      })[0],
    ).toMatch(/not unique/);
    const confirm = (text: string, yes = 'Yes') => ({
      ...button('Go', 'go'),
      confirm: {
        title: { type: 'plain_text', text: 'Sure?' },
        text: { type: 'mrkdwn', text },
        confirm: { type: 'plain_text', text: yes },
        deny: { type: 'plain_text', text: 'No' },
      },
    });
    const confirmed = (e: object) =>
      blockKitProblems('message', { blocks: [{ type: 'actions', elements: [e] }] });
    expect(confirmed(confirm('t'.repeat(300)))).toEqual([]);
    expect(confirmed(confirm('t'.repeat(301)))[0]).toMatch(/confirm\.text is 301 characters, over 300/);
    expect(confirmed(confirm('ok', 'y'.repeat(31)))[0]).toMatch(/confirm\.confirm is 31 characters, over 30/);
  });
});

describe('long lists stay within the limits', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp({ seatLimit: 100 });
  });
  afterAll(() => t.stop());

  it('/invite pending with 60 people shows 24, says how many there are and offers Show more', async () => {
    const em = t.em();
    const account = await t.account();
    for (let i = 0; i < 60; i++) {
      em.create(User, {
        account,
        email: `p${i}@acme.test`,
        role: 'client',
        status: 'not_invited',
        addedBy: 'UADMIN',
      });
    }
    await em.flush();
    await t.slack.command('/invite', 'pending', { user: 'UADMIN' });
    const list = await t.standin.waitForResponse((r) =>
      textOf(r.body).includes('Invitations not yet accepted'),
    );
    expect(list.body.blocks.length).toBeLessThanOrEqual(50);
    expect(textOf(list.body)).toContain('(1–24 of 60)');
    expect(JSON.stringify(list.body.blocks)).toContain('"action_id":"invite_pending_more"');
    expect(t.standin.refusedBlocks).toEqual([]);
  });
});

describe('CSV previews stay within the limits', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp({ seatLimit: 10 });
  });
  afterAll(() => t.stop());

  it('shows a file with 1,000 unknown columns and errors full of <, & and > without going over', async () => {
    const unknown = Array.from({ length: 1000 }, (_, i) => `extra_<&>_${i}`);
    const header = ['type', 'first_name', 'last_name', 'email', ...unknown].join(',');
    const bad = Array.from(
      { length: 40 },
      (_, i) => `user,A,B,${'&'.repeat(150)}${i}@,${unknown.map(() => '').join(',')}`,
    );
    const file = t.standin.addFile({
      id: 'FWIDE0001',
      name: 'wide.csv',
      content: [header, ...bad].join('\n'),
    });
    await t.slack.fileShare('UADMIN', file);
    const preview = await eventually(
      () =>
        t.standin.messages.findLast((m) => m.channel === 'DUADMIN' && /Preview of wide\.csv/.test(textOf(m))),
      20_000,
    );
    expect(textOf(preview)).toContain('Ignored 1000 columns Roster does not know');
    expect(textOf(preview)).toContain('and 980 more');
    expect(textOf(preview)).toMatch(/…and \d+ more rows?: see the error file/);
    expect(t.standin.refusedBlocks).toEqual([]);
  });
});
