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

/** An option as Slack compares an initial option with the menu's: its text, value and description. */
function optionKey(o: Obj | undefined): string {
  return JSON.stringify([o?.text?.type, o?.text?.text, o?.value, o?.description?.text ?? null]);
}

/** Every problem Slack would name for these blocks (or this view), or none. */
export function blockKitProblems(surface: Surface, payload: Obj): string[] {
  const problems: string[] = [];
  const over = (what: string, value: string | undefined, max: number) => {
    if (value !== undefined && value.length > max)
      problems.push(`${what} is ${value.length} characters, over ${max}`);
  };
  /**
   * A text object: present, of a type the field takes (plain_text only where Slack says so), at least one
   * character (Slack refuses an empty text) and at most `max`.
   */
  const textObject = (what: string, o: Obj | undefined, max: number, plainOnly = false) => {
    if (!o || typeof o !== 'object') {
      problems.push(`${what} is missing`);
      return;
    }
    if (o.type !== 'plain_text' && (plainOnly || o.type !== 'mrkdwn'))
      problems.push(`${what} is of type ${o.type}, not ${plainOnly ? 'plain_text' : 'plain_text or mrkdwn'}`);
    if (text(o).length === 0) problems.push(`${what} is empty`);
    over(what, text(o), max);
  };
  if (surface === 'modal') {
    textObject('title', payload.title, 24, true);
    if (payload.submit) textObject('submit', payload.submit, 24, true);
    if (payload.close) textObject('close', payload.close, 24, true);
  }
  if (surface !== 'message') {
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
        if (block.text !== undefined) textObject(`${at}.text`, block.text, 3000);
        if (Array.isArray(block.fields)) {
          if (block.fields.length > 10) problems.push(`${at} has ${block.fields.length} fields, over 10`);
          block.fields.forEach((f: Obj, j: number) => {
            textObject(`${at}.fields[${j}]`, f, 2000);
          });
        }
        if (block.text === undefined && !block.fields?.length) problems.push(`${at} has no text`);
        if (block.accessory) element(`${at}.accessory`, block.accessory);
        break;
      case 'header':
        textObject(`${at}.text`, block.text, 150, true);
        break;
      case 'context':
        if ((block.elements ?? []).length === 0) problems.push(`${at} has no elements`);
        if ((block.elements ?? []).length > 10)
          problems.push(`${at} has ${block.elements.length} elements, over 10`);
        (block.elements ?? []).forEach((e: Obj, j: number) => {
          if (e.type === 'plain_text' || e.type === 'mrkdwn') textObject(`${at}.elements[${j}]`, e, 3000);
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
        textObject(`${at}.label`, block.label, 2000, true);
        if (block.hint) textObject(`${at}.hint`, block.hint, 2000, true);
        if (block.element) element(`${at}.element`, block.element);
        break;
    }
  });
  return problems;

  function element(at: string, e: Obj): void {
    if (e.action_id !== undefined) over(`${at}.action_id`, String(e.action_id), 255);
    if (e.placeholder) textObject(`${at}.placeholder`, e.placeholder, 150, true);
    if (e.confirm) confirm(`${at}.confirm`, e.confirm);
    switch (e.type) {
      case 'button':
        textObject(`${at}.text`, e.text, 75, true);
        if (e.value !== undefined) over(`${at}.value`, String(e.value), 2000);
        if (e.url !== undefined) over(`${at}.url`, String(e.url), 3000);
        break;
      case 'overflow': {
        const options: Obj[] = e.options ?? [];
        if (options.length < 2 || options.length > 5)
          problems.push(`${at} has ${options.length} options, not 2 to 5`);
        options.forEach((o, j) => {
          option(`${at}.options[${j}]`, o);
        });
        break;
      }
      case 'static_select':
      case 'multi_static_select':
      case 'checkboxes':
      case 'radio_buttons': {
        // Checkboxes and radio buttons show every option: Slack takes 10 of them; a menu takes 100.
        const max = e.type === 'checkboxes' || e.type === 'radio_buttons' ? 10 : 100;
        const groups: Obj[] | undefined = e.option_groups;
        if (groups !== undefined && groups.length > 100)
          problems.push(`${at} has ${groups.length} option groups, over 100`);
        groups?.forEach((g, j) => {
          textObject(`${at}.option_groups[${j}].label`, g.label, 75, true);
          if ((g.options ?? []).length > 100)
            problems.push(`${at}.option_groups[${j}] has ${g.options.length} options, over 100`);
        });
        const options: Obj[] = groups ? groups.flatMap((g) => g.options ?? []) : (e.options ?? []);
        if (!groups && options.length > max)
          problems.push(`${at} has ${options.length} options, over ${max}`);
        if (!groups && options.length === 0) problems.push(`${at} has no options`);
        options.forEach((o, j) => {
          option(`${at}.options[${j}]`, o, e.type === 'checkboxes' || e.type === 'radio_buttons');
        });
        // What a menu starts with must be one of its options, exactly as given there.
        const known = new Set(options.map(optionKey));
        const initial: Obj[] = [
          ...(e.initial_option ? [e.initial_option] : []),
          ...(Array.isArray(e.initial_options) ? e.initial_options : []),
        ];
        for (const o of initial) {
          if (!known.has(optionKey(o)))
            problems.push(`${at} starts with an option that is not among its options (${text(o.text)})`);
        }
        break;
      }
      case 'plain_text_input':
        if (typeof e.initial_value === 'string') over(`${at}.initial_value`, e.initial_value, 3000);
        if (e.max_length !== undefined && e.max_length > 3000) problems.push(`${at}.max_length over 3000`);
        // Slack refuses a field that starts with more than it lets anyone type there.
        if (typeof e.initial_value === 'string' && e.max_length !== undefined)
          over(`${at}.initial_value`, e.initial_value, e.max_length);
        break;
    }
  }

  /**
   * An option: text 75 characters (plain_text, except in checkboxes and radio buttons, which take mrkdwn
   * too), value 150, description 75, url 3000.
   */
  function option(at: string, o: Obj, mrkdwnToo = false): void {
    textObject(`${at}.text`, o.text, 75, !mrkdwnToo);
    if (o.value === undefined || String(o.value).length === 0) problems.push(`${at}.value is empty`);
    over(`${at}.value`, String(o.value ?? ''), 150);
    if (o.description) textObject(`${at}.description`, o.description, 75, !mrkdwnToo);
    if (o.url !== undefined) over(`${at}.url`, String(o.url), 3000);
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
