/**
 * Slack's documented Block Kit limits, as the real Slack enforces them: a message, modal or Home tab over
 * any of them is refused with `invalid_blocks` and the person sees nothing. The stand-in checks every
 * surface Roster posts to with this, so a test passes only with what Slack would take.
 */
type Obj = Record<string, any>;

export type Surface = 'message' | 'modal' | 'home';

const MAX_BLOCKS: Record<Surface, number> = { message: 50, modal: 100, home: 100 };

function text(o: Obj | undefined): string {
  return typeof o?.text === 'string' ? o.text : '';
}

/** Every problem Slack would name for these blocks (or this view), or none. */
export function blockKitProblems(surface: Surface, payload: Obj): string[] {
  const problems: string[] = [];
  const over = (what: string, value: string | undefined, max: number) => {
    if (value !== undefined && value.length > max)
      problems.push(`${what} is ${value.length} characters, over ${max}`);
  };
  if (surface !== 'message') {
    over('title', text(payload.title), 24);
    if (payload.submit) over('submit', text(payload.submit), 24);
    if (payload.close) over('close', text(payload.close), 24);
    if (typeof payload.private_metadata === 'string')
      over('private_metadata', payload.private_metadata, 3000);
    if (typeof payload.callback_id === 'string') over('callback_id', payload.callback_id, 255);
  }
  const blocks: Obj[] = Array.isArray(payload.blocks) ? payload.blocks : [];
  if (blocks.length > MAX_BLOCKS[surface]) {
    problems.push(`${blocks.length} blocks, over ${MAX_BLOCKS[surface]} for a ${surface}`);
  }
  const blockIds = new Set<string>();
  blocks.forEach((block, i) => {
    const at = `blocks[${i}] (${block.type})`;
    if (block.block_id !== undefined) {
      over(`${at}.block_id`, String(block.block_id), 255);
      if (blockIds.has(block.block_id)) problems.push(`${at}.block_id "${block.block_id}" is not unique`);
      blockIds.add(block.block_id);
    }
    switch (block.type) {
      case 'section':
        over(`${at}.text`, text(block.text), 3000);
        if (Array.isArray(block.fields)) {
          if (block.fields.length > 10) problems.push(`${at} has ${block.fields.length} fields, over 10`);
          block.fields.forEach((f: Obj, j: number) => {
            over(`${at}.fields[${j}]`, text(f), 2000);
          });
        }
        if (!text(block.text) && !block.fields?.length) problems.push(`${at} has no text`);
        if (block.accessory) element(`${at}.accessory`, block.accessory);
        break;
      case 'header':
        over(`${at}.text`, text(block.text), 150);
        break;
      case 'context':
        if ((block.elements ?? []).length > 10)
          problems.push(`${at} has ${block.elements.length} elements, over 10`);
        (block.elements ?? []).forEach((e: Obj, j: number) => {
          over(`${at}.elements[${j}]`, text(e), 3000);
        });
        break;
      case 'actions': {
        const elements: Obj[] = block.elements ?? [];
        if (elements.length > 25) problems.push(`${at} has ${elements.length} elements, over 25`);
        const actionIds = new Set<string>();
        elements.forEach((e, j) => {
          if (e.action_id && actionIds.has(e.action_id))
            problems.push(`${at} repeats action_id "${e.action_id}"`);
          actionIds.add(e.action_id);
          element(`${at}.elements[${j}]`, e);
        });
        break;
      }
      case 'input':
        over(`${at}.label`, text(block.label), 2000);
        if (block.hint) over(`${at}.hint`, text(block.hint), 2000);
        if (block.element) element(`${at}.element`, block.element);
        break;
    }
  });
  return problems;

  function element(at: string, e: Obj): void {
    if (e.action_id !== undefined) over(`${at}.action_id`, String(e.action_id), 255);
    if (e.placeholder) over(`${at}.placeholder`, text(e.placeholder), 150);
    if (e.confirm) confirm(`${at}.confirm`, e.confirm);
    switch (e.type) {
      case 'button':
        over(`${at}.text`, text(e.text), 75);
        if (e.value !== undefined) over(`${at}.value`, String(e.value), 2000);
        if (e.url !== undefined) over(`${at}.url`, String(e.url), 3000);
        break;
      case 'static_select':
      case 'multi_static_select':
      case 'checkboxes':
      case 'radio_buttons': {
        const options: Obj[] = e.options ?? [];
        if (options.length > 100) problems.push(`${at} has ${options.length} options, over 100`);
        options.forEach((o, j) => {
          over(`${at}.options[${j}].text`, text(o.text), 75);
          over(`${at}.options[${j}].value`, String(o.value ?? ''), 150);
        });
        break;
      }
      case 'plain_text_input':
        if (typeof e.initial_value === 'string') over(`${at}.initial_value`, e.initial_value, 3000);
        if (e.max_length !== undefined && e.max_length > 3000) problems.push(`${at}.max_length over 3000`);
        break;
    }
  }

  /** A confirmation dialog: title 100, text 300, its two buttons 30 characters each. */
  function confirm(at: string, c: Obj): void {
    for (const field of ['title', 'text', 'confirm', 'deny'] as const) {
      if (!c[field]) problems.push(`${at} has no ${field}`);
    }
    over(`${at}.title`, text(c.title), 100);
    over(`${at}.text`, text(c.text), 300);
    over(`${at}.confirm`, text(c.confirm), 30);
    over(`${at}.deny`, text(c.deny), 30);
  }
}
