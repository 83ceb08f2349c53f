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
    const field = (initial_value: string) => ({
      type: 'modal',
      title: { type: 'plain_text', text: 'Form' },
      blocks: [
        {
          type: 'input',
          block_id: 'f',
          label: { type: 'plain_text', text: 'Field' },
          element: { type: 'plain_text_input', action_id: 'f', max_length: 10, initial_value },
        },
      ],
    });
    expect(blockKitProblems('modal', field('x'.repeat(10)))).toEqual([]);
    expect(blockKitProblems('modal', field('x'.repeat(11)))).toEqual([
      'blocks[0] (input).element.initial_value is 11 characters, over 10',
    ]);
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

describe("the stand-in's checks of options, text objects and initial values", () => {
  const option = (text: string, value = text) => ({ text: { type: 'plain_text', text }, value });
  const input = (element: object) => ({
    type: 'input',
    block_id: 'b',
    label: { type: 'plain_text', text: 'Label' },
    element: { action_id: 'a', ...element },
  });
  const modal = (...blocks: object[]) => ({ title: { type: 'plain_text', text: 'ok' }, blocks });

  it('refuses a menu starting with an option it does not list, and takes one it lists', () => {
    const options = [option('Employee', 'employee'), option('Client', 'client')];
    expect(
      blockKitProblems(
        'modal',
        modal(input({ type: 'static_select', options, initial_option: option('Employee', 'employee') })),
      ),
    ).toEqual([]);
    expect(
      blockKitProblems(
        'modal',
        modal(input({ type: 'static_select', options, initial_option: option('Admin', 'admin') })),
      )[0],
    ).toMatch(/starts with an option that is not among its options/);
    expect(
      blockKitProblems(
        'modal',
        modal(input({ type: 'checkboxes', options, initial_options: [option('Employee', 'client')] })),
      )[0],
    ).toMatch(/not among its options/);
  });

  it('refuses an option over 75 characters, a value over 150, and checkboxes over 10', () => {
    expect(
      blockKitProblems(
        'modal',
        modal(input({ type: 'static_select', options: [option('o'.repeat(76), 'v')] })),
      )[0],
    ).toMatch(/options\[0\]\.text is 76 characters, over 75/);
    expect(
      blockKitProblems(
        'modal',
        modal(input({ type: 'static_select', options: [option('o', 'v'.repeat(151))] })),
      )[0],
    ).toMatch(/options\[0\]\.value is 151 characters, over 150/);
    const eleven = Array.from({ length: 11 }, (_, i) => option(`o${i}`));
    expect(blockKitProblems('modal', modal(input({ type: 'checkboxes', options: eleven })))[0]).toMatch(
      /11 options, over 10/,
    );
    expect(blockKitProblems('modal', modal(input({ type: 'static_select', options: eleven })))).toEqual([]);
  });

  it('refuses an overflow menu of other than 2 to 5 options', () => {
    const overflow = (n: number) => ({
      blocks: [
        {
          type: 'actions',
          elements: [
            {
              type: 'overflow',
              action_id: 'o',
              options: Array.from({ length: n }, (_, i) => option(`o${i}`)),
            },
          ],
        },
      ],
    });
    expect(blockKitProblems('message', overflow(5))).toEqual([]);
    expect(blockKitProblems('message', overflow(6))[0]).toMatch(/6 options, not 2 to 5/);
    expect(blockKitProblems('message', overflow(1))[0]).toMatch(/1 options, not 2 to 5/);
  });

  it('refuses an empty text, and mrkdwn where Slack takes plain_text only', () => {
    expect(blockKitProblems('message', { blocks: [section('')] })[0]).toMatch(/text is empty/);
    expect(
      blockKitProblems('message', { blocks: [{ type: 'actions', elements: [button('', 'x')] }] })[0],
    ).toMatch(/text is empty/);
    expect(
      blockKitProblems('message', {
        blocks: [{ type: 'header', text: { type: 'mrkdwn', text: '*Roster*' } }],
      })[0],
    ).toMatch(/not plain_text/);
    expect(blockKitProblems('modal', { title: { type: 'plain_text', text: '' }, blocks: [] })[0]).toMatch(
      /title is empty/,
    );
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
