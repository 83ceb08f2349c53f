/** What a person does in Slack: fill a modal's inputs, find a button, read what a message says. */
import type { SlackObject } from './slack-standin.ts';

/**
 * What a person enters in one input: text (or a number) for text inputs; an option's value (or its label) for
 * selects and radio buttons, several for multi-selects and checkboxes (or `true`/`false` for a single
 * checkbox); user, conversation or channel ids; `YYYY-MM-DD` for a date picker, `HH:mm` for a time picker,
 * Unix seconds for a date-time picker; `{ files }` for a file input; `null` to leave it empty.
 */
export type FieldValue = string | number | string[] | boolean | null | { files: SlackObject[] };

type Option = { text: { type?: string; text: string }; value: string };

/** Where a value went wrong, for error messages. */
type Where = string;

function fail(where: Where, message: string): never {
  throw new Error(`fillView: ${where}: ${message}`);
}

function optionsOf(element: SlackObject): Option[] {
  if (Array.isArray(element.options)) return element.options;
  if (Array.isArray(element.option_groups)) {
    return element.option_groups.flatMap((g: { options?: Option[] }) => g.options ?? []);
  }
  return [];
}

function findOption(element: SlackObject, wanted: string, where: Where): Option {
  const options = optionsOf(element);
  const hit = options.find((o) => o.value === wanted) ?? options.find((o) => o.text.text === wanted);
  if (hit) return hit;
  // External selects load their options from the app while the person types: any value can be chosen.
  if (element.type === 'external_select' || element.type === 'multi_external_select') {
    return { text: { type: 'plain_text', text: wanted }, value: wanted };
  }
  return fail(
    where,
    `no option "${wanted}"; options are ${options.map((o) => `"${o.value}" (${o.text.text})`).join(', ') || 'none'}`,
  );
}

function asString(value: FieldValue, where: Where): string | null {
  if (value === null) return null;
  if (typeof value === 'string') return value;
  if (typeof value === 'number') return String(value);
  return fail(where, `expects a single value, got ${JSON.stringify(value)}`);
}

function asList(value: FieldValue, where: Where): string[] {
  if (value === null) return [];
  if (typeof value === 'string') return [value];
  if (Array.isArray(value)) return value;
  return fail(where, `expects a list of values, got ${JSON.stringify(value)}`);
}

/** The state Slack reports for one element, given what the person entered (or did not: `undefined`). */
function stateValue(element: SlackObject, value: FieldValue | undefined, where: Where): SlackObject {
  const type = String(element.type);
  const given = value !== undefined;
  switch (type) {
    case 'plain_text_input':
    case 'email_text_input':
    case 'url_text_input':
    case 'number_input':
      return { type, value: given ? asString(value, where) : (element.initial_value ?? null) };
    case 'static_select':
    case 'external_select':
    case 'radio_buttons':
    case 'overflow': {
      const wanted = given ? asString(value, where) : null;
      return {
        type,
        selected_option: given
          ? wanted === null
            ? null
            : findOption(element, wanted, where)
          : (element.initial_option ?? null),
      };
    }
    case 'multi_static_select':
    case 'multi_external_select':
      return {
        type,
        selected_options: given
          ? asList(value, where).map((v) => findOption(element, v, where))
          : (element.initial_options ?? []),
      };
    case 'checkboxes': {
      if (!given) return { type, selected_options: element.initial_options ?? [] };
      if (typeof value === 'boolean') {
        const options = optionsOf(element);
        if (options.length !== 1)
          fail(where, `true/false fits a single checkbox; this one has ${options.length}`);
        return { type, selected_options: value ? options : [] };
      }
      return { type, selected_options: asList(value, where).map((v) => findOption(element, v, where)) };
    }
    case 'users_select':
      return { type, selected_user: given ? asString(value, where) : (element.initial_user ?? null) };
    case 'multi_users_select':
      return { type, selected_users: given ? asList(value, where) : (element.initial_users ?? []) };
    case 'conversations_select':
      return {
        type,
        selected_conversation: given ? asString(value, where) : (element.initial_conversation ?? null),
      };
    case 'multi_conversations_select':
      return {
        type,
        selected_conversations: given ? asList(value, where) : (element.initial_conversations ?? []),
      };
    case 'channels_select':
      return { type, selected_channel: given ? asString(value, where) : (element.initial_channel ?? null) };
    case 'multi_channels_select':
      return { type, selected_channels: given ? asList(value, where) : (element.initial_channels ?? []) };
    case 'datepicker': {
      const date = given ? asString(value, where) : (element.initial_date ?? null);
      if (date !== null && !/^\d{4}-\d{2}-\d{2}$/.test(date)) fail(where, `"${date}" is not YYYY-MM-DD`);
      return { type, selected_date: date };
    }
    case 'timepicker': {
      const time = given ? asString(value, where) : (element.initial_time ?? null);
      if (time !== null && !/^\d{2}:\d{2}$/.test(time)) fail(where, `"${time}" is not HH:mm`);
      return { type, selected_time: time };
    }
    case 'datetimepicker': {
      if (!given) return { type, selected_date_time: element.initial_date_time ?? null };
      if (value !== null && typeof value !== 'number') fail(where, 'expects Unix seconds');
      return { type, selected_date_time: value };
    }
    case 'file_input': {
      if (!given || value === null) return { type, files: [] };
      if (typeof value !== 'object' || Array.isArray(value)) fail(where, 'expects { files: [...] }');
      return { type, files: value.files };
    }
    case 'rich_text_input': {
      const text = given ? asString(value, where) : null;
      if (text === null) return { type, rich_text_value: element.initial_value ?? null };
      return {
        type,
        rich_text_value: {
          type: 'rich_text',
          elements: [{ type: 'rich_text_section', elements: [{ type: 'text', text }] }],
        },
      };
    }
    default:
      return fail(where, `fillView does not know ${type} elements`);
  }
}

/** The state of one element after the person chose `value`: what Slack puts in state.values and in actions. */
export function elementState(element: SlackObject, value: FieldValue, where: string): SlackObject {
  return stateValue(element, value, where);
}

/**
 * The view with `state.values` filled as Slack fills them when the person submits: one entry per input block,
 * `{ [block_id]: { [action_id]: state } }`. `values` is keyed by action id or block id; inputs left out keep
 * their initial value, or are empty. A key that names no input, or a value that is no option, throws.
 */
export function fillView(view: SlackObject, values: Record<string, FieldValue>): SlackObject {
  const used = new Set<string>();
  const state: Record<string, Record<string, SlackObject>> = {};
  const inputs = ((view.blocks ?? []) as SlackObject[]).filter((b) => b.type === 'input' && b.element);
  for (const block of inputs) {
    const element = block.element as SlackObject;
    const blockId = String(block.block_id);
    const actionId = String(element.action_id);
    const key = Object.hasOwn(values, actionId) ? actionId : Object.hasOwn(values, blockId) ? blockId : null;
    if (key) used.add(key);
    state[blockId] = {
      [actionId]: stateValue(element, key ? values[key] : undefined, `input "${blockId}" (${actionId})`),
    };
  }
  const unknown = Object.keys(values).filter((k) => !used.has(k));
  if (unknown.length) {
    const names = inputs.map((b) => `${b.block_id}/${b.element.action_id}`);
    throw new Error(`fillView: no input for ${unknown.join(', ')}; inputs are ${names.join(', ') || 'none'}`);
  }
  return { ...view, state: { values: state } };
}

export type ButtonMatch = string | { actionId?: string; text?: string; value?: string };
export type ElementMatch = string | { actionId?: string; blockId?: string; type?: string };
/** An element and the id of its block (Slack gives every block one; hand-made blocks may lack it). */
export type Located = { element: SlackObject; blockId: string | undefined };

/** Every interactive element in blocks, with its block id: actions elements, accessories and input elements. */
function elementsOf(blocks: SlackObject[] | undefined): Located[] {
  const found: Located[] = [];
  for (const block of blocks ?? []) {
    const elements: SlackObject[] = [
      ...(block.type === 'actions' ? (block.elements ?? []) : []),
      ...(block.accessory ? [block.accessory] : []),
      ...(block.type === 'input' && block.element ? [block.element] : []),
    ];
    for (const element of elements) found.push({ element, blockId: block.block_id });
  }
  return found;
}

/** A button in blocks (in actions blocks or as a section's accessory), by label, or by action id, label, value. */
export function findButton(
  blocks: SlackObject[] | undefined,
  match: ButtonMatch,
): { action: SlackObject; blockId: string | undefined } {
  const m = typeof match === 'string' ? { text: match } : match;
  const buttons = elementsOf(blocks).filter(({ element }) => element.type === 'button');
  const hit = buttons.find(
    ({ element }) =>
      (m.actionId === undefined || element.action_id === m.actionId) &&
      (m.text === undefined || element.text?.text === m.text) &&
      (m.value === undefined || element.value === m.value),
  );
  if (!hit) {
    const list = buttons
      .map(({ element }) => `"${element.text?.text}" (${element.action_id}=${element.value})`)
      .join(', ');
    throw new Error(`no button matching ${JSON.stringify(m)}; buttons: ${list || 'none'}`);
  }
  return { action: hit.element, blockId: hit.blockId };
}

/** An interactive element other than a button (a select, overflow, date picker...), by action id or block id. */
export function findElement(blocks: SlackObject[] | undefined, match: ElementMatch): Located {
  const m = typeof match === 'string' ? { actionId: match } : match;
  const all = elementsOf(blocks);
  const hit = all.find(
    ({ element, blockId }) =>
      (m.actionId === undefined || element.action_id === m.actionId) &&
      (m.blockId === undefined || blockId === m.blockId) &&
      (m.type === undefined || element.type === m.type),
  );
  if (!hit) {
    const list = all
      .map(({ element, blockId }) => `${element.type} ${blockId}/${element.action_id}`)
      .join(', ');
    throw new Error(`no element matching ${JSON.stringify(m)}; elements: ${list || 'none'}`);
  }
  return hit;
}

/** Keys whose values a person sees: texts, fields, context elements, labels, hints, chosen options. */
const VISIBLE = [
  'fields',
  'elements',
  'accessory',
  'element',
  'title',
  'label',
  'hint',
  'placeholder',
  'initial_option',
];

function textsOf(node: unknown): string[] {
  if (node == null) return [];
  if (typeof node === 'string') return [node];
  if (Array.isArray(node)) return node.flatMap(textsOf);
  if (typeof node !== 'object') return [];
  const obj = node as SlackObject;
  const out: string[] = textsOf(obj.text);
  for (const key of VISIBLE) out.push(...textsOf(obj[key]));
  // Radio buttons and checkboxes show all their options; select menus only the chosen one.
  if (obj.type === 'radio_buttons' || obj.type === 'checkboxes') out.push(...textsOf(obj.options));
  return out;
}

/**
 * All visible text of a message, view, response body or blocks, one piece a line, for assertions: the
 * message's text, each block's text, fields, context elements, headers, labels and button labels, and a
 * view's title and submit and close labels.
 */
export function textOf(target: unknown): string {
  if (target == null) return '';
  if (typeof target === 'string') return target;
  if (Array.isArray(target)) return textsOf(target).join('\n');
  const obj = target as SlackObject;
  const isView = obj.type === 'modal' || obj.type === 'home';
  const parts = [
    ...(isView ? textsOf([obj.title, obj.submit, obj.close]) : []),
    ...(typeof obj.text === 'string' ? [obj.text] : []),
    ...textsOf(obj.blocks ?? []),
  ];
  return parts.join('\n');
}

/**
 * A message holding one button, as the app shows it in a list or a summary: for a test that clicks a
 * button on a record it already knows, without first asking for the list that carries it.
 */
export function buttonMessage(actionId: string, value: string, text = 'Button', ts = '1') {
  return {
    channel: 'C0GENERAL',
    ts,
    blocks: [
      {
        type: 'actions',
        block_id: `${actionId}:${value}`,
        elements: [{ type: 'button', action_id: actionId, value, text: { type: 'plain_text', text } }],
      },
    ],
  };
}
