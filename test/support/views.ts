/** What a person does in Slack: fill a modal's inputs, find a button, read what a message says. */

export type FieldValue = string | string[] | boolean | null | { files: unknown[] };

type Option = { text: { text: string }; value: string };

function findOption(options: Option[] | undefined, wanted: string, where: string): Option {
  const hit = options?.find((o) => o.value === wanted || o.text.text === wanted);
  if (!hit) {
    throw new Error(
      `${where}: no option "${wanted}"; options are ${options?.map((o) => o.value).join(', ') ?? 'none'}`,
    );
  }
  return hit;
}

function allOptions(element: any): Option[] {
  return element.options ?? element.option_groups?.flatMap((g: { options: Option[] }) => g.options) ?? [];
}

function stateValue(element: any, value: FieldValue | undefined, where: string): Record<string, unknown> {
  const type = element.type as string;
  const given = value !== undefined;
  switch (type) {
    case 'plain_text_input':
    case 'email_text_input':
    case 'url_text_input':
    case 'number_input':
      return { type, value: given ? (value as string | null) : (element.initial_value ?? null) };
    case 'static_select':
    case 'external_select':
    case 'radio_buttons':
      return {
        type,
        selected_option: given
          ? value === null
            ? null
            : findOption(allOptions(element), String(value), where)
          : (element.initial_option ?? null),
      };
    case 'multi_static_select':
      return {
        type,
        selected_options: given
          ? (value as string[]).map((v) => findOption(allOptions(element), v, where))
          : (element.initial_options ?? []),
      };
    case 'checkboxes': {
      let selected: Option[];
      if (!given) selected = element.initial_options ?? [];
      else if (typeof value === 'boolean') selected = value ? [element.options[0]] : [];
      else selected = ((value as string[] | null) ?? []).map((v) => findOption(element.options, v, where));
      return { type, selected_options: selected };
    }
    case 'users_select':
      return { type, selected_user: given ? value : (element.initial_user ?? null) };
    case 'multi_users_select':
      return { type, selected_users: given ? value : (element.initial_users ?? []) };
    case 'conversations_select':
      return {
        type,
        selected_conversation: given ? value : (element.initial_conversation ?? null),
      };
    case 'channels_select':
      return { type, selected_channel: given ? value : (element.initial_channel ?? null) };
    case 'datepicker':
      return { type, selected_date: given ? value : (element.initial_date ?? null) };
    case 'file_input':
      return { type, files: given ? (value as { files: unknown[] }).files : [] };
    default:
      throw new Error(`${where}: fillView does not know ${type} elements`);
  }
}

/** The view with `state.values` filled as Slack fills them; keys are action ids or block ids. */
export function fillView(view: any, values: Record<string, FieldValue>) {
  const used = new Set<string>();
  const state: Record<string, Record<string, unknown>> = {};
  for (const block of view.blocks ?? []) {
    if (block.type !== 'input') continue;
    const element = block.element;
    const key =
      element.action_id in values ? element.action_id : block.block_id in values ? block.block_id : null;
    if (key) used.add(key);
    state[block.block_id] = {
      [element.action_id]: stateValue(element, key ? values[key] : undefined, `input ${block.block_id}`),
    };
  }
  const unknown = Object.keys(values).filter((k) => !used.has(k));
  if (unknown.length) {
    const inputs = (view.blocks ?? [])
      .filter((b: any) => b.type === 'input')
      .map((b: any) => `${b.block_id}/${b.element.action_id}`);
    throw new Error(`fillView: no input for ${unknown.join(', ')}; inputs are ${inputs.join(', ')}`);
  }
  return { ...view, state: { values: state } };
}

export type ButtonMatch = string | { actionId?: string; text?: string; value?: string };

/** A button in blocks, by action id, label or value. */
export function findButton(blocks: any[], match: ButtonMatch): { action: any; blockId: string } {
  const m = typeof match === 'string' ? { text: match } : match;
  const found: { action: any; blockId: string }[] = [];
  for (const block of blocks ?? []) {
    const elements = block.type === 'actions' ? block.elements : block.accessory ? [block.accessory] : [];
    for (const el of elements) if (el.type === 'button') found.push({ action: el, blockId: block.block_id });
  }
  const hit = found.find(
    ({ action }) =>
      (m.actionId === undefined || action.action_id === m.actionId) &&
      (m.text === undefined || action.text?.text === m.text) &&
      (m.value === undefined || action.value === m.value),
  );
  if (!hit) {
    const list = found
      .map(({ action }) => `${action.text?.text} (${action.action_id}=${action.value})`)
      .join(', ');
    throw new Error(`no button matching ${JSON.stringify(m)}; buttons: ${list || 'none'}`);
  }
  return hit;
}

function textsOf(node: any): string[] {
  if (node == null) return [];
  if (typeof node === 'string') return [node];
  if (Array.isArray(node)) return node.flatMap(textsOf);
  if (typeof node !== 'object') return [];
  const out: string[] = [];
  if (typeof node.text === 'string') out.push(node.text);
  else if (node.text) out.push(...textsOf(node.text));
  for (const key of ['fields', 'elements', 'accessory', 'blocks', 'title', 'label', 'placeholder']) {
    if (node[key]) out.push(...textsOf(node[key]));
  }
  return out;
}

/** All visible text of a message, view or blocks, for assertions. */
export function textOf(target: any): string {
  if (!target) return '';
  if (Array.isArray(target)) return textsOf(target).join('\n');
  const parts = [...(typeof target.text === 'string' ? [target.text] : []), ...textsOf(target.blocks ?? [])];
  return parts.join('\n');
}
